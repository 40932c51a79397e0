//! The CLI's TLS and mTLS flags against the real auth service behind a TLS
//! listener with throwaway certificates.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::Cli;
use latchkey_auth_service::grpc::AuthGrpc;
use latchkey_domain::ip::TrustedIps;
use latchkey_proto::auth::v1::auth_service_server::AuthServiceServer;
use latchkey_test_support::{Backend, Pki, Stack};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Serves the stack's auth service over TLS (requiring a client certificate
/// signed by the CA when `mtls`); returns its `https://` address.
async fn tls_auth(stack: &Stack, pki: &Pki, mtls: bool) -> String {
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        std::fs::read(&pki.server_cert).unwrap(),
        std::fs::read(&pki.server_key).unwrap(),
    ));
    if mtls {
        tls = tls.client_ca_root(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let grpc = AuthGrpc::new(stack.auth.app.clone(), TrustedIps::default());
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(AuthServiceServer::new(grpc))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    format!("https://127.0.0.1:{port}")
}

async fn started() -> (Stack, Pki) {
    let stack = Stack::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    stack.create_project(false).await;
    (stack, Pki::new())
}

fn to(addr: &str, token: &str) -> Cli {
    Cli::bare()
        .env("LATCHKEY_AUTH_ADDR", addr)
        .env("LATCHKEY_TOKEN", token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_trusting_the_ca_reaches_the_auth_service() {
    let (stack, pki) = started().await;
    let addr = tls_auth(&stack, &pki, false).await;

    let out = to(&addr, &stack.admin_token)
        .run(&["--ca-cert", pki.ca.to_str().unwrap(), "project", "list"])
        .await
        .ok();

    assert!(out.contains("test project"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_outside_the_trusted_roots_is_refused_naming_the_certificate() {
    let (stack, pki) = started().await;
    let addr = tls_auth(&stack, &pki, false).await;

    let out = to(&addr, &stack.admin_token)
        .run(&["project", "list"])
        .await;

    assert_eq!(out.code, 5, "{}", out.err);
    assert!(out.err.contains("certificate"), "{}", out.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_client_gets_no_answer_from_a_tls_port() {
    let (stack, pki) = started().await;
    let addr = tls_auth(&stack, &pki, false)
        .await
        .replace("https://", "http://");

    let out = to(&addr, &stack.admin_token)
        .run(&["project", "list"])
        .await;

    assert_eq!(out.code, 5, "{}", out.err);
    assert!(out.err.contains("TLS settings"), "{}", out.err);
    assert!(!out.out.contains("test project"), "{}", out.out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_server_answers_only_a_client_with_its_certificate() {
    let (stack, pki) = started().await;
    let addr = tls_auth(&stack, &pki, true).await;
    let ca = pki.ca.to_str().unwrap();

    let without = to(&addr, &stack.admin_token)
        .run(&["--ca-cert", ca, "project", "list"])
        .await;
    let with = to(&addr, &stack.admin_token)
        .run(&[
            "--ca-cert",
            ca,
            "--client-cert",
            pki.client_cert.to_str().unwrap(),
            "--client-key",
            pki.client_key.to_str().unwrap(),
            "project",
            "list",
        ])
        .await
        .ok();

    assert_eq!(without.code, 5, "{}", without.err);
    // The refusal reaches the client as the CertificateRequired alert or,
    // when the server closes first, as a closed connection.
    assert!(without.err.contains("TLS settings"), "{}", without.err);
    assert!(!without.out.contains("test project"), "{}", without.out);
    assert!(with.contains("test project"), "{with}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cert_without_its_key_is_refused_before_connecting() {
    let pki = Pki::new();

    let out = Cli::bare()
        .run(&[
            "--client-cert",
            pki.client_cert.to_str().unwrap(),
            "project",
            "list",
        ])
        .await;

    assert_eq!(out.code, 2, "{}", out.err);
    assert!(out.err.contains("--client-key"), "{}", out.err);
}
