//! The real `latchkey-auth` process under a flood of wrong secrets whose
//! callers give up after 150 ms: argon2 stays bounded in concurrency and
//! memory, however the callers behave. Alone in its test binary, so the
//! flood does not slow other tests.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use std::path::Path;
use std::time::{Duration, Instant};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{
    create_project_with, create_service_token_with, start_auth_process, with_token,
};

/// Callers in flight at once, each a wrong secret for a known token id.
const CALLERS: usize = 32;
/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_wrong_secret_flood_keeps_argon2_bounded_in_threads_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    // This measures argon2 itself: no failure limit may cut it short.
    let (process, url) = start_auth_process(
        Path::new(env!("CARGO_BIN_EXE_latchkey-auth")),
        dir.path(),
        &[
            ("LATCHKEY_TOKEN_FAILURE_BURST", "0"),
            ("LATCHKEY_IP_FAILURE_BURST", "0"),
        ],
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let mut auth = AuthServiceClient::connect(url.clone()).await.unwrap();
    let project = create_project_with(&mut auth, &admin, false).await;
    let token =
        create_service_token_with(&mut auth, &admin, &project, &["dev:/**"], &["read"]).await;
    let id = token.split('.').nth(1).unwrap().to_owned();
    let cores = std::thread::available_parallelism().unwrap().get();

    let deadline = Instant::now() + FLOOD;
    let callers = (0..CALLERS).map(|i| {
        let (url, id) = (url.clone(), id.clone());
        tokio::spawn(async move {
            let mut client = AuthServiceClient::connect(url).await.unwrap();
            let mut calls = 0u32;
            while Instant::now() < deadline {
                // A different wrong secret each time, so no two calls share a run.
                let wrong = format!("st.{id}.{:032x}", (i as u128) << 64 | u128::from(calls));
                let mut request = with_token(auth_pb::LookupTokenRequest::default(), &wrong);
                request.set_timeout(Duration::from_millis(150));
                let _ = client.lookup_token(request).await;
                calls += 1;
            }
            calls
        })
    });
    let (mut peak_workers, mut peak_threads) = (0, 0);
    let sampler = async {
        while Instant::now() < deadline {
            peak_workers = peak_workers.max(process.threads_named("argon2"));
            peak_threads = peak_threads.max(process.threads_named(""));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (calls, ()) = tokio::join!(futures_join(callers), sampler);

    let hwm_mib = process.peak_rss_mib();
    eprintln!("flood: {calls} calls, VmHWM {hwm_mib} MiB, {peak_threads} threads at most");
    assert!(calls > CALLERS as u32, "the flood ran: {calls} calls");
    assert!(
        hwm_mib < 256,
        "peak resident memory {hwm_mib} MiB after {calls} cancelled calls"
    );
    assert!(
        peak_workers <= cores,
        "{peak_workers} argon2 threads on {cores} cores"
    );
    // Before the fix: 116 threads and 4.5 GiB here, argon2 runs piling up
    // on the blocking pool as each cancelled caller released its permit.
    assert!(peak_threads <= 32, "{peak_threads} threads at most");
    // Still serving: the valid token verifies once the flood is over.
    let lookup = auth
        .lookup_token(with_token(auth_pb::LookupTokenRequest::default(), &token))
        .await
        .unwrap()
        .into_inner();
    assert!(lookup.principal.ends_with(&id));
}

async fn futures_join(handles: impl Iterator<Item = tokio::task::JoinHandle<u32>>) -> u32 {
    let mut total = 0;
    for handle in handles.collect::<Vec<_>>() {
        total += handle.await.unwrap();
    }
    total
}
