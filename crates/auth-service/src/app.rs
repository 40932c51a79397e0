//! The auth service's use cases. Each takes an authenticated [`Caller`]
//! (or the token to authenticate) and parsed arguments, decides whether the
//! caller may act, loads what it needs, applies the domain's rules and
//! stores the result. Transports parse and encode; they never decide.
//!
//! - `authn`: verifying tokens, `LookupToken`.
//! - `admin`: who may administer what (delegation never widens).
//! - `projects`, `service_tokens`, `identities`, `access_tokens`,
//!   `memberships`: the admin calls, one concern each.
//! - `authorize`: the secrets service's `Authorize`.
//! - `keys`: project keys under the root key, token secret hashes.
//! - `maintenance`: use-count flushes, the reaper, the bootstrap admin.

mod access_tokens;
mod admin;
mod authn;
mod authorize;
mod identities;
mod keys;
mod kubernetes_auth;
mod maintenance;
mod memberships;
mod projects;
mod service_tokens;
mod universal_auth;

use std::sync::Arc;

use chrono::Duration;
use latchkey_domain::crypto::RootKey;
use latchkey_domain::model::{AccessToken, Identity, Principal, ServiceToken};
use latchkey_domain::ports::Clock;
use latchkey_service_kit::audit::AuditLog;
use latchkey_service_kit::config::InternalKey;

pub use self::access_tokens::IssuedAccessToken;
pub use self::admin::Caller;
pub use self::universal_auth::IssuedClientSecret;
use crate::limiter::{FailureLimiter, FailureLimits};
use crate::store::CachedAuthStore;
pub use crate::store::Freshness;
use crate::verifier::Verifier;
use latchkey_domain::token::{AccessTokenKeys, FingerprintKey};

/// Deleted and revoked tokens answer `TOKEN_REVOKED` this long, then are reaped.
pub const REVOKED_RETENTION_DAYS: i64 = 7;

/// A caller whose token was verified and is live.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// A service token.
    Service {
        /// The token's row.
        token: ServiceToken,
    },
    /// An identity access token.
    Identity {
        /// The token's row.
        token: AccessToken,
        /// Its identity.
        identity: Identity,
    },
}

impl Authenticated {
    /// Whose token it is.
    #[must_use]
    pub fn principal(&self) -> Principal {
        match self {
            Authenticated::Service { token } => Principal::ServiceToken(token.id.clone()),
            Authenticated::Identity { identity, .. } => Principal::Identity(identity.id.clone()),
        }
    }
}

/// What `LookupToken` reports.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The verified caller.
    pub caller: Authenticated,
    /// For a service token, its project's encryption count.
    pub key_encryption_count: u64,
}

/// The auth service's use cases.
#[derive(Debug)]
pub struct AuthApp {
    store: CachedAuthStore,
    root_key: RootKey,
    /// The previous root key during a rotation: opens, never wraps.
    secondary_root_key: Option<RootKey>,
    internal_key: InternalKey,
    clock: Arc<dyn Clock>,
    verifier: Verifier,
    /// How long expired tokens are kept, answering `TOKEN_EXPIRED`.
    expired_grace: Duration,
    failures: FailureLimiter,
    /// Fingerprints of token secrets, so a wrong one costs no argon2.
    fingerprints: FingerprintKey,
    /// What access tokens (JWTs) are signed and verified with.
    access_keys: AccessTokenKeys,
    /// Hashing a new token's secret: at most one argon2 per core at once,
    /// whatever callers do (each takes ~19 MiB and a core for ~45 ms).
    hashing: Arc<tokio::sync::Semaphore>,
    /// Where calls and the service's own acts are recorded.
    audit: AuditLog,
}

impl AuthApp {
    /// Wires the use cases.
    #[must_use]
    pub fn new(
        store: CachedAuthStore,
        root_key: RootKey,
        internal_key: InternalKey,
        clock: Arc<dyn Clock>,
        verifier: Verifier,
    ) -> Self {
        let hashers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            store,
            fingerprints: FingerprintKey::derive(&root_key),
            access_keys: AccessTokenKeys::derive(&root_key, None),
            hashing: Arc::new(tokio::sync::Semaphore::new(hashers)),
            root_key,
            secondary_root_key: None,
            internal_key,
            clock,
            verifier,
            expired_grace: Duration::seconds(crate::config::default::EXPIRED_GRACE_SECONDS),
            failures: FailureLimiter::new(FailureLimits::default()),
            audit: AuditLog::off(),
        }
    }

    /// Records calls and the service's own acts in `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// The clock the service goes by (tests advance it).
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Where the transport records each call once it is answered.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// How many failed verifications a token id or client IP may make.
    #[must_use]
    pub fn with_failure_limits(mut self, limits: FailureLimits) -> Self {
        self.failures = FailureLimiter::new(limits);
        self
    }

    /// How long expired tokens keep answering `TOKEN_EXPIRED` before the
    /// reaper deletes them.
    #[must_use]
    pub fn with_expired_grace(mut self, grace: Duration) -> Self {
        self.expired_grace = grace;
        self
    }

    /// The verifier, for its counters.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}
