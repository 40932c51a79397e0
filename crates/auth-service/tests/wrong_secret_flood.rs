//! The real `latchkey-auth` process, with its default limits, under 500
//! parallel wrong-secret calls for a known token: it stays small, and a
//! fresh valid token's first call from another client still succeeds
//! within a second. Alone in its test binary, so the flood slows no other test.

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_test_support::{
    AuthorizeCall, create_project_with, create_service_token_with, start_auth_process, with_token,
};

/// Parallel wrong-secret calls.
const CALLS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_flood_neither_grows_the_process_nor_delays_a_fresh_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let (process, url) = start_auth_process(
        Path::new(env!("CARGO_BIN_EXE_latchkey-auth")),
        dir.path(),
        &[],
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let internal_key = std::fs::read_to_string(dir.path().join("internal.key")).unwrap();
    let mut auth = AuthServiceClient::connect(url.clone()).await.unwrap();
    let project = create_project_with(&mut auth, &admin, false).await;
    let target =
        create_service_token_with(&mut auth, &admin, &project, &["dev:/**"], &["read"]).await;
    let fresh =
        create_service_token_with(&mut auth, &admin, &project, &["dev:/**"], &["read"]).await;
    let id = target.split('.').nth(1).unwrap().to_owned();
    let before_mib = process.peak_rss_mib();

    let flood: Vec<_> = (0..CALLS)
        .map(|n| {
            let (url, id) = (url.clone(), id.clone());
            tokio::spawn(async move {
                let mut client = AuthServiceClient::connect(url).await.unwrap();
                let wrong = format!("st.{id}.{n:032x}");
                let status = client
                    .lookup_token(with_token(auth_pb::LookupTokenRequest::default(), &wrong))
                    .await
                    .unwrap_err();
                if !matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::ResourceExhausted
                ) {
                    eprintln!("unexpected: {status:?}");
                }
                status.code()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fresh token's first use, as the secrets service asks for a client elsewhere.
    let started = Instant::now();
    let request = AuthorizeCall::new(&url, internal_key.trim(), &fresh)
        .project(&project)
        .from("192.0.2.50")
        .request();
    let allowed = auth.authorize(request).await;
    let took = started.elapsed();
    let mut codes = Vec::new();
    for call in flood {
        codes.push(call.await.unwrap());
    }

    let peak_mib = process.peak_rss_mib();
    eprintln!(
        "flood of {CALLS}: first call of a fresh token {took:?}, VmHWM {before_mib} -> {peak_mib} MiB, {} refused as over the limit",
        codes
            .iter()
            .filter(|c| **c == tonic::Code::ResourceExhausted)
            .count()
    );
    assert!(allowed.is_ok(), "{allowed:?}");
    assert!(took < Duration::from_secs(1), "first call took {took:?}");
    assert!(peak_mib < 256, "peak {peak_mib} MiB");
    assert!(
        codes.iter().all(|c| matches!(
            c,
            tonic::Code::Unauthenticated | tonic::Code::ResourceExhausted
        )),
        "{codes:?}"
    );
    assert!(
        codes.contains(&tonic::Code::ResourceExhausted),
        "the limits cut the flood short"
    );
}
