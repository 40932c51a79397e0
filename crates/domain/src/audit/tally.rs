//! Calls refused before their token was verified (malformed, over a
//! failure limit, the verification queue full) are not recorded one by
//! one: a flood would become an audit flood. They are counted per client
//! prefix (an IPv4 /24, an IPv6 /64) and reason, and each interval becomes
//! one aggregated event per pair, so a replica writes at most
//! [`MAX_KEYS`] + [`OVERFLOW_REASONS`] such events per interval, whatever
//! callers send. Past [`MAX_KEYS`] pairs in one interval, further prefixes
//! are counted together under `*` per reason.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;

use super::{AuditEvent, Outcome, Transport};

/// Distinct (prefix, reason) pairs one interval keeps apart.
pub const MAX_KEYS: usize = 256;

/// The reasons a call refused without a verified token is counted under
/// rather than recorded alone: a malformed token or request, a wrong token
/// (it names no principal, and its HMAC finds nothing), a failure limit,
/// the auth service or the audit table unavailable, a timeout, a call
/// abandoned. Any other refusal is recorded as its own event.
pub const UNVERIFIED_REASONS: [&str; 8] = [
    "TOKEN_MALFORMED",
    "TOKEN_INVALID",
    "TOO_MANY_FAILED_ATTEMPTS",
    "INVALID_ARGUMENT",
    "AUTH_UNAVAILABLE",
    "AUDIT_UNAVAILABLE",
    "TIMEOUT",
    "CANCELLED",
];

/// Each of [`UNVERIFIED_REASONS`] has one overflow pair.
pub const OVERFLOW_REASONS: usize = UNVERIFIED_REASONS.len();

/// `reason` as the one of [`UNVERIFIED_REASONS`] it is, if it is one.
#[must_use]
pub fn unverified_reason(reason: &str) -> Option<&'static str> {
    UNVERIFIED_REASONS.into_iter().find(|r| *r == reason)
}

/// The event type of an aggregate.
pub const REFUSED_UNVERIFIED: &str = "call.refused_unverified";

/// The prefix a client address is counted under: IPv4 /24, IPv6 /64.
#[must_use]
pub fn client_prefix(ip: IpAddr) -> IpNet {
    let ip = crate::ip::canonical(ip);
    let len = if ip.is_ipv4() { 24 } else { 64 };
    IpNet::new(ip, len).map_or_else(|_| IpNet::from(ip), |net| net.trunc())
}

/// One interval's counts, keyed by prefix (`*` past [`MAX_KEYS`]) and reason.
#[derive(Debug)]
pub struct Tally {
    interval: Duration,
    started: DateTime<Utc>,
    counts: HashMap<(String, &'static str), Count>,
}

/// A pair's count and what the calls looked like.
#[derive(Debug, Clone)]
struct Count {
    n: u64,
    method: String,
    transport: Transport,
}

impl Tally {
    /// A tally closing every `interval`, its first interval starting at `now`.
    #[must_use]
    pub fn new(interval: Duration, now: DateTime<Utc>) -> Self {
        Self {
            interval,
            started: now,
            counts: HashMap::new(),
        }
    }

    /// Counts one refused call from `ip` (when known) for `reason`.
    pub fn count(
        &mut self,
        ip: Option<IpAddr>,
        reason: &'static str,
        method: &str,
        transport: Transport,
    ) {
        let prefix = ip.map_or_else(|| "unknown".to_owned(), |ip| client_prefix(ip).to_string());
        let key = if self.counts.contains_key(&(prefix.clone(), reason))
            || self.counts.len() < MAX_KEYS
        {
            (prefix, reason)
        } else {
            ("*".to_owned(), reason)
        };
        self.counts
            .entry(key)
            .or_insert_with(|| Count {
                n: 0,
                method: method.to_owned(),
                transport,
            })
            .n += 1;
    }

    /// When the current interval closes.
    #[must_use]
    pub fn due(&self) -> DateTime<Utc> {
        self.started + self.interval
    }

    /// At or past [`Self::due`]: the interval's aggregated events (none
    /// when nothing was refused), and a new interval from `now`. Before
    /// it: nothing.
    pub fn close(&mut self, now: DateTime<Utc>) -> Vec<AuditEvent> {
        if now < self.due() {
            return Vec::new();
        }
        self.started = now;
        let mut events: Vec<AuditEvent> = self
            .counts
            .drain()
            .map(|((prefix, reason), count)| {
                let mut event = AuditEvent::new(REFUSED_UNVERIFIED, now, count.transport);
                event.outcome = Outcome::Denied;
                reason.clone_into(&mut event.reason);
                event.client_ip = prefix;
                event.method = count.method;
                event.count = count.n;
                event
            })
            .collect();
        events.sort_by(|a, b| (&a.client_ip, &a.reason).cmp(&(&b.client_ip, &b.reason)));
        events
    }
}
