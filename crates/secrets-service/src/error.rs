//! The secrets service's errors and their one mapping to gRPC statuses.

use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_service_kit::status;
use latchkey_store::StoreError;
use tonic::Status;

/// What a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A denial, from the auth service or for a missing token.
    #[error(transparent)]
    Denied(#[from] AccessError),
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No such secret.
    #[error("{0}")]
    NotFound(String),
    /// A create-only write found the secret there.
    #[error("{0}")]
    AlreadyExists(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not decrypt under the project key.
    #[error("{0}")]
    Undecryptable(String),
    /// Sealing a value under the project key failed.
    #[error("{0}")]
    Encryption(String),
    /// The auth service allowed a raw call without sending the project key.
    #[error("the auth service granted a raw call without the project key")]
    NoProjectKey,
    /// A broken invariant of this service (a bug, never the caller's doing).
    #[error("{0}")]
    Internal(String),
}

impl From<latchkey_domain::ports::AuthorizeError> for SecretsError {
    fn from(err: latchkey_domain::ports::AuthorizeError) -> Self {
        use latchkey_domain::ports::AuthorizeError;
        match err {
            AuthorizeError::Denied(e) => SecretsError::Denied(e),
            AuthorizeError::Invalid(e) => SecretsError::Invalid(e),
            AuthorizeError::NotFound(m) => SecretsError::NotFound(m),
        }
    }
}

static STORE_UNAVAILABLE: std::sync::LazyLock<AccessError> =
    std::sync::LazyLock::new(AccessError::store_unavailable);

/// What a failure means for the caller, whatever the transport.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Refused (`reason`, message).
    Denied(&'a AccessError),
    /// Bad input naming the field.
    Invalid(&'a InvalidInput),
    /// No such secret (or project).
    NotFound(&'a str),
    /// A create-only write found the secret there.
    AlreadyExists(&'a str),
    /// Our fault; details stay in the log.
    Internal,
}

impl Outcome<'_> {
    /// The reason the caller is told (and the audit records).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Denied(e) => e.reason.as_str(),
            Outcome::Invalid(_) => status::INVALID_ARGUMENT_REASON,
            Outcome::NotFound(_) => "NOT_FOUND",
            Outcome::AlreadyExists(_) => "ALREADY_EXISTS",
            Outcome::Internal => "INTERNAL",
        }
    }
}

impl SecretsError {
    /// What the caller is told; both transports answer through this.
    #[must_use]
    pub fn outcome(&self) -> Outcome<'_> {
        match self {
            SecretsError::Denied(e) => Outcome::Denied(e),
            SecretsError::Invalid(e) => Outcome::Invalid(e),
            SecretsError::NotFound(m) => Outcome::NotFound(m),
            SecretsError::AlreadyExists(m) => Outcome::AlreadyExists(m),
            // A concurrent create of the same secret won the race.
            SecretsError::Store(StoreError::Conflict(_)) => Outcome::AlreadyExists(
                "a concurrent write created this secret first; read it, or retry as an update",
            ),
            SecretsError::Store(StoreError::Database(_) | StoreError::Busy(_)) => {
                Outcome::Denied(&STORE_UNAVAILABLE)
            }
            SecretsError::Store(StoreError::Corrupt(_))
            | SecretsError::Undecryptable(_)
            | SecretsError::Encryption(_)
            | SecretsError::NoProjectKey
            | SecretsError::Internal(_) => Outcome::Internal,
        }
    }

    /// Logs the failure at its level (never a token, key or value); each
    /// transport calls it once as it answers.
    pub fn log(&self) {
        match self {
            SecretsError::Denied(e) if e.reason == Reason::AuthUnavailable => {
                tracing::warn!(
                    reason = e.reason.as_str(),
                    "auth service unavailable; failing closed"
                );
            }
            SecretsError::Denied(e) => tracing::info!(reason = e.reason.as_str(), "denied"),
            SecretsError::Invalid(e) => tracing::info!(field = %e.field, "invalid argument"),
            SecretsError::NotFound(_) | SecretsError::AlreadyExists(_) => {}
            SecretsError::Store(StoreError::Conflict(m)) => tracing::info!(error = %m, "conflict"),
            SecretsError::Store(e @ (StoreError::Database(_) | StoreError::Busy(_))) => {
                tracing::warn!(error = %status::cause_chain(e), "database unavailable");
            }
            SecretsError::Store(e @ StoreError::Corrupt(_)) => {
                tracing::error!(error = %status::cause_chain(e), "stored data is corrupt");
            }
            SecretsError::Undecryptable(m) => {
                tracing::error!(error = %m, "stored secret does not decrypt");
            }
            SecretsError::Encryption(m) => tracing::error!(error = %m, "encryption failed"),
            SecretsError::NoProjectKey | SecretsError::Internal(_) => {
                tracing::error!(error = %self, "internal error");
            }
        }
    }
}

impl From<SecretsError> for Status {
    fn from(err: SecretsError) -> Self {
        err.log();
        match err.outcome() {
            Outcome::Denied(e) => status::access_denied(e),
            Outcome::Invalid(e) => status::invalid_argument(e),
            Outcome::NotFound(m) => status::not_found(m),
            Outcome::AlreadyExists(m) => status::already_exists(m),
            Outcome::Internal => status::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn a_database_that_is_down_or_busy_is_store_unavailable_with_a_retry_delay() {
        let status = Status::from(SecretsError::Store(StoreError::unavailable("refused")));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status::reason_of(&status).as_deref(),
            Some("STORE_UNAVAILABLE")
        );
        assert!(status.message().contains("nothing was changed"));
        assert_eq!(
            status.get_error_details().retry_info().unwrap().retry_delay,
            Some(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn existing_secrets_and_lost_create_races_are_already_exists_with_a_reason() {
        for err in [
            SecretsError::AlreadyExists("secret K exists".into()),
            SecretsError::Store(StoreError::Conflict("UNIQUE constraint failed".into())),
        ] {
            let status = Status::from(err);
            assert_eq!(status.code(), Code::AlreadyExists);
            assert_eq!(
                status::reason_of(&status).as_deref(),
                Some("ALREADY_EXISTS")
            );
        }
    }
}
