//! The auth service's errors and their one mapping to gRPC statuses.

use latchkey_domain::{AccessError, InvalidInput};
use latchkey_service_kit::status;
use latchkey_store::StoreError;
use tonic::Status;

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
    #[error("{0}")]
    Internal(String),
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Denied(e) => {
                tracing::info!(reason = e.reason.as_str(), "denied");
                status::access_denied(&e)
            }
            AuthError::Invalid(e) => {
                tracing::info!(field = %e.field, "invalid argument");
                status::invalid_argument(&e)
            }
            AuthError::NotFound(m) => status::not_found(&m),
            AuthError::Conflict(m) => status::already_exists(&m),
            AuthError::Store(StoreError::Conflict(m)) => {
                tracing::info!(error = %m, "conflict");
                status::already_exists("a conflicting row exists; retry")
            }
            AuthError::Store(
                e @ (StoreError::Corrupt(_) | StoreError::Database(_) | StoreError::Busy(_)),
            ) => {
                tracing::error!(error = %e, "store failure");
                status::internal()
            }
            AuthError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                status::internal()
            }
        }
    }
}
