//! Service tokens: issued, listed, deactivated and deleted by admins.

use latchkey_domain::model::{NewServiceToken, ProjectId, ServiceToken, ServiceTokenId};
use latchkey_domain::token::ServiceTokenSecret;
use latchkey_domain::ttl::expiry_after;

use super::{AuthApp, Caller, Freshness, admin::AdminScope};
use crate::error::AuthError;

impl AuthApp {
    /// Issues a service token: hashes its secret, encrypts the project key
    /// under its key part, and returns the whole token once. No copy of the
    /// key part is kept.
    pub async fn create_service_token(
        &self,
        caller: &Caller,
        new: NewServiceToken,
    ) -> Result<(String, ServiceToken), AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(&new.project_id))
            .await?;
        admin.require_covers(&new.scopes, "the new token's scopes")?;
        let project = self.load_project(&new.project_id, Freshness::Fresh).await?;
        project.check_environments_exist(&new.scopes)?;
        let now = self.clock.now();
        let expires_at = expiry_after(now, new.expires_in_seconds, "expires_in_seconds")?;
        let project_key = self.project_key(&project)?;
        let token = ServiceTokenSecret::generate(&mut rand::rngs::OsRng);
        // No associated data: Infisical's clients decrypt this envelope as is.
        let encrypted_project_key = token
            .key()
            .seal(project_key.expose().as_bytes(), b"", &mut rand::rngs::OsRng)
            .map_err(|e| AuthError::internal("sealing a token's project key", e))?;
        let record = ServiceToken {
            id: ServiceTokenId::from(token.id()),
            project_id: project.id,
            name: new.name.into_string(),
            secret_hash: self.hash(token.secret()).await?,
            scopes: new.scopes,
            permissions: new.permissions,
            trusted_ips: new.trusted_ips,
            expires_at,
            active: true,
            revoked_at: None,
            encrypted_project_key,
            use_count: 0,
            last_used_at: None,
            created_at: now,
        };
        self.store.insert_service_token(&record).await?;
        tracing::info!(token.id = %record.id, project.id = %record.project_id, "service token created");
        Ok((token.expose(), record))
    }

    /// A project's live service tokens (neither deleted nor expired); a
    /// scoped admin sees only those inside its scopes.
    pub async fn service_tokens(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
    ) -> Result<Vec<ServiceToken>, AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        self.load_project(project_id, Freshness::Fresh).await?;
        let mut tokens = self.store.service_tokens(project_id).await?;
        // Expired tokens leave the listing at once; GetServiceToken still shows them.
        let now = self.clock.now();
        tokens.retain(|t| admin.covers(&t.scopes) && t.expires_at.is_none_or(|e| e > now));
        Ok(tokens)
    }

    /// One live service token, to the admins who may manage it; or `NOT_FOUND`.
    pub async fn service_token(
        &self,
        caller: &Caller,
        id: &ServiceTokenId,
    ) -> Result<ServiceToken, AuthError> {
        self.admin_of_service_token(caller, id).await?;
        self.live_service_token(id).await
    }

    pub(super) async fn live_service_token(
        &self,
        id: &ServiceTokenId,
    ) -> Result<ServiceToken, AuthError> {
        self.store
            .service_token(id, Freshness::Fresh)
            .await?
            .filter(|t| t.revoked_at.is_none())
            .ok_or_else(|| AuthError::NotFound(format!("service token \"{id}\" not found")))
    }

    /// Deletes a service token; it answers `TOKEN_REVOKED` from now on.
    pub async fn delete_service_token(
        &self,
        caller: &Caller,
        id: &ServiceTokenId,
    ) -> Result<(), AuthError> {
        self.admin_of_service_token(caller, id).await?;
        let revoked = self.store.revoke_service_token(id).await?;
        if !revoked {
            return Err(AuthError::NotFound(format!(
                "service token \"{id}\" not found"
            )));
        }
        tracing::info!(token.id = %id, "service token deleted");
        Ok(())
    }

    /// Deactivates or reactivates a service token.
    pub async fn set_service_token_active(
        &self,
        caller: &Caller,
        id: &ServiceTokenId,
        active: bool,
    ) -> Result<ServiceToken, AuthError> {
        self.admin_of_service_token(caller, id).await?;
        let changed = self.store.set_service_token_active(id, active).await?;
        if !changed {
            return Err(AuthError::NotFound(format!(
                "service token \"{id}\" not found"
            )));
        }
        tracing::info!(token.id = %id, active, "service token activation changed");
        self.live_service_token(id).await
    }
}
