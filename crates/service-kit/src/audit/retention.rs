//! `LATCHKEY_AUDIT_RETENTION_DAYS`: events older than the retention are
//! reaped, each chain leaving a sealed checkpoint where it now starts, so
//! what remains still verifies.

use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::ports::Clock;
use latchkey_store::audit::AuditStore;

use super::KeySource;

/// How often the trail is reaped.
pub const REAP_EVERY: Duration = Duration::from_secs(3600);

/// Events one transaction reaps per chain, at most: a long backlog goes in
/// many short transactions, never one that holds the writers up.
const REAP_BATCH: u64 = 10_000;

/// Reaps `store`'s events older than `keep` every [`REAP_EVERY`], first
/// at once. Every replica may run it: checkpoints only move forward.
pub fn spawn_retention(
    store: AuditStore,
    key: KeySource,
    keep: chrono::Duration,
    clock: Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let key = loop {
            match key().await {
                Ok(key) => break key,
                Err(e) => {
                    tracing::warn!(error = %e, "audit key not available yet; retention waits");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        let mut tick = tokio::time::interval(REAP_EVERY);
        loop {
            tick.tick().await;
            let before = clock.now() - keep;
            let mut reaped = 0;
            loop {
                match store.reap(before, &key, REAP_BATCH).await {
                    Ok(0) => break,
                    Ok(n) => reaped += n,
                    Err(e) => {
                        tracing::warn!(error = %e, "audit retention failed; retrying next interval");
                        break;
                    }
                }
            }
            if reaped > 0 {
                tracing::info!(events = reaped, before = %before, "audit events past retention reaped");
            }
        }
    })
}
