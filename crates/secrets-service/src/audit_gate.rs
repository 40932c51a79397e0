//! Who may read the secrets service's audit trail: the auth service says,
//! through `GetAuditReach` (which also verifies the token and spends a use).

use std::net::IpAddr;
use std::sync::Arc;

use latchkey_domain::audit::AuditKey;
use latchkey_domain::audit::reach::AuditReader;
use latchkey_domain::ports::{Authorizer, BearerToken};
use latchkey_service_kit::audit::api::AuditGate;
use tonic::Status;

use crate::error::SecretsError;

/// [`AuditGate`] asking the auth service.
#[derive(Debug, Clone)]
pub struct AuthorizerAuditGate(pub Arc<dyn Authorizer>);

#[tonic::async_trait]
impl AuditGate for AuthorizerAuditGate {
    async fn reader(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<AuditReader, Status> {
        self.0
            .audit_reach(token, client_ip)
            .await
            .map_err(|e| SecretsError::from(e).into())
    }

    async fn key(&self) -> Result<AuditKey, Status> {
        self.0
            .audit_key()
            .await
            .map_err(|e| SecretsError::from(e).into())
    }
}
