//! The Infisical-compatible HTTP API: a second transport over the same use
//! cases as gRPC, so every scope, permission, IP, expiry and use-limit rule
//! is the auth service's `Authorize`, as for gRPC. Infisical's own clients
//! (SDKs, CLI, Kubernetes operator) read and write through it unchanged;
//! `INFISICAL-COMPAT.md` is the reference for what they send and read.
//!
//! - `audit`: one audit event per request, recorded before it is answered.
//! - `encrypted`: the older clients' encrypted reads (`GET /api/v3/secrets`).
//! - `error`: denials and bad input as Infisical's JSON error bodies.
//! - `extract`: the caller (token checked before the body is read) and bodies through a limit and a deadline.
//! - `params`: query strings and bodies to domain types.
//! - `raw`: the plaintext secrets endpoints (`/api/v3/secrets/raw`, `/api/v4/secrets`).
//! - `service_token`: `GET /api/v2/service-token`, what a service token is.
//! - `reply`: the caller, the query string and JSON replies.
//! - `token_auth`: machine identity logins (Universal Auth, Kubernetes Auth), and renew and revoke of their tokens.
//! - `trace`: the per-request span, trace context and metrics.

mod audit;
mod encrypted;
mod error;
mod extract;
mod params;
mod raw;
mod reply;
mod service_token;
mod token_auth;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use latchkey_domain::ip::TrustedIps;
use latchkey_service_kit::accept::Shutdown;
use latchkey_service_kit::listen::{Connections, serve_http};
use latchkey_service_kit::tls::ReloadingTls;
use tokio::net::TcpListener;

use crate::app::SecretsApp;

/// The most bytes of envelopes kept for the older clients' encrypted reads.
const SEALS_BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// What every handler shares.
#[derive(Debug)]
struct Http {
    app: Arc<SecretsApp>,
    trusted_proxies: TrustedIps,
    /// Envelopes for the older clients' encrypted reads.
    seals: encrypted::Sealed4Infisical,
}

/// The HTTP routes over `app`, honouring `x-forwarded-for` only from
/// `trusted_proxies`.
pub fn router(app: Arc<SecretsApp>, trusted_proxies: TrustedIps) -> Router {
    let state = Arc::new(Http {
        app,
        trusted_proxies,
        seals: encrypted::Sealed4Infisical::new(SEALS_BUDGET_BYTES),
    });
    Router::new()
        .route(
            "/api/v1/auth/universal-auth/login",
            post(token_auth::login_universal_auth),
        )
        .route(
            "/api/v1/auth/universal-auth/login/",
            post(token_auth::login_universal_auth),
        )
        .route(
            "/api/v1/auth/kubernetes-auth/login",
            post(token_auth::login_kubernetes_auth),
        )
        .route(
            "/api/v1/auth/kubernetes-auth/login/",
            post(token_auth::login_kubernetes_auth),
        )
        .route("/api/v1/auth/token/renew", post(token_auth::renew))
        .route("/api/v1/auth/token/revoke", post(token_auth::revoke))
        .route("/api/v2/service-token", get(service_token::describe))
        .route("/api/v3/secrets", get(encrypted::list))
        .route("/api/v3/secrets/{name}", get(encrypted::get))
        .route("/api/v3/secrets/raw", get(raw::list))
        .route(
            "/api/v3/secrets/raw/{name}",
            get(raw::get)
                .post(raw::create)
                .patch(raw::update)
                .delete(raw::delete),
        )
        .route("/api/v4/secrets", get(raw::list))
        .route(
            "/api/v4/secrets/{name}",
            get(raw::get)
                .post(raw::create)
                .patch(raw::update)
                .delete(raw::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::audit,
        ))
        .fallback(error::unknown_route)
        .layer(axum::middleware::map_response(never_stored))
        .layer(axum::middleware::from_fn(trace::trace))
        .with_state(state)
}

/// Secrets and token details must not linger in a browser's or a proxy's
/// cache, nor be sniffed into another content type.
async fn never_stored(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Serves `router` on `listener` (over TLS when given) through
/// `connections` until `shutdown`, then lets requests in flight finish for
/// at most `grace`.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    connections: &Connections,
    tls: Option<&ReloadingTls>,
    shutdown: Shutdown,
    grace: Duration,
) {
    let timeout = connections.limits().request_timeout;
    let router = router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| async move {
            tokio::time::timeout(timeout, next.run(request))
                .await
                .unwrap_or_else(|_| error::timed_out(timeout))
        },
    ));
    let accepted = connections.incoming(listener);
    match tls {
        Some(tls) => serve_http(router, tls.incoming(accepted), connections, shutdown, grace).await,
        None => serve_http(router, accepted, connections, shutdown, grace).await,
    }
}

#[cfg(test)]
mod tests {
    use latchkey_domain::ip::TrustedIps;
    use latchkey_service_kit::listen::ConnectionLimits;
    use latchkey_service_kit::tls::ServerTlsFiles;
    use rustls::pki_types::ServerName;
    use tokio::net::TcpStream;
    use tokio_stream::StreamExt;

    use super::*;

    /// Python's `requests` and Node offer only `http/1.1` over TLS; the
    /// gRPC ports offer only `h2`.
    #[tokio::test]
    async fn tls_http_connections_get_tcp_nodelay_and_negotiate_http_1_1() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("c.key"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let tls = ReloadingTls::load_for_http(ServerTlsFiles {
            cert: cert_path,
            key: key_path,
            client_ca: None,
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let connections = Connections::new(
            ConnectionLimits::for_descriptors(1024),
            TrustedIps::default(),
        );
        let mut accepted = tls.incoming(connections.incoming(listener));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(local).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let (client, server_side) = tokio::join!(connector.connect(name, tcp), accepted.next());
        let client = client.unwrap();
        assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let server_side = server_side.unwrap().unwrap();
        assert_eq!(
            server_side.get_ref().0.peer(),
            client.get_ref().0.local_addr().unwrap()
        );
    }
}
