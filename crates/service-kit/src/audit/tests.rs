//! Unit tests of `audit`: the recorder against an in-memory sink.

use std::sync::atomic::AtomicBool;

use latchkey_domain::Reason;
use latchkey_domain::audit::chain::{ChainVerifier, Chained};
use latchkey_domain::crypto::RootKey;
use latchkey_domain::ports::SystemClock;

use super::*;

/// Keeps what it is given, or refuses everything while `broken`.
#[derive(Debug, Default)]
struct MemorySink {
    links: Mutex<Vec<Chained>>,
    broken: AtomicBool,
}

#[async_trait::async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, links: &[Chained]) -> Result<(), String> {
        if self.broken.load(Ordering::Relaxed) {
            return Err("the table is unwritable".into());
        }
        self.links.lock().unwrap().extend_from_slice(links);
        Ok(())
    }
}

fn key() -> AuditKey {
    AuditKey::derive(&RootKey::from_hex(&"ab".repeat(32)).unwrap())
}

fn start(mode: AuditMode) -> (AuditLog, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::default());
    let log = AuditLog::start(
        mode,
        sink.clone(),
        Box::new(|| Box::pin(async { Ok(key()) })),
        "r1".into(),
        Arc::new(SystemClock),
        Vec::new(),
    );
    (log, sink)
}

fn event(n: u64) -> AuditEvent {
    let mut e = AuditEvent::new("secret.read", SystemClock.now(), Transport::Grpc);
    e.target = n.to_string();
    e
}

fn verified(sink: &MemorySink) -> u64 {
    let key = key();
    let mut verifier = ChainVerifier::new(&key, "r1", Start::GENESIS);
    for link in sink.links.lock().unwrap().iter() {
        verifier.push(link.clone()).unwrap();
    }
    verifier.finish().unwrap()
}

#[tokio::test]
async fn a_required_event_is_committed_before_record_returns_with_its_token_as_an_hmac() {
    let (log, sink) = start(AuditMode::Required);
    let token = BearerToken::new("ia.0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b.secret-part");

    log.record(event(1), Some(&token)).await.unwrap();

    let links = sink.links.lock().unwrap().clone();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].event.token_hmac, key().token_hmac(token.expose()));
    assert!(!format!("{links:?}").contains("secret-part"));
}

#[tokio::test]
async fn concurrent_events_are_batched_and_chained_in_one_order() {
    let (log, sink) = start(AuditMode::Required);
    let calls: Vec<_> = (0..200)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.record(event(n), None).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(verified(&sink), 200);
}

#[tokio::test]
async fn an_unwritable_table_fails_required_calls_within_a_second_and_the_chain_recovers() {
    let (log, sink) = start(AuditMode::Required);
    log.record(event(1), None).await.unwrap();
    sink.broken.store(true, Ordering::Relaxed);

    let started = std::time::Instant::now();
    let refused = log.record(event(2), None).await.unwrap_err();

    assert_eq!(refused.reason, Reason::AuditUnavailable);
    assert!(started.elapsed() <= REQUIRED_WITHIN + Duration::from_millis(200));
    sink.broken.store(false, Ordering::Relaxed);
    log.record(event(3), None).await.unwrap();
    assert_eq!(verified(&sink), 2, "no gap where the failed batch was");
}

#[tokio::test]
async fn best_effort_never_waits_and_counts_what_it_loses() {
    let (log, sink) = start(AuditMode::BestEffort);
    sink.broken.store(true, Ordering::Relaxed);

    log.record(event(1), None).await.unwrap();

    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while log.dropped() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.dropped(), 1);
}

#[tokio::test]
async fn off_records_nothing() {
    let (log, sink) = start(AuditMode::Off);
    log.record(event(1), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(sink.links.lock().unwrap().is_empty());
}

#[test]
fn the_mode_is_read_from_its_variable_and_defaults_to_required() {
    let mode = |v: Option<&str>| {
        AuditMode::from_vars(&Vars::from_pairs(
            v.map(|v| (AUDIT_VAR, v)).into_iter().collect::<Vec<_>>(),
        ))
    };
    assert_eq!(mode(None).unwrap(), AuditMode::Required);
    assert_eq!(mode(Some("best_effort")).unwrap(), AuditMode::BestEffort);
    assert_eq!(mode(Some("off")).unwrap(), AuditMode::Off);
    assert_eq!(mode(Some("sometimes")).unwrap_err().variable, AUDIT_VAR);
}

#[tokio::test]
async fn a_call_dropped_unanswered_is_recorded_cancelled_and_one_unverified_is_counted() {
    let (log, sink) = start(AuditMode::Required);
    let verified = Trail::new(CallMeta::internal("m"), None).watched_by(&log);
    verified.kind("secret.read");
    verified.verified(&latchkey_domain::model::Principal::ServiceToken(
        latchkey_domain::model::ServiceTokenId::from_stored("t1".into()),
    ));
    drop(verified);
    let unverified = Trail::new(CallMeta::internal("m"), None).watched_by(&log);
    drop(unverified);
    let closed = Trail::new(CallMeta::internal("m"), None).watched_by(&log);
    log.close(&closed, None).await.unwrap();
    drop(closed);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.links.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "not recorded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let links = sink.links.lock().unwrap();
    assert_eq!(
        links.len(),
        2,
        "the unverified one is only counted: {links:?}"
    );
    let cancelled = links
        .iter()
        .find(|l| l.event.reason == "CANCELLED")
        .expect("the abandoned call");
    assert_eq!(cancelled.event.principal, "service-token:t1");
    assert_eq!(
        cancelled.event.outcome,
        latchkey_domain::audit::Outcome::Failed
    );
}
