//! The real `latchkey-auth` process: SIGTERM lets the calls in flight
//! finish, and `latchkey-auth health` is the image's health check.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{Stack, with_token};

/// In-flight calls: each is a token's first use, which pays an argon2
/// verify, and the verifies queue behind one per core.
const CALLS: usize = 16;

/// Starts the real binary on SQLite in `data_dir`; returns it and its URL
/// once it logs that it listens.
fn start(data_dir: &Path, grace_seconds: &str) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-auth"))
        .env_clear()
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_AUTH_ADDR", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_SHUTDOWN_GRACE_SECONDS", grace_seconds)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("exited before listening").unwrap();
        if line.contains("latchkey-auth listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://127.0.0.1:{port}"))
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A second process with `grace_seconds`, and `CALLS - 1` first uses of
/// tokens a first process made still in flight.
async fn in_flight_calls(
    dir: &Path,
    grace_seconds: &str,
) -> (
    Child,
    Vec<tokio::task::JoinHandle<Result<(), tonic::Status>>>,
) {
    // Tokens made by a first process, so the second has verified none yet.
    let (mut first, url) = start(dir, "20");
    let admin = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    let admin = admin.trim();
    let mut auth = AuthServiceClient::connect(url.clone()).await.unwrap();
    let project = auth
        .create_project(with_token(
            auth_pb::CreateProjectRequest {
                name: "drain".into(),
                e2ee: false,
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap()
        .id;
    let mut tokens = Vec::new();
    for _ in 0..CALLS {
        let request = Stack::token_request(&project, &["dev:/**"], &["read"]);
        tokens.push(
            auth.create_service_token(with_token(request, admin))
                .await
                .unwrap()
                .into_inner()
                .service_token,
        );
    }
    signal(&first, "KILL");
    first.wait().unwrap();
    let (second, url) = start(dir, grace_seconds);
    let mut clients = Vec::new();
    for _ in 0..CALLS {
        clients.push(AuthServiceClient::connect(url.clone()).await.unwrap());
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let calls = tokens
        .into_iter()
        .zip(clients)
        .map(|(token, mut client)| {
            let done = done_tx.clone();
            tokio::spawn(async move {
                let result = client
                    .lookup_token(with_token(auth_pb::LookupTokenRequest {}, &token))
                    .await
                    .map(drop);
                let _ = done.send(());
                result
            })
        })
        .collect();
    // One call done means the server is verifying; the others, sent while
    // it did, wait behind the argon2 bound.
    done_rx.recv().await;
    (second, calls)
}

async fn exit_of(child: Child) -> std::process::ExitStatus {
    let mut child = child;
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (server, calls) = in_flight_calls(dir.path(), "20").await;

    let sent = Instant::now();
    signal(&server, "TERM");
    let mut failed = Vec::new();
    for call in calls {
        if let Err(status) = call.await.unwrap() {
            failed.push(status);
        }
    }
    let status = exit_of(server).await;

    assert!(
        failed.is_empty(),
        "in-flight calls failed after SIGTERM: {failed:?}"
    );
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "drained within the bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_by_the_shutdown_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (server, calls) = in_flight_calls(dir.path(), "0").await;

    let sent = Instant::now();
    signal(&server, "TERM");
    let status = exit_of(server).await;
    let mut failed = 0;
    for call in calls {
        failed += usize::from(call.await.unwrap().is_err());
    }

    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "stopped without waiting for the calls"
    );
    assert!(failed > 0, "a zero grace cut calls still in flight");
}

fn health(url: &str) -> std::process::ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_latchkey-auth"))
        .arg("health")
        .env_clear()
        .env("LATCHKEY_AUTH_ADDR", url.trim_start_matches("http://"))
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_subcommand_passes_while_serving_and_fails_once_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start(dir.path(), "20");

    let serving = tokio::task::spawn_blocking({
        let url = url.clone();
        move || health(&url)
    })
    .await
    .unwrap();
    signal(&server, "TERM");
    exit_of(server).await;
    let stopped = tokio::task::spawn_blocking(move || health(&url))
        .await
        .unwrap();

    assert!(serving.success(), "{serving}");
    assert!(!stopped.success(), "{stopped}");
}
