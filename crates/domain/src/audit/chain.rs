//! Each replica's events as a keyed hash chain: event `n`'s MAC covers the
//! replica, `n`, event `n - 1`'s MAC and every field of the event, under
//! the audit key. Changing a field, removing an event or swapping two
//! breaks the chain at that event, and [`ChainVerifier`] names it. (Removing
//! the newest events of a chain cannot be told from their never having been
//! written; the chain protects what it holds, not its end.)

use super::{AuditEvent, AuditKey};

/// The MAC a chain's first event follows.
pub const GENESIS: [u8; 32] = [0; 32];

/// An event in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chained {
    /// The replica whose chain it is in.
    pub replica: String,
    /// Its place in the chain, from 1.
    pub sequence: u64,
    /// Its MAC, covering its predecessor's.
    pub mac: [u8; 32],
    /// The event.
    pub event: AuditEvent,
}

/// Where a chain starts: its first sequence and the MAC before it (the
/// [`GENESIS`] at 1; a checkpoint's after retention reaped the older ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// The first sequence expected.
    pub sequence: u64,
    /// The MAC the first event follows.
    pub prev_mac: [u8; 32],
}

impl Start {
    /// A chain from its beginning.
    pub const GENESIS: Start = Start {
        sequence: 1,
        prev_mac: GENESIS,
    };
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    /// The event at `sequence` was changed after it was written.
    #[error("event {sequence} of replica {replica} was changed")]
    Changed {
        /// The chain.
        replica: String,
        /// The first event that does not verify.
        sequence: u64,
    },
    /// The event at `sequence` is missing.
    #[error("event {sequence} of replica {replica} was removed")]
    Removed {
        /// The chain.
        replica: String,
        /// The first sequence missing.
        sequence: u64,
    },
    /// The event at `sequence` changed places with a later one.
    #[error("event {sequence} of replica {replica} was reordered")]
    Reordered {
        /// The chain.
        replica: String,
        /// The first event out of its place.
        sequence: u64,
    },
}

/// The MAC of `event` at `sequence` in `replica`'s chain, after `prev`.
#[must_use]
pub fn link_mac(
    key: &AuditKey,
    replica: &str,
    sequence: u64,
    prev: &[u8; 32],
    event: &AuditEvent,
) -> [u8; 32] {
    let mut m = Encoder::default();
    m.bytes(b"latchkey-audit-v1");
    m.str(replica);
    m.u64(sequence);
    m.bytes(prev);
    m.str(
        &event
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    );
    m.str(&event.event_type);
    m.str(event.outcome.as_str());
    m.str(&event.reason);
    m.str(&event.principal);
    m.str(&event.token_hmac);
    m.str(&event.project_id);
    m.str(&event.environment);
    m.str(&event.path);
    m.u64(event.secrets.len() as u64);
    for secret in &event.secrets {
        m.str(&secret.name);
        m.u64(secret.version.map_or(0, |v| v.saturating_add(1)));
    }
    m.str(&event.target);
    m.str(&event.client_ip);
    m.u64(event.forwarded_for.len() as u64);
    for hop in &event.forwarded_for {
        m.str(hop);
    }
    m.str(&event.user_agent);
    m.str(event.transport.as_str());
    m.str(&event.method);
    m.str(&event.trace_id);
    m.u64(event.count);
    key.mac(&m.0)
}

/// An unambiguous encoding: every field length-prefixed.
#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }
}

/// Where a chain resumes once retention reaped its oldest events: the last
/// reaped event's sequence and MAC, sealed under the audit key, so that
/// nobody without the key can move a chain's start past events they
/// removed and have it pass for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The chain.
    pub replica: String,
    /// The sequence of the last event reaped.
    pub sequence: u64,
    /// That event's MAC, which the next event follows.
    pub mac: [u8; 32],
    /// The MAC of the three above under the audit key.
    pub seal: [u8; 32],
}

impl Checkpoint {
    /// The checkpoint after `replica`'s event `sequence`, whose MAC is `mac`.
    #[must_use]
    pub fn new(key: &AuditKey, replica: &str, sequence: u64, mac: [u8; 32]) -> Self {
        Self {
            replica: replica.to_owned(),
            sequence,
            mac,
            seal: Self::seal_of(key, replica, sequence, &mac),
        }
    }

    fn seal_of(key: &AuditKey, replica: &str, sequence: u64, mac: &[u8; 32]) -> [u8; 32] {
        let mut m = Encoder::default();
        m.bytes(b"latchkey-audit-checkpoint-v1");
        m.str(replica);
        m.u64(sequence);
        m.bytes(mac);
        key.mac(&m.0)
    }

    /// Where verification of the chain starts, or `None` when the seal
    /// does not verify (the checkpoint was changed).
    #[must_use]
    pub fn start(&self, key: &AuditKey) -> Option<Start> {
        let expected = Self::seal_of(key, &self.replica, self.sequence, &self.mac);
        (expected == self.seal).then_some(Start {
            sequence: self.sequence + 1,
            prev_mac: self.mac,
        })
    }
}

/// Appends events to a replica's chain: the one writer of a chain holds it.
#[derive(Debug, Clone)]
pub struct ChainWriter {
    replica: String,
    next: Start,
}

impl ChainWriter {
    /// Continues `replica`'s chain from `next` ([`Start::GENESIS`] for a new one).
    #[must_use]
    pub fn new(replica: &str, next: Start) -> Self {
        Self {
            replica: replica.to_owned(),
            next,
        }
    }

    /// The replica whose chain this is.
    #[must_use]
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// `event` as the chain's next link.
    #[must_use]
    pub fn append(&mut self, key: &AuditKey, event: AuditEvent) -> Chained {
        let sequence = self.next.sequence;
        let mac = link_mac(key, &self.replica, sequence, &self.next.prev_mac, &event);
        self.next = Start {
            sequence: sequence + 1,
            prev_mac: mac,
        };
        Chained {
            replica: self.replica.clone(),
            sequence,
            mac,
            event,
        }
    }

    /// Takes back links that were never stored (their batch failed), so
    /// the chain continues from the last one that was.
    pub fn rewind(&mut self, to: Start) {
        self.next = to;
    }

    /// Where the next link goes.
    #[must_use]
    pub fn next(&self) -> Start {
        self.next
    }
}

/// Verifies one replica's chain, fed its events in sequence order, one at
/// a time (so a chain of any length verifies in constant memory). Each
/// event is checked when the next arrives, which tells a swap of two
/// events from a change to one.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    key: &'k AuditKey,
    replica: String,
    next: Start,
    pending: Option<Chained>,
    verified: u64,
}

impl<'k> ChainVerifier<'k> {
    /// Verifies `replica`'s chain from `start`.
    #[must_use]
    pub fn new(key: &'k AuditKey, replica: &str, start: Start) -> Self {
        Self {
            key,
            replica: replica.to_owned(),
            next: start,
            pending: None,
            verified: 0,
        }
    }

    /// The next event of the chain, in sequence order.
    pub fn push(&mut self, event: Chained) -> Result<(), Break> {
        if let Some(pending) = self.pending.take() {
            self.check(&pending, Some(&event))?;
        }
        self.pending = Some(event);
        Ok(())
    }

    /// Checks the last event; how many verified.
    pub fn finish(mut self) -> Result<u64, Break> {
        if let Some(pending) = self.pending.take() {
            self.check(&pending, None)?;
        }
        Ok(self.verified)
    }

    fn check(&mut self, row: &Chained, next: Option<&Chained>) -> Result<(), Break> {
        let replica = self.replica.clone();
        let expected = self.next.sequence;
        if row.sequence > expected {
            return Err(Break::Removed {
                replica,
                sequence: expected,
            });
        }
        if row.sequence < expected {
            // Two rows claim one place: one of them was moved there.
            return Err(Break::Reordered {
                replica,
                sequence: row.sequence,
            });
        }
        let prev = self.next.prev_mac;
        let mac = link_mac(self.key, &self.replica, expected, &prev, &row.event);
        if mac != row.mac {
            let swapped = next.is_some_and(|n| {
                link_mac(self.key, &self.replica, expected, &prev, &n.event) == n.mac
            });
            return Err(if swapped {
                Break::Reordered {
                    replica,
                    sequence: expected,
                }
            } else {
                Break::Changed {
                    replica,
                    sequence: expected,
                }
            });
        }
        self.next = Start {
            sequence: expected + 1,
            prev_mac: mac,
        };
        self.verified += 1;
        Ok(())
    }
}
