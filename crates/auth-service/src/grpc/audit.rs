//! Who may read the auth service's own audit trail: its use cases decide,
//! as for the secrets service's trail through `GetAuditReach`.

use std::net::IpAddr;
use std::sync::Arc;

use latchkey_domain::audit::AuditKey;
use latchkey_domain::audit::reach::AuditReader;
use latchkey_domain::ports::BearerToken;
use latchkey_service_kit::audit::api::AuditGate;
use tonic::Status;

use crate::app::AuthApp;

/// [`AuditGate`] over the auth service's own use cases.
#[derive(Debug, Clone)]
pub struct AppAuditGate(pub Arc<AuthApp>);

#[tonic::async_trait]
impl AuditGate for AppAuditGate {
    async fn reader(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<AuditReader, Status> {
        let caller = self.0.caller(&token, client_ip).await?;
        Ok(self.0.audit_reach(&caller).await?)
    }

    async fn key(&self) -> Result<AuditKey, Status> {
        Ok(self.0.audit_key())
    }
}
