//! Machine identities: who they are, their roles in the organisation and
//! in projects, the access tokens they hold, and one module per auth method
//! for that method's configuration.

pub mod kubernetes_auth;
mod token_auth;
pub mod universal_auth;

use chrono::{DateTime, Utc};

pub use kubernetes_auth::{KubernetesAuthChanges, KubernetesAuthConfig, ServiceAccountKeys};
pub use token_auth::{TokenAuthChanges, TokenAuthConfig};
pub use universal_auth::{
    ClientSecret, ClientSecretTerms, ClientSecretValue, UniversalAuthChanges, UniversalAuthConfig,
};

use crate::InvalidInput;
use crate::access::TokenState;
use crate::ip::TrustedIps;
use crate::model::{AccessTokenId, IdentityId, ProjectId};
use crate::scope::{Permissions, Scopes};
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
    /// argon2id PHC hash of the secret part of a token issued before JWTs
    /// (`ia.`); `None` for a JWT, which its signature proves.
    pub secret_hash: Option<SecretHash>,
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

/// An identity's role in the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRole {
    /// May call every admin method.
    Admin,
    /// No org-wide rights; acts through project memberships.
    Member,
    /// No org-wide rights at all; project memberships still apply.
    NoAccess,
}

impl OrgRole {
    /// Parses `admin`, `member` or `no-access`; the error names `org_role`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        match raw {
            "admin" => Ok(OrgRole::Admin),
            "member" => Ok(OrgRole::Member),
            "no-access" => Ok(OrgRole::NoAccess),
            other => Err(InvalidInput::new(
                "org_role",
                format!("{other:?} is not an org role: use admin, member or no-access"),
            )),
        }
    }

    /// The wire and storage form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
            OrgRole::NoAccess => "no-access",
        }
    }
}

/// An identity's role in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectRole {
    /// Reads secrets.
    Viewer,
    /// Reads and writes secrets.
    Developer,
    /// Reads and writes secrets and manages the project's tokens and settings.
    Admin,
}

impl ProjectRole {
    /// Parses `viewer`, `developer` or `admin`; the error names `role`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        match raw {
            "viewer" => Ok(ProjectRole::Viewer),
            "developer" => Ok(ProjectRole::Developer),
            "admin" => Ok(ProjectRole::Admin),
            other => Err(InvalidInput::new(
                "role",
                format!("{other:?} is not a project role: use viewer, developer or admin"),
            )),
        }
    }

    /// The wire and storage form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Viewer => "viewer",
            ProjectRole::Developer => "developer",
            ProjectRole::Admin => "admin",
        }
    }

    /// What the role may do with secrets.
    #[must_use]
    pub fn permissions(self) -> Permissions {
        Permissions {
            read: true,
            write: !matches!(self, ProjectRole::Viewer),
        }
    }

    /// True when the role manages the project's tokens and settings.
    #[must_use]
    pub fn manages_project(self) -> bool {
        matches!(self, ProjectRole::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_their_slugs() {
        for role in ["admin", "member", "no-access"] {
            assert_eq!(OrgRole::parse(role).unwrap().as_str(), role);
        }
        for role in ["viewer", "developer", "admin"] {
            assert_eq!(ProjectRole::parse(role).unwrap().as_str(), role);
        }
        assert_eq!(OrgRole::parse("owner").unwrap_err().field, "org_role");
        assert_eq!(ProjectRole::parse("Viewer").unwrap_err().field, "role");
    }

    #[test]
    fn viewer_reads_developer_writes_admin_manages() {
        let viewer = ProjectRole::Viewer.permissions();
        assert!(viewer.read && !viewer.write);
        let developer = ProjectRole::Developer.permissions();
        assert!(developer.read && developer.write);
        assert!(!ProjectRole::Developer.manages_project());
        assert!(ProjectRole::Admin.manages_project());
        assert!(ProjectRole::Admin.permissions().write);
    }
}
