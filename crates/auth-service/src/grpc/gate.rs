//! Which listeners serve `Authorize`, the one call that hands out project keys.

use latchkey_domain::{AccessError, Reason};
use tonic::Request;

use super::AuthGrpc;
use crate::error::AuthError;

/// Which callers a listener lets call `Authorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeGate {
    /// Any caller with the internal key (one port serves everything).
    InternalKey,
    /// Nobody: `Authorize` is served on the internal port only.
    Elsewhere,
    /// Callers with the internal key and a client certificate the TLS
    /// layer verified (mTLS on the internal port).
    ClientCertificate,
}

impl AuthGrpc {
    /// Refuses `Authorize` where this listener does not serve it.
    pub(super) fn check_gate<T>(&self, request: &Request<T>) -> Result<(), AuthError> {
        let refused = match self.gate {
            AuthorizeGate::InternalKey => return Ok(()),
            AuthorizeGate::Elsewhere => {
                "Authorize is served on the internal port only (LATCHKEY_INTERNAL_ADDR)"
            }
            // The handshake already refused callers without a valid
            // certificate; this holds if the listener is ever misconfigured.
            AuthorizeGate::ClientCertificate if request.peer_certs().is_none() => {
                "Authorize needs a client certificate (mTLS)"
            }
            AuthorizeGate::ClientCertificate => return Ok(()),
        };
        Err(AccessError::new(Reason::PermissionDenied, refused).into())
    }
}
