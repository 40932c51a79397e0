//! The real `latchkey-auth` process: SIGTERM lets the calls in flight
//! finish, and `latchkey-auth health` is the image's health check.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{
    ServiceProcess, create_project_with, create_service_token_with, free_port, with_token,
};

/// In-flight calls: each is a token's first use, which pays an argon2
/// verify, and the verifies queue behind one per core.
const CALLS: usize = 16;

/// Starts the real binary on SQLite in `data_dir`; returns it and its URL.
fn start(data_dir: &Path, grace_seconds: &str) -> (ServiceProcess, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let process = ServiceProcess::start(
        Path::new(env!("CARGO_BIN_EXE_latchkey-auth")),
        &[
            ("LATCHKEY_DATA_DIR", data_dir.to_str().unwrap()),
            ("LATCHKEY_AUTH_ADDR", addr.as_str()),
            ("LATCHKEY_SHUTDOWN_GRACE_SECONDS", grace_seconds),
        ],
    );
    (process, format!("http://{addr}"))
}

/// A second process with `grace_seconds`, and `CALLS - 1` first uses of
/// tokens a first process made still in flight.
async fn in_flight_calls(
    dir: &Path,
    grace_seconds: &str,
) -> (
    ServiceProcess,
    Vec<tokio::task::JoinHandle<Result<(), tonic::Status>>>,
) {
    // Tokens made by a first process, so the second has verified none yet.
    let (first, url) = start(dir, "20");
    let admin = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    let mut auth = AuthServiceClient::connect(url.clone()).await.unwrap();
    let project = create_project_with(&mut auth, &admin, false).await;
    let mut tokens = Vec::new();
    for _ in 0..CALLS {
        tokens.push(
            create_service_token_with(&mut auth, &admin, &project, &["dev:/**"], &["read"]).await,
        );
    }
    first.signal("KILL");
    first.exit().await;
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
                    .lookup_token(with_token(auth_pb::LookupTokenRequest::default(), &token))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_calls_finish_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (server, calls) = in_flight_calls(dir.path(), "20").await;

    let sent = Instant::now();
    server.signal("TERM");
    let mut failed = Vec::new();
    for call in calls {
        if let Err(status) = call.await.unwrap() {
            failed.push(status);
        }
    }
    let status = server.exit().await;

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
    server.signal("TERM");
    let status = server.exit().await;
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
    server.signal("TERM");
    server.exit().await;
    let stopped = tokio::task::spawn_blocking(move || health(&url))
        .await
        .unwrap();

    assert!(serving.success(), "{serving}");
    assert!(!stopped.success(), "{stopped}");
}
