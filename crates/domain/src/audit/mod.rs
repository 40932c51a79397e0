//! The audit trail's rules, with no I/O: what an event holds (never a
//! token, key or secret value), the keyed chain that makes each replica's
//! events tamper-evident, the HMAC a token is searched by, and the tally
//! that turns a flood of unverified calls into a bounded number of events.
//!
//! - [`chain`]: each event's MAC over its predecessor's, and verification
//!   naming the first event changed, removed or reordered.
//! - [`reach`]: whose events a reader may see.
//! - [`tally`]: calls refused before a token was verified, counted per
//!   client prefix and reason per interval.

pub mod chain;
pub mod reach;
pub mod tally;

use chrono::{DateTime, Utc};

use crate::crypto::{RootKey, hmac_sha256};

/// The label the audit key is derived from the root key with.
const AUDIT_KEY_LABEL: &str = "latchkey audit key v1";

/// The key that chains a replica's events and hashes tokens for searching.
/// Derived from the root key; the auth service keeps it (wrapped under the
/// root key, so a root-key rotation keeps old chains verifiable) and hands
/// it to the secrets service over the internal link.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    /// The audit key of `root`.
    #[must_use]
    pub fn derive(root: &RootKey) -> Self {
        Self(root.derive(AUDIT_KEY_LABEL))
    }

    /// From its 32 bytes (as stored or sent over the internal link).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its 32 bytes, to wrap or send; never logged.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The HMAC a presented token is recorded and searched by (Vault's
    /// `sys/audit-hash`): of its access part only, so a service token with
    /// or without its key part hashes alike. Lowercase hex.
    #[must_use]
    pub fn token_hmac(&self, token: &str) -> String {
        let access = crate::token::access_token_part(token.trim());
        let mut message = b"token\0".to_vec();
        message.extend_from_slice(access.as_bytes());
        hex::encode(hmac_sha256(&self.0, &message))
    }

    pub(crate) fn mac(&self, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, message)
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// Whether a call did what it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed and done.
    Allowed,
    /// Refused with a reason (a denial, or bad input).
    Denied,
    /// Allowed, but it failed (the database, a missing secret).
    Failed,
}

impl Outcome {
    /// The stored and wire form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// What a call refused with `reason` is: [`Outcome::Failed`] when it
    /// was not the caller's doing (a missing secret, a conflict, a service
    /// or the database unavailable, a timeout, a bug), else
    /// [`Outcome::Denied`].
    #[must_use]
    pub fn of_refusal(reason: &str) -> Self {
        const FAILURES: [&str; 8] = [
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "INTERNAL",
            "STORE_UNAVAILABLE",
            "AUTH_UNAVAILABLE",
            "AUDIT_UNAVAILABLE",
            "TIMEOUT",
            "CANCELLED",
        ];
        if FAILURES.contains(&reason) {
            Outcome::Failed
        } else {
            Outcome::Denied
        }
    }

    /// Parses [`Self::as_str`]'s form.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Allowed, Outcome::Denied, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// How the call arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// gRPC.
    Grpc,
    /// The Infisical-compatible HTTP API.
    Http,
    /// Nobody's call: the service itself (the bootstrap, the reaper).
    Internal,
}

impl Transport {
    /// The stored and wire form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
            Transport::Internal => "internal",
        }
    }

    /// Parses [`Self::as_str`]'s form.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Transport::Grpc, Transport::Http, Transport::Internal]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// A secret an event is about: its name, and the version read or written
/// (none for a listing's names or a refused call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The secret's name.
    pub name: String,
    /// The version read or written.
    pub version: Option<u64>,
}

/// One recorded call. Holds identifiers and HMACs only: the principal is an
/// identity or service token id, a token appears only as
/// [`AuditKey::token_hmac`], and no secret value or key is ever a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When the call was answered.
    pub time: DateTime<Utc>,
    /// What kind of call, e.g. `secret.read`, `token.create` (see the README).
    pub event_type: String,
    /// Allowed, denied or failed.
    pub outcome: Outcome,
    /// The denial reason (`SCOPE_DENIED`, `INVALID_ARGUMENT`, ...), or empty.
    pub reason: String,
    /// `identity:<id>` or `service-token:<id>`; empty when not known.
    pub principal: String,
    /// The caller's token as [`AuditKey::token_hmac`]; empty when none.
    pub token_hmac: String,
    /// The project acted on.
    pub project_id: String,
    /// The environment.
    pub environment: String,
    /// The folder path.
    pub path: String,
    /// The secrets read, listed, written or deleted.
    pub secrets: Vec<SecretRef>,
    /// What else the call acted on (a token id, an identity id), or empty.
    pub target: String,
    /// The client's address as the service decided it.
    pub client_ip: String,
    /// The `x-forwarded-for` chain a trusted proxy gave, nearest last.
    pub forwarded_for: Vec<String>,
    /// The caller's `user-agent`, cut to [`MAX_USER_AGENT`] characters.
    pub user_agent: String,
    /// gRPC, HTTP or the service itself.
    pub transport: Transport,
    /// The gRPC method (`latchkey.auth.v1.AuthService/CreateProject`) or
    /// the HTTP route (`GET /api/v3/secrets/raw`).
    pub method: String,
    /// The W3C trace id of the call's span, or empty.
    pub trace_id: String,
    /// How many calls this event stands for: 1, or an aggregate's count.
    pub count: u64,
}

/// The longest user agent kept.
pub const MAX_USER_AGENT: usize = 256;

impl AuditEvent {
    /// An event of `event_type` at `time`, with every other field empty.
    #[must_use]
    pub fn new(event_type: &str, time: DateTime<Utc>, transport: Transport) -> Self {
        Self {
            time,
            event_type: event_type.to_owned(),
            outcome: Outcome::Allowed,
            reason: String::new(),
            principal: String::new(),
            token_hmac: String::new(),
            project_id: String::new(),
            environment: String::new(),
            path: String::new(),
            secrets: Vec::new(),
            target: String::new(),
            client_ip: String::new(),
            forwarded_for: Vec::new(),
            user_agent: String::new(),
            transport,
            method: String::new(),
            trace_id: String::new(),
            count: 1,
        }
    }

    /// `user_agent` cut to [`MAX_USER_AGENT`] characters.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.chars().take(MAX_USER_AGENT).collect();
        self
    }
}

#[cfg(test)]
mod tests;
