//! Unit tests of `verifier`.

use super::*;
use std::time::Duration;

#[tokio::test]
async fn second_verification_of_a_valid_token_skips_argon2() {
    let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
    let verifier = Verifier::with_queue(10, None);
    assert!(
        verifier
            .verify("tok", "s3cret", &hash, false, unspent)
            .await
            .unwrap()
    );
    assert!(
        verifier
            .verify("tok", "s3cret", &hash, false, unspent)
            .await
            .unwrap()
    );
    assert_eq!(verifier.argon2_runs(), 1);
}

#[tokio::test]
async fn wrong_secrets_are_never_cached() {
    let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
    let verifier = Verifier::with_queue(10, None);
    assert!(
        !verifier
            .verify("tok", "wrong", &hash, false, unspent)
            .await
            .unwrap()
    );
    assert!(
        !verifier
            .verify("tok", "wrong", &hash, false, unspent)
            .await
            .unwrap()
    );
    assert_eq!(verifier.argon2_runs(), 2);
}

#[tokio::test]
async fn unknown_ids_pay_one_argon2_run_and_are_never_valid() {
    let verifier = Verifier::with_queue(10, None);
    assert!(
        !verifier
            .verify_unknown("tok", "s3cret", false, || Ok(()))
            .await
            .unwrap()
    );
    assert!(
        !verifier
            .verify_unknown("tok", "s3cret", false, || Ok(()))
            .await
            .unwrap()
    );
    assert_eq!(verifier.argon2_runs(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_verifications_share_one_argon2_run() {
    let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
    let verifier = Arc::new(Verifier::with_queue(10, None));
    let calls = (0..20).map(|_| {
        let (verifier, hash) = (verifier.clone(), hash.clone());
        tokio::spawn(async move {
            verifier
                .verify("tok", "s3cret", &hash, false, unspent)
                .await
                .unwrap()
        })
    });
    for call in calls {
        assert!(call.await.unwrap());
    }
    assert_eq!(verifier.argon2_runs(), 1);
    assert_eq!(verifier.in_flight(), 0);
}

#[tokio::test]
async fn cache_is_bounded() {
    let hash = hash_secret("s", &mut rand::rngs::OsRng).unwrap();
    let verifier = Verifier::with_queue(1, None);
    for raw in ["a", "b", "a", "b"] {
        verifier
            .verify(raw, "s", &hash, false, unspent)
            .await
            .unwrap();
    }
    // Room for one token: the second of two is verified again at least once.
    assert!(verifier.argon2_runs() >= 3, "{}", verifier.argon2_runs());
}

/// A hash slow enough (argon2 with 40 passes) that a worker is surely
/// still busy with it while a test queues more.
fn slow_hash() -> String {
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
    let params = argon2::Params::new(argon2::Params::DEFAULT_M_COST, 40, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(b"s3cret", &salt)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_never_failed_ids_displace_suspect_ones() {
    let hash = slow_hash();
    let verifier = Arc::new(Verifier::with_workers(10, 1, 2));
    let call = |raw: &'static str, suspect: bool| {
        let (verifier, hash) = (verifier.clone(), hash.clone());
        tokio::spawn(async move { verifier.verify(raw, "wrong", &hash, suspect, unspent).await })
    };
    let running = call("running", false);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let old_suspect = call("s1", true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new_suspect = call("s2", true);
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Full: a never-failed id takes the newest suspect's place; another
    // suspect is refused at once.
    let fresh = call("fresh", false);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let refused = verifier.verify("s3", "wrong", &hash, true, unspent).await;

    let reason = |r: Result<bool, AuthError>| match r {
        Err(AuthError::Denied(e)) => Some(e.reason),
        _ => None,
    };
    assert_eq!(reason(refused), Some(Reason::TooManyFailedAttempts));
    assert_eq!(
        reason(new_suspect.await.unwrap()),
        Some(Reason::TooManyFailedAttempts)
    );
    assert!(!fresh.await.unwrap().unwrap());
    assert!(!old_suspect.await.unwrap().unwrap());
    assert!(!running.await.unwrap().unwrap());
    assert_eq!(verifier.argon2_runs(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_failed_ids_are_verified_before_suspect_ones() {
    let hash = slow_hash();
    let verifier = Arc::new(Verifier::with_workers(10, 1, 100));
    let order = Arc::new(Mutex::new(Vec::new()));
    let call = |raw: &'static str, suspect: bool| {
        let (verifier, hash, order) = (verifier.clone(), hash.clone(), order.clone());
        tokio::spawn(async move {
            verifier
                .verify(raw, "wrong", &hash, suspect, unspent)
                .await
                .unwrap();
            order.lock().unwrap().push(raw);
        })
    };
    let first = call("first", false);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let suspect = call("suspect", true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fresh = call("fresh", false);

    first.await.unwrap();
    fresh.await.unwrap();
    suspect.await.unwrap();

    let order = order.lock().unwrap().clone();
    assert_eq!(order, ["first", "fresh", "suspect"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_callers_never_run_more_argon2_than_workers_nor_leave_entries() {
    let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
    let verifier = Arc::new(Verifier::with_workers(10, 2, 1000));
    // 64 distinct wrong tokens, each abandoned after 5 ms.
    let calls = (0..64).map(|i| {
        let (verifier, hash) = (verifier.clone(), hash.clone());
        tokio::spawn(async move {
            let raw = format!("tok-{i}");
            let _ = tokio::time::timeout(
                Duration::from_millis(5),
                verifier.verify(&raw, "wrong", &hash, false, unspent),
            )
            .await;
        })
    });
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(verifier.in_flight(), 0, "every abandoned entry is removed");
    // The workers still answer, and never ran more than two at once.
    assert!(
        verifier
            .verify("ok", "s3cret", &hash, false, unspent)
            .await
            .unwrap()
    );
    assert!(verifier.argon2_peak_concurrency() <= 2);
    assert!(
        verifier.argon2_runs() < 64,
        "abandoned queued jobs were skipped, ran {}",
        verifier.argon2_runs()
    );
}

/// Production passes the failure limiter's spend; these tests spend nothing.
fn unspent() -> Result<(), AuthError> {
    Ok(())
}
