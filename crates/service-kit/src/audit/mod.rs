//! The audit recorder each service runs: events queue to one writer task,
//! which chains them and appends everything waiting in one transaction
//! (one commit per few milliseconds under load, whatever the call rate).
//!
//! `LATCHKEY_AUDIT=required` (the default): a call is answered only once
//! its event is committed, and fails `AUDIT_UNAVAILABLE` when that has not
//! happened within [`REQUIRED_WITHIN`]. `best_effort`: the call does not
//! wait; past [`QUEUE`] waiting events new ones are dropped and counted.
//! `off`: nothing is recorded.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_domain::AccessError;
use latchkey_domain::audit::chain::{ChainWriter, Start};
use latchkey_domain::audit::tally::Tally;
use latchkey_domain::audit::{AuditEvent, AuditKey, Transport};
use latchkey_domain::ports::{AuditSink, BearerToken, Clock};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ConfigError, Vars};

pub mod api;
mod call;
pub mod retention;
pub mod taps;
mod trail;

pub use call::CallMeta;
use taps::{JsonlFile, OtlpLogs, Tap};
pub use trail::{CANCELLED, Trail};

/// The variable naming the mode.
pub const AUDIT_VAR: &str = "LATCHKEY_AUDIT";

/// How long a call in `required` mode waits for its event's commit.
pub const REQUIRED_WITHIN: Duration = Duration::from_secs(1);

/// Events waiting for the writer, at most.
pub const QUEUE: usize = 65_536;

/// Events one transaction appends, at most.
const BATCH: usize = 4_096;

/// How often refusals before verification become aggregated events.
pub const TALLY_INTERVAL: Duration = Duration::from_secs(10);

/// Whether calls wait for their events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMode {
    /// Answered only once recorded; `AUDIT_UNAVAILABLE` otherwise.
    Required,
    /// Recorded when possible; dropped and counted past the queue's bound.
    BestEffort,
    /// Not recorded.
    Off,
}

impl AuditMode {
    /// From `LATCHKEY_AUDIT` (`required`, the default; `best_effort`; `off`).
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        match vars.get_or(AUDIT_VAR, "required") {
            "required" => Ok(AuditMode::Required),
            "best_effort" => Ok(AuditMode::BestEffort),
            "off" => Ok(AuditMode::Off),
            other => Err(ConfigError::new(
                AUDIT_VAR,
                format!("{other:?} is not a mode: use required, best_effort or off"),
            )),
        }
    }
}

/// The variable naming how many days events are kept (0: forever).
pub const RETENTION_VAR: &str = "LATCHKEY_AUDIT_RETENTION_DAYS";

/// The variable naming the JSONL file committed events are appended to.
pub const AUDIT_FILE_VAR: &str = "LATCHKEY_AUDIT_FILE";

/// How a service records: the mode, the host its replicas are named after,
/// and where else committed events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// `LATCHKEY_AUDIT`.
    pub mode: AuditMode,
    /// `HOSTNAME` (a pod's name on Kubernetes), else `local`.
    pub host: String,
    /// `LATCHKEY_AUDIT_FILE`: a JSONL file for log shippers; unset, none.
    pub file: Option<std::path::PathBuf>,
    /// `LATCHKEY_AUDIT_RETENTION_DAYS` (default 90): how long events are
    /// kept; `None` (0) keeps them forever.
    pub retention: Option<chrono::Duration>,
}

/// `LATCHKEY_AUDIT_FILE` could not be opened for appending.
#[derive(Debug, thiserror::Error)]
#[error("{AUDIT_FILE_VAR} {path}: {source}")]
pub struct AuditFileError {
    path: String,
    source: std::io::Error,
}

impl AuditSettings {
    /// From `LATCHKEY_AUDIT` and `HOSTNAME`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            mode: AuditMode::from_vars(vars)?,
            // Kept to a hostname's characters: replica names sit in stream
            // cursors (`replica=sequence,...`).
            host: vars.get("HOSTNAME").map_or_else(
                || "local".to_owned(),
                |h| {
                    h.chars()
                        .take(63)
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '.' {
                                c
                            } else {
                                '-'
                            }
                        })
                        .collect()
                },
            ),
            file: vars.get(AUDIT_FILE_VAR).map(std::path::PathBuf::from),
            retention: match vars.parse_or(RETENTION_VAR, 90u32)? {
                0 => None,
                days => Some(chrono::Duration::days(i64::from(days))),
            },
        })
    }

    /// Where `service`'s committed events go besides its database.
    pub fn taps(&self, service: &str) -> Result<Vec<Box<dyn Tap>>, AuditFileError> {
        let mut taps: Vec<Box<dyn Tap>> = Vec::new();
        if let Some(path) = &self.file {
            let file = JsonlFile::open(path, service).map_err(|source| AuditFileError {
                path: path.display().to_string(),
                source,
            })?;
            taps.push(Box::new(file));
        }
        if let Some(logger) = crate::telemetry::audit_logger() {
            taps.push(Box::new(OtlpLogs::new(logger, service)));
        }
        Ok(taps)
    }

    /// A new replica name, `<service>-<host>-<8 random hex>`: each process
    /// start begins its own chain, so a restarted replica never has to
    /// find where its predecessor's chain ended.
    #[must_use]
    pub fn replica(&self, service: &str) -> String {
        let tag: u32 = rand::random();
        format!("{service}-{}-{tag:08x}", self.host)
    }
}

/// Where the audit key comes from: at once (the auth service holds it) or
/// fetched, retried until it arrives (the secrets service asks the auth
/// service for it).
pub type KeySource =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<AuditKey, String>> + Send>> + Send + Sync>;

/// Records audit events; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    mode: AuditMode,
    queue: mpsc::Sender<Pending>,
    tally: Arc<Mutex<Tally>>,
    clock: Arc<dyn Clock>,
    dropped: Arc<AtomicU64>,
}

/// An event on its way to the writer, with the token it is to carry as an
/// HMAC (computed by the writer, which holds the key) and, in `required`
/// mode, who waits for its commit.
struct Pending {
    event: AuditEvent,
    token: Option<BearerToken>,
    done: Option<oneshot::Sender<bool>>,
}

impl AuditLog {
    /// Records nothing (`LATCHKEY_AUDIT=off`, and tests of other things).
    #[must_use]
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Starts the writer task appending to `sink` as `replica`'s chain.
    #[must_use]
    pub fn start(
        mode: AuditMode,
        sink: Arc<dyn AuditSink>,
        key: KeySource,
        replica: String,
        clock: Arc<dyn Clock>,
        taps: Vec<Box<dyn Tap>>,
    ) -> Self {
        if mode == AuditMode::Off {
            return Self::off();
        }
        let (queue, rx) = mpsc::channel(QUEUE);
        let interval =
            chrono::Duration::from_std(TALLY_INTERVAL).unwrap_or(chrono::Duration::zero());
        let tally = Arc::new(Mutex::new(Tally::new(interval, clock.now())));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_events(
            sink,
            key,
            Chain {
                replica,
                tally: tally.clone(),
                clock: clock.clone(),
                dropped: dropped.clone(),
                taps,
            },
            rx,
        ));
        Self {
            inner: Some(Arc::new(Inner {
                mode,
                queue,
                tally,
                clock,
                dropped,
            })),
        }
    }

    /// The time events are stamped with.
    #[must_use]
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.as_ref().map_or_else(
            || latchkey_domain::ports::SystemClock.now(),
            |i| i.clock.now(),
        )
    }

    /// Records `event`, made with `token` (recorded as its HMAC). In
    /// `required` mode it returns once the event is committed, or
    /// `AUDIT_UNAVAILABLE` when it is not within [`REQUIRED_WITHIN`].
    pub async fn record(
        &self,
        event: AuditEvent,
        token: Option<&BearerToken>,
    ) -> Result<(), AccessError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let token = token.cloned();
        if inner.mode == AuditMode::BestEffort {
            let pending = Pending {
                event,
                token,
                done: None,
            };
            if inner.queue.try_send(pending).is_err() {
                count_dropped(&inner.dropped, 1, "audit queue full");
            }
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        let pending = Pending {
            event,
            token,
            done: Some(done),
        };
        let recorded = tokio::time::timeout(REQUIRED_WITHIN, async {
            inner.queue.send(pending).await.ok()?;
            committed.await.ok()
        })
        .await;
        match recorded {
            Ok(Some(true)) => Ok(()),
            _ => Err(AccessError::audit_unavailable()),
        }
    }

    /// Counts a call refused before its token was verified; it is recorded
    /// with the others of its client prefix and reason when the interval ends.
    pub fn refused_unverified(
        &self,
        ip: Option<IpAddr>,
        reason: &'static str,
        method: &str,
        transport: Transport,
    ) {
        if let Some(inner) = &self.inner
            && let Ok(mut tally) = inner.tally.lock()
        {
            tally.count(ip, reason, method, transport);
        }
    }

    /// Events dropped so far (`best_effort` past the queue's bound).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }
}

/// Counts `n` events lost without a caller told, with a warning at each
/// power of two so a flood of them does not flood the log.
fn count_dropped(dropped: &AtomicU64, n: u64, why: &str) {
    let before = dropped.fetch_add(n, Ordering::Relaxed);
    crate::telemetry::record_audit_dropped(n);
    if (before + n).next_power_of_two() != before.next_power_of_two() || before == 0 {
        tracing::warn!(
            dropped = before + n,
            "{why}: audit events dropped (best_effort)"
        );
    }
}

/// What the writer keeps besides the queue.
struct Chain {
    replica: String,
    tally: Arc<Mutex<Tally>>,
    clock: Arc<dyn Clock>,
    dropped: Arc<AtomicU64>,
    taps: Vec<Box<dyn Tap>>,
}

/// The writer: waits for the key, then appends what is waiting, in one
/// transaction at a time, until every [`AuditLog`] is dropped.
async fn write_events(
    sink: Arc<dyn AuditSink>,
    key: KeySource,
    state: Chain,
    mut rx: mpsc::Receiver<Pending>,
) {
    let Chain {
        replica,
        tally,
        clock,
        dropped,
        taps,
    } = state;
    let key = loop {
        match key().await {
            Ok(key) => break key,
            Err(e) => {
                tracing::warn!(error = %e, "audit key not available yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let mut chain = ChainWriter::new(&replica, Start::GENESIS);
    let mut open = true;
    while open {
        let due = tally.lock().map_or_else(|_| clock.now(), |t| t.due());
        let wait = (due - clock.now()).to_std().unwrap_or(Duration::ZERO);
        let mut batch = Vec::new();
        tokio::select! {
            first = rx.recv() => match first {
                Some(p) => batch.push(p),
                None => open = false,
            },
            () = tokio::time::sleep(wait) => {}
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let aggregates = tally
            .lock()
            .map(|mut t| t.close(clock.now()))
            .unwrap_or_default();
        if batch.is_empty() && aggregates.is_empty() {
            continue;
        }
        let saved = chain.next();
        let mut waiting = Vec::with_capacity(batch.len());
        let mut links = Vec::with_capacity(batch.len() + aggregates.len());
        for Pending {
            mut event,
            token,
            done,
        } in batch
        {
            if let Some(token) = token {
                event.token_hmac = key.token_hmac(token.expose());
            }
            links.push(chain.append(&key, event));
            waiting.extend(done);
        }
        links.extend(aggregates.into_iter().map(|a| chain.append(&key, a)));
        let committed = match sink.append(&links).await {
            Ok(()) => {
                for tap in &taps {
                    tap.committed(&links);
                }
                true
            }
            Err(e) => {
                chain.rewind(saved);
                tracing::warn!(error = %e, events = links.len(), "audit events could not be written");
                let untold = links.len() - waiting.len();
                if untold > 0 {
                    count_dropped(&dropped, untold as u64, "audit table unwritable");
                }
                false
            }
        };
        for done in waiting {
            let _ = done.send(committed);
        }
    }
}

#[cfg(test)]
mod tests;
