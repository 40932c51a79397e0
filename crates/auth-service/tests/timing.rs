//! An unknown token id and a wrong secret for a known one cannot be told
//! apart by how long the answer takes. Alone in its test binary, against
//! the real process, so other tests' load does not skew the samples.

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

/// Samples of each kind per round.
const SAMPLES: usize = 50;
/// Rounds tried before the test fails.
const ROUNDS: usize = 3;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn time_lookup(
    client: &mut AuthServiceClient<tonic::transport::Channel>,
    token: &str,
) -> Duration {
    let started = Instant::now();
    let status = client
        .lookup_token(with_token(auth_pb::LookupTokenRequest::default(), token))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        status.message(),
        "the token is not valid: check that it was copied whole, or create a new one"
    );
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_id_and_wrong_secret_take_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    // This measures argon2 itself: no failure limit may cut it short.
    let (_process, url) = start_auth_process(
        Path::new(env!("CARGO_BIN_EXE_latchkey-auth")),
        dir.path(),
        &[
            ("LATCHKEY_TOKEN_FAILURE_BURST", "0"),
            ("LATCHKEY_IP_FAILURE_BURST", "0"),
        ],
    );
    let admin = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let mut client = AuthServiceClient::connect(url).await.unwrap();
    let project = create_project_with(&mut client, &admin, false).await;
    let token =
        create_service_token_with(&mut client, &admin, &project, &["dev:/**"], &["read"]).await;
    let id = token.split('.').nth(1).unwrap().to_owned();

    // Warm both paths (connections, caches, the workers' memory).
    for i in 0..5 {
        let secret = format!("{:032x}", 1000 + i);
        time_lookup(&mut client, &format!("st.{id}.{secret}")).await;
        time_lookup(
            &mut client,
            &format!(
                "st.{}.{secret}",
                latchkey_domain::model::ServiceTokenId::generate()
            ),
        )
        .await;
    }
    // A shared machine is noisy: a round may be skewed by other load, but a
    // real oracle (2 ms against 45 ms before the fix) fails every round.
    let mut ratios = Vec::new();
    for round in 0..ROUNDS {
        let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
        for i in 0..SAMPLES {
            // Interleaved, alternating which goes first, so drift hits both alike.
            let secret = format!("{:032x}", round * SAMPLES + i + 1);
            let known = format!("st.{id}.{secret}");
            let other = format!(
                "st.{}.{secret}",
                latchkey_domain::model::ServiceTokenId::generate()
            );
            if i % 2 == 0 {
                wrong.push(time_lookup(&mut client, &known).await);
                unknown.push(time_lookup(&mut client, &other).await);
            } else {
                unknown.push(time_lookup(&mut client, &other).await);
                wrong.push(time_lookup(&mut client, &known).await);
            }
        }
        let (unknown, wrong) = (median(unknown), median(wrong));
        let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
        eprintln!(
            "round {round}: median unknown id {unknown:?}, wrong secret {wrong:?}, ratio {ratio:.3}"
        );
        if (0.9..=1.1).contains(&ratio) {
            return;
        }
        ratios.push(ratio);
    }
    panic!("unknown id and wrong secret told apart in every round: ratios {ratios:?}");
}
