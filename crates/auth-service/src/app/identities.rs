//! Machine identities and their Token Auth settings.

use latchkey_domain::InvalidInput;
use latchkey_domain::identity::{OrgRole, TokenAuthChanges, TokenAuthConfig};
use latchkey_domain::model::{Identity, IdentityId};

use super::{AuthApp, Caller, Freshness, admin::AdminScope};
use crate::error::AuthError;
use latchkey_domain::model::DisplayName;

impl AuthApp {
    /// Creates an identity.
    pub async fn create_identity(
        &self,
        caller: &Caller,
        name: DisplayName,
        org_role: OrgRole,
    ) -> Result<Identity, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let identity = Identity {
            id: IdentityId::generate(),
            name: name.into_string(),
            org_role,
            created_at: self.clock.now(),
        };
        self.store.insert_identity(&identity).await?;
        tracing::info!(identity.id = %identity.id, org_role = org_role.as_str(), "identity created");
        Ok(identity)
    }

    /// Every identity.
    pub async fn identities(&self, caller: &Caller) -> Result<Vec<Identity>, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        Ok(self.store.identities().await?)
    }

    /// One identity, or `NOT_FOUND`, deciding nothing.
    pub(super) async fn load_identity(&self, id: &IdentityId) -> Result<Identity, AuthError> {
        self.store
            .identity(id, Freshness::Fresh)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("identity \"{id}\" not found")))
    }

    /// Deletes an identity and revokes its tokens; an identity cannot delete itself.
    pub async fn delete_identity(&self, caller: &Caller, id: &IdentityId) -> Result<(), AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        if caller.identity.id == *id {
            return Err(InvalidInput::new(
                "identity_id",
                "is the identity making this call; delete it with another admin's token",
            )
            .into());
        }
        let deleted = self.store.delete_identity(id).await?;
        if !deleted {
            return Err(AuthError::NotFound(format!("identity \"{id}\" not found")));
        }
        tracing::info!(identity.id = %id, "identity deleted; its tokens are revoked");
        Ok(())
    }

    /// Attaches Token Auth with `changes` over the defaults.
    pub async fn attach_token_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &TokenAuthChanges,
    ) -> Result<TokenAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        let config = TokenAuthConfig::defaults().apply(changes)?;
        self.store
            .insert_token_auth_config(identity_id, &config)
            .await
            .map_err(|e| AuthError::conflict_or(e, || format!("Token Auth is already attached to identity {identity_id}; change it with UpdateTokenAuth")))?;
        Ok(config)
    }

    /// Changes Token Auth; tokens already issued keep the settings they were issued under.
    pub async fn update_token_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &TokenAuthChanges,
    ) -> Result<TokenAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let config = self.load_token_auth(identity_id).await?.apply(changes)?;
        if !self
            .store
            .update_token_auth_config(identity_id, &config)
            .await?
        {
            return Err(no_token_auth(identity_id));
        }
        Ok(config)
    }

    /// An identity's Token Auth, to org admins; or `NOT_FOUND`.
    pub async fn token_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<TokenAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_token_auth(identity_id).await
    }

    /// An identity's Token Auth, or `NOT_FOUND`, deciding nothing.
    pub(super) async fn load_token_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<TokenAuthConfig, AuthError> {
        self.load_identity(identity_id).await?;
        self.store
            .token_auth_config(identity_id)
            .await?
            .ok_or_else(|| no_token_auth(identity_id))
    }
}

pub(super) fn no_token_auth(identity_id: &IdentityId) -> AuthError {
    AuthError::NotFound(format!(
        "identity {identity_id} has no Token Auth; attach it with AttachTokenAuth"
    ))
}
