//! The traits the services are generic over, with their real
//! implementations where those need no I/O.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::access::Form;
use crate::crypto::{Sealed, WireKey};
use crate::model::{Principal, ProjectId};
use crate::path::{Environment, SecretPath};
use crate::scope::{Action, Scopes};
use crate::{AccessError, InvalidInput};

/// The current time, injected so expiry is tested by moving a clock, not by sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the wall clock; everything else is given a Clock"
    )]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A bearer token as the caller sent it, less the key part of a four-part
/// service token; its `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Takes the presented text, keeping only the access token of a service
    /// token: the key part is cut off here, at the edge, and never copied.
    #[must_use]
    pub fn new(raw: &str) -> Self {
        Self(crate::token::access_token_part(raw).to_owned())
    }

    /// The token text (never a key part). Call only to send or parse it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// What the secrets service asks the auth service before every call.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The caller's token.
    pub token: BearerToken,
    /// The end client's address, when known.
    pub client_ip: Option<IpAddr>,
    /// The project; `None` means the service token's own project.
    pub project_id: Option<ProjectId>,
    /// The environment.
    pub environment: Environment,
    /// The folder.
    pub path: SecretPath,
    /// Read or write.
    pub action: Action,
    /// Ciphertext or plaintext (a `*Raw` call).
    pub form: Form,
    /// A recursive listing.
    pub recursive: bool,
}

/// An allowed call and what the secrets service needs to serve it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Whose token was granted.
    pub principal: Principal,
    /// The project the call acts on.
    pub project_id: ProjectId,
    /// The token's scopes, to filter recursive listings.
    pub scopes: Scopes,
    /// The project key under the token's key part (service tokens).
    pub encrypted_project_key: Option<Sealed>,
    /// The project key in clear, only for raw calls on projects without e2ee.
    pub project_key: Option<WireKey>,
}

/// Why a call was not authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// A denial with its reason; [`crate::Reason::AuthUnavailable`] when no
    /// decision could be obtained, and the caller must fail closed.
    #[error(transparent)]
    Denied(#[from] AccessError),
    /// The request itself is wrong (e.g. no project id with an identity token).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The project does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// What a service token is, for a client that asks about its own token
/// (Infisical's `GET /api/v2/service-token`). Uses none of its uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTokenDetails {
    /// Token id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its project.
    pub project_id: ProjectId,
    /// Its scopes as `(environment, folder glob)` text.
    pub scopes: Vec<(String, String)>,
    /// May read.
    pub read: bool,
    /// May write.
    pub write: bool,
    /// Expiry; `None` never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// The project key under the token's key part, without associated data.
    pub encrypted_project_key: Sealed,
}

/// A machine identity access token as a renewal or a login hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The token to use from now on (a JWT renews to a new one).
    pub access_token: BearerToken,
    /// Seconds until its new expiry.
    pub expires_in: i64,
    /// The max TTL it was issued under, in seconds.
    pub max_ttl: i64,
}

/// A machine identity's login credentials, as its client presents them.
/// Its `Debug` shows neither the secret nor the JWT.
#[derive(Clone, PartialEq, Eq)]
pub enum LoginCredentials {
    /// Universal Auth: a client ID and a client secret.
    UniversalAuth {
        /// The client ID.
        client_id: String,
        /// The client secret.
        client_secret: String,
    },
    /// Kubernetes Auth: the identity and a service-account JWT.
    KubernetesAuth {
        /// The identity to log in as.
        identity_id: String,
        /// The workload's projected service-account token.
        jwt: String,
    },
}

impl fmt::Debug for LoginCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginCredentials::UniversalAuth { client_id, .. } => f
                .debug_struct("UniversalAuth")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            LoginCredentials::KubernetesAuth { identity_id, .. } => f
                .debug_struct("KubernetesAuth")
                .field("identity_id", identity_id)
                .finish_non_exhaustive(),
        }
    }
}

/// What a login trades its credentials for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The identity that logged in.
    pub identity_id: crate::model::IdentityId,
    /// Its new access token.
    pub token: Renewed,
}

/// Decides whether a call is allowed. Object-safe (held as
/// `Arc<dyn Authorizer>`), so that tests can pass a fake without a type
/// parameter threading through the service.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync + std::fmt::Debug + 'static {
    /// Authorizes one call, consuming one use of the token when allowed.
    async fn authorize(&self, request: AuthorizationRequest) -> Result<Grant, AuthorizeError>;

    /// Describes the caller's own token, checked as for any call (expiry,
    /// revocation, trusted IPs from `client_ip`); `None` when it is not a
    /// service token.
    async fn describe(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<ServiceTokenDetails>, AuthorizeError>;

    /// Renews a machine identity access token (Token Auth), checked as the
    /// auth service checks its own `RenewAccessToken` for `client_ip`.
    async fn renew(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Renewed, AuthorizeError>;

    /// Trades a machine identity's login credentials for an access token,
    /// checked as the auth service checks its own logins for `client_ip`.
    async fn login(
        &self,
        credentials: LoginCredentials,
        client_ip: Option<IpAddr>,
    ) -> Result<LoggedIn, AuthorizeError>;

    /// Revokes a machine identity access token by the token itself.
    async fn revoke(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthorizeError>;

    /// Counts `count` encryptions this service made under `project_id`'s
    /// key outside a write (the auth service keeps each key's count
    /// against its 2^32 budget); `AUTH_UNAVAILABLE` when it cannot.
    async fn count_encryptions(
        &self,
        project_id: &ProjectId,
        count: u64,
    ) -> Result<(), AuthorizeError>;

    /// The audit key this service chains its events and hashes tokens
    /// with, held by the auth service; `AUTH_UNAVAILABLE` when it cannot
    /// be fetched.
    async fn audit_key(&self) -> Result<crate::audit::AuditKey, AuthorizeError>;

    /// Whose audit events the holder of `token` may read; consumes one use.
    async fn audit_reach(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<crate::audit::reach::AuditReader, AuthorizeError>;
}

/// Where a service's audit events are kept: its own database's table.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// Appends `links` all together, or none of them.
    async fn append(&self, links: &[crate::audit::chain::Chained]) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_keeps_no_key_part_of_a_four_part_service_token() {
        let access = "st.0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b.00112233445566778899aabbccddeeff";
        let key = "ffeeddccbbaa99887766554433221100";
        let bearer = BearerToken::new(&format!("{access}.{key}"));
        assert_eq!(bearer.expose(), access);
        assert_eq!(BearerToken::new(access), bearer);
        assert_eq!(format!("{bearer:?}"), "BearerToken(<redacted>)");
    }
}
