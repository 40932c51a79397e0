//! The auth service's errors and their one mapping to gRPC statuses.

use latchkey_domain::model::{Principal, ProjectId};
use latchkey_domain::{AccessError, InvalidInput};
use latchkey_service_kit::status::{self, cause_chain};
use latchkey_store::StoreError;
use tonic::Status;

/// The cause of an internal error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A denial with a reason from DESIGN.md's table.
    #[error(transparent)]
    Denied(#[from] AccessError),
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The named thing exists already.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (a key that does not unwrap, a hash that fails).
    #[error("{what}")]
    Internal {
        /// What was being done.
        what: String,
        /// Why it failed, when something else failed first.
        #[source]
        source: Option<Cause>,
    },
}

impl AuthError {
    /// A store failure, with a unique-key conflict said as `message` (what
    /// exists already, and what to do instead).
    #[must_use]
    pub fn conflict_or(err: StoreError, message: impl FnOnce() -> String) -> Self {
        match err {
            StoreError::Conflict(_) => AuthError::Conflict(message()),
            other => other.into(),
        }
    }

    /// An internal error caused by `source`.
    pub fn internal(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        AuthError::Internal {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A denial of `principal`'s verified token about `project_id` says so;
    /// anything else is unchanged.
    #[must_use]
    pub fn about(self, (principal, project_id): (Principal, Option<ProjectId>)) -> Self {
        match self {
            AuthError::Denied(e) => AuthError::Denied(e.about(principal, project_id)),
            other => other,
        }
    }

    /// An internal error with no other cause.
    pub fn broken(what: impl Into<String>) -> Self {
        AuthError::Internal {
            what: what.into(),
            source: None,
        }
    }
}

impl AuthError {
    /// The reason the caller is told (and the audit records).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Denied(e) => e.reason.as_str(),
            AuthError::Invalid(_) => status::INVALID_ARGUMENT_REASON,
            AuthError::NotFound(_) => "NOT_FOUND",
            AuthError::Conflict(_) | AuthError::Store(StoreError::Conflict(_)) => "ALREADY_EXISTS",
            AuthError::Store(StoreError::Database(_) | StoreError::Busy(_)) => {
                latchkey_domain::Reason::StoreUnavailable.as_str()
            }
            AuthError::Store(StoreError::Corrupt(_)) | AuthError::Internal { .. } => "INTERNAL",
        }
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match &err {
            // The caller's mistakes: worth a line, not an alert.
            AuthError::Denied(e) => {
                tracing::info!(reason = e.reason.as_str(), "denied");
                status::access_denied(e)
            }
            AuthError::Invalid(e) => {
                tracing::info!(field = %e.field, "invalid argument");
                status::invalid_argument(e)
            }
            AuthError::NotFound(m) => status::not_found(m),
            AuthError::Conflict(m) => status::already_exists(m),
            AuthError::Store(StoreError::Conflict(m)) => {
                tracing::info!(error = %m, "conflict");
                status::already_exists("a conflicting row exists; retry")
            }
            // A dependency down or busy: the operator's concern, not a bug,
            // and the caller's to retry.
            AuthError::Store(StoreError::Database(_) | StoreError::Busy(_)) => {
                tracing::warn!(error = %cause_chain(&err), "database unavailable");
                status::access_denied(&AccessError::store_unavailable())
            }
            AuthError::Store(StoreError::Corrupt(_)) | AuthError::Internal { .. } => {
                tracing::error!(error = %cause_chain(&err), "internal error");
                status::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey_domain::Reason;
    use tonic::Code;

    use super::*;

    #[test]
    fn every_variant_maps_to_its_code_reason_and_message() {
        let table: Vec<(AuthError, Code, &str, &str)> = vec![
            (
                AccessError::new(Reason::TokenExpired, "the token expired").into(),
                Code::Unauthenticated,
                "TOKEN_EXPIRED",
                "the token expired",
            ),
            (
                InvalidInput::new("name", "is required").into(),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "invalid name: is required",
            ),
            (
                AuthError::NotFound("project \"p\" not found".into()),
                Code::NotFound,
                "NOT_FOUND",
                "project \"p\" not found",
            ),
            (
                AuthError::Conflict("already attached".into()),
                Code::AlreadyExists,
                "ALREADY_EXISTS",
                "already attached",
            ),
            (
                StoreError::Conflict("UNIQUE constraint failed: project.id".into()).into(),
                Code::AlreadyExists,
                "ALREADY_EXISTS",
                "a conflicting row exists; retry",
            ),
            (
                StoreError::unavailable("connection refused").into(),
                Code::Unavailable,
                "STORE_UNAVAILABLE",
                "the database is busy or unreachable; nothing was changed, retry in a moment",
            ),
            (
                StoreError::Corrupt("scopes: not JSON".into()).into(),
                Code::Internal,
                "INTERNAL",
                "internal error; the server log has the details",
            ),
            (
                AuthError::internal("argon2 hash failed", std::io::Error::other("no memory")),
                Code::Internal,
                "INTERNAL",
                "internal error; the server log has the details",
            ),
            (
                AuthError::broken("argon2 worker stopped"),
                Code::Internal,
                "INTERNAL",
                "internal error; the server log has the details",
            ),
        ];
        for (err, code, reason, message) in table {
            let what = format!("{err:?}");
            let status = Status::from(err);
            assert_eq!(status.code(), code, "{what}");
            assert_eq!(
                status::reason_of(&status).as_deref(),
                Some(reason),
                "{what}"
            );
            assert_eq!(status.message(), message, "{what}");
        }
    }

    #[test]
    fn internal_errors_keep_their_cause_for_the_log_and_never_send_it() {
        let err = AuthError::internal("cannot write /x", std::io::Error::other("disk full"));
        assert_eq!(cause_chain(&err), "cannot write /x: disk full");
        assert!(!Status::from(err).message().contains("disk full"));
    }
}
