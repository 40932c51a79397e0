//! Service tokens and access tokens, with the uses counted in memory.

use chrono::{DateTime, Utc};
use latchkey_domain::model::{
    AccessToken, AccessTokenId, IdentityId, ProjectId, ServiceToken, ServiceTokenId,
};
use latchkey_domain::token::SecretHash;
use latchkey_store::StoreError;

use super::{CachedAuthStore, Freshness};

impl CachedAuthStore {
    // --- service tokens ---------------------------------------------------

    /// Inserts a service token.
    pub async fn insert_service_token(&self, token: &ServiceToken) -> Result<(), StoreError> {
        self.store.insert_service_token(token).await
    }

    /// One service token (deleted ones too), or `None`.
    pub async fn service_token(
        &self,
        id: &ServiceTokenId,
        freshness: Freshness,
    ) -> Result<Option<ServiceToken>, StoreError> {
        if freshness == Freshness::Cached {
            return self
                .cached_counting(&self.service_tokens, &self.service_token_uses, id, || {
                    self.store.service_token(id)
                })
                .await;
        }
        self.with_pending_uses(&self.service_token_uses, self.store.service_token(id))
            .await
    }

    /// A project's service tokens that were not deleted.
    pub async fn service_tokens(
        &self,
        project_id: &ProjectId,
    ) -> Result<Vec<ServiceToken>, StoreError> {
        self.with_pending_uses(
            &self.service_token_uses,
            self.store.service_tokens(project_id),
        )
        .await
    }

    /// Marks a service token deleted; false when there was none.
    pub async fn revoke_service_token(&self, id: &ServiceTokenId) -> Result<bool, StoreError> {
        let result = self.store.revoke_service_token(id, self.now()).await;
        self.service_tokens.remove(&id.clone());
        result
    }

    /// Deactivates or reactivates a service token; false when there is none.
    pub async fn set_service_token_active(
        &self,
        id: &ServiceTokenId,
        active: bool,
    ) -> Result<bool, StoreError> {
        let result = self.store.set_service_token_active(id, active).await;
        self.service_tokens.remove(&id.clone());
        result
    }

    /// Stores a service token's secret hash again (with its fingerprint).
    pub async fn set_service_token_secret_hash(
        &self,
        id: &ServiceTokenId,
        hash: &SecretHash,
    ) -> Result<(), StoreError> {
        let result = self.store.set_service_token_secret_hash(id, hash).await;
        self.service_tokens.remove(&id.clone());
        result
    }

    /// Counts one use of a service token, in memory until the next flush.
    pub fn record_service_token_use(&self, id: &ServiceTokenId) {
        self.service_token_uses.add(id, self.now());
    }

    // --- access tokens ----------------------------------------------------

    /// Inserts an access token.
    pub async fn insert_identity_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        self.store.insert_identity_token(token).await
    }

    /// One access token (revoked ones too), or `None`.
    pub async fn identity_token(
        &self,
        id: &AccessTokenId,
        freshness: Freshness,
    ) -> Result<Option<AccessToken>, StoreError> {
        if freshness == Freshness::Cached {
            return self
                .cached_counting(&self.identity_tokens, &self.identity_token_uses, id, || {
                    self.store.identity_token(id)
                })
                .await;
        }
        self.with_pending_uses(&self.identity_token_uses, self.store.identity_token(id))
            .await
    }

    /// An identity's access tokens, oldest first.
    pub async fn identity_tokens(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<AccessToken>, StoreError> {
        self.with_pending_uses(
            &self.identity_token_uses,
            self.store.identity_tokens(identity_id),
        )
        .await
    }

    /// Revokes an access token; false when it was already revoked or is unknown.
    pub async fn revoke_identity_token(&self, id: &AccessTokenId) -> Result<bool, StoreError> {
        let result = self.store.revoke_identity_token(id, self.now()).await;
        self.identity_tokens.remove(&id.clone());
        result
    }

    /// Moves a live access token's expiry; false when it is no longer live.
    pub async fn renew_identity_token(
        &self,
        id: &AccessTokenId,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .store
            .renew_identity_token(id, expires_at, self.now())
            .await;
        self.identity_tokens.remove(&id.clone());
        result
    }

    /// Consumes one use of a limited access token in one atomic statement;
    /// false when it is exhausted, expired or revoked.
    pub async fn consume_identity_token_use(&self, id: &AccessTokenId) -> Result<bool, StoreError> {
        self.store.consume_identity_token_use(id, self.now()).await
    }

    /// Stores an access token's secret hash again (with its fingerprint).
    pub async fn set_identity_token_secret_hash(
        &self,
        id: &AccessTokenId,
        hash: &SecretHash,
    ) -> Result<(), StoreError> {
        let result = self.store.set_identity_token_secret_hash(id, hash).await;
        self.identity_tokens.remove(&id.clone());
        result
    }

    /// Counts one use of an unlimited access token, in memory until the next flush.
    pub fn record_identity_token_use(&self, id: &AccessTokenId) {
        self.identity_token_uses.add(id, self.now());
    }
}
