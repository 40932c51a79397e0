//! Service tokens: project-scoped credentials with a key part only the
//! holder has.

use chrono::{DateTime, Utc};

use super::{ProjectId, ServiceTokenId, TokenName};
use crate::access::TokenState;
use crate::crypto::Sealed;
use crate::ip::TrustedIps;
use crate::scope::{Permissions, Scopes};
use crate::token::SecretHash;

/// A service token as the server knows it: only the hash of its secret,
/// and the project key encrypted under its key part.
#[derive(Debug, Clone)]
pub struct ServiceToken {
    /// Its id.
    pub id: ServiceTokenId,
    /// The project it reads and writes.
    pub project_id: ProjectId,
    /// Its name.
    pub name: String,
    /// argon2id PHC hash of the secret part.
    pub secret_hash: SecretHash,
    /// The environments and folders it reaches.
    pub scopes: Scopes,
    /// Read, write or both.
    pub permissions: Permissions,
    /// Per-token IP allowlist.
    pub trusted_ips: TrustedIps,
    /// Expiry; `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// False when deactivated.
    pub active: bool,
    /// Set when deleted.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The project key encrypted under the token's key part.
    pub encrypted_project_key: Sealed,
    /// Allowed uses so far.
    pub use_count: u64,
    /// Last allowed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl ServiceToken {
    /// The lifecycle state the access checks need.
    #[must_use]
    pub fn state(&self) -> TokenState {
        TokenState {
            expires_at: self.expires_at,
            active: self.active,
            revoked: self.revoked_at.is_some(),
            use_count: self.use_count,
            use_limit: 0,
        }
    }
}

/// A service token to issue, as an admin asked for it.
#[derive(Debug, Clone)]
pub struct NewServiceToken {
    /// The project it will read and write.
    pub project_id: ProjectId,
    /// Its name.
    pub name: TokenName,
    /// At least one scope.
    pub scopes: Scopes,
    /// At least one permission.
    pub permissions: Permissions,
    /// Lifetime in seconds; 0 never expires.
    pub expires_in_seconds: i64,
    /// Per-token IP allowlist.
    pub trusted_ips: TrustedIps,
}
