//! Machine identities and the access tokens Token Auth issues them.

use chrono::{DateTime, Utc};

use super::{AccessTokenId, IdentityId, ProjectId};
use crate::access::TokenState;
use crate::identity::{OrgRole, ProjectRole};
use crate::ip::TrustedIps;
use crate::scope::Scopes;
use crate::token::SecretHash;

/// A machine identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its id.
    pub id: IdentityId,
    /// Its display name.
    pub name: String,
    /// Its organisation role.
    pub org_role: OrgRole,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An identity access token as the server knows it: only the hash of its secret.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// Its id.
    pub id: AccessTokenId,
    /// The identity it authenticates.
    pub identity_id: IdentityId,
    /// Its name.
    pub name: String,
    /// argon2id PHC hash of the secret part.
    pub secret_hash: SecretHash,
    /// Expiry; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Allowed uses so far.
    pub use_count: u64,
    /// Maximum uses; 0 is unlimited (from the config it was issued under).
    pub num_uses_limit: u64,
    /// TTL it was issued with, for renewals.
    pub ttl_seconds: i64,
    /// Max TTL it was issued with, for renewals.
    pub max_ttl_seconds: i64,
    /// Addresses it may be used from.
    pub trusted_ips: TrustedIps,
    /// Last allowed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl AccessToken {
    /// The lifecycle state the access checks need.
    #[must_use]
    pub fn state(&self) -> TokenState {
        TokenState {
            expires_at: self.expires_at,
            active: true,
            revoked: self.revoked_at.is_some(),
            use_count: self.use_count,
            use_limit: self.num_uses_limit,
        }
    }
}

/// An identity's membership of a project.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The project.
    pub project_id: ProjectId,
    /// The member.
    pub identity_id: IdentityId,
    /// Its role in the project.
    pub role: ProjectRole,
    /// Scopes narrowing the role; `None` covers the whole project.
    pub scopes: Option<Scopes>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}
