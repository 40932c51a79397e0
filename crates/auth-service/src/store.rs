//! The auth service's view of its database: [`AuthStore`] behind the
//! per-replica state cache and the batched use counts, so that no use case
//! mentions either.
//!
//! Every write here invalidates the rows it changed, after the write (a load
//! that began before it will not store what it read); every
//! [`Freshness::Fresh`] read adds the uses counted in memory and not yet
//! flushed, so an admin sees the same counts whether or not a flush ran.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::identity::TokenAuthConfig;
use latchkey_domain::ip::TrustedIps;
use std::hash::Hash;

use latchkey_domain::model::{
    AccessToken, AccessTokenId, Identity, IdentityId, Membership, NewProject, Project, ProjectId,
    ServiceToken, ServiceTokenId,
};
use latchkey_domain::path::Environment;
use latchkey_domain::ports::Clock;
use latchkey_store::StoreError;
use latchkey_store::auth::AuthStore;
use tokio::sync::RwLock;

use crate::state_cache::{TtlCache, UseBatch};

/// Whether a read may come from the per-replica cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `Authorize`'s hot path: rows at most the cache TTL old.
    Cached,
    /// Everything else: read the database.
    Fresh,
}

/// Rows kept per cache.
const CACHE_CAPACITY: usize = 10_000;

/// [`AuthStore`] with the state cache and batched use counts in front.
#[derive(Debug)]
pub struct CachedAuthStore {
    store: AuthStore,
    clock: Arc<dyn Clock>,
    service_tokens: TtlCache<ServiceTokenId, Option<ServiceToken>>,
    identity_tokens: TtlCache<AccessTokenId, Option<AccessToken>>,
    identities: TtlCache<IdentityId, Option<Identity>>,
    projects: TtlCache<ProjectId, Option<Project>>,
    memberships: TtlCache<(ProjectId, IdentityId), Option<Membership>>,
    service_token_uses: UseBatch<ServiceTokenId>,
    identity_token_uses: UseBatch<AccessTokenId>,
    /// Held for writing while a flush moves counts from memory to the
    /// database, so a fresh read never sees a use in both or in neither.
    flushing: RwLock<()>,
}

impl CachedAuthStore {
    /// Caches rows for at most `state_ttl` by `clock` (zero disables it).
    #[must_use]
    pub fn new(store: AuthStore, clock: Arc<dyn Clock>, state_ttl: Duration) -> Self {
        Self {
            store,
            clock,
            service_tokens: TtlCache::new(state_ttl, CACHE_CAPACITY),
            identity_tokens: TtlCache::new(state_ttl, CACHE_CAPACITY),
            identities: TtlCache::new(state_ttl, CACHE_CAPACITY),
            projects: TtlCache::new(state_ttl, CACHE_CAPACITY),
            memberships: TtlCache::new(state_ttl, CACHE_CAPACITY),
            service_token_uses: UseBatch::default(),
            identity_token_uses: UseBatch::default(),
            flushing: RwLock::new(()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    // --- projects ---------------------------------------------------------

    /// Inserts a project with its environments.
    pub async fn insert_project(&self, new: NewProject) -> Result<(), StoreError> {
        let id = new.id.clone();
        let result = self.store.insert_project(new).await;
        self.projects.remove(&id);
        result
    }

    /// One project, or `None`.
    pub async fn project(
        &self,
        id: &ProjectId,
        freshness: Freshness,
    ) -> Result<Option<Project>, StoreError> {
        let cached = freshness == Freshness::Cached;
        self.projects
            .get_or_load(id.clone(), self.now(), cached, || self.store.project(id))
            .await
    }

    /// Every project, oldest first.
    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.store.projects().await
    }

    /// Adds an environment; [`StoreError::Conflict`] when the slug exists.
    pub async fn insert_environment(
        &self,
        project_id: &ProjectId,
        slug: &Environment,
        name: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .store
            .insert_environment(project_id, slug, name, self.now())
            .await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Replaces a project's wrapped key; false when there is no such project.
    pub async fn set_project_wrapped_key(
        &self,
        project_id: &ProjectId,
        wrapped: &Sealed,
    ) -> Result<bool, StoreError> {
        let result = self
            .store
            .set_project_wrapped_key(project_id, wrapped)
            .await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Replaces a project's IP allowlist; false when there is no such project.
    pub async fn set_project_trusted_ips(
        &self,
        project_id: &ProjectId,
        ips: &TrustedIps,
    ) -> Result<bool, StoreError> {
        let result = self.store.set_project_trusted_ips(project_id, ips).await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Counts one encryption under the project key; returns the new count.
    pub async fn count_encryption(&self, project_id: &ProjectId) -> Result<u64, StoreError> {
        self.store.count_encryption(project_id).await
    }

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
                .service_tokens
                .get_or_load(id.clone(), self.now(), true, || {
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

    /// Counts one use of a service token, in memory until the next flush.
    pub fn record_service_token_use(&self, id: &ServiceTokenId) {
        self.service_token_uses.add(id, self.now());
    }

    // --- identities -------------------------------------------------------

    /// How many identities exist.
    pub async fn identity_count(&self) -> Result<u64, StoreError> {
        self.store.identity_count().await
    }

    /// Inserts an identity.
    pub async fn insert_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.store.insert_identity(identity).await
    }

    /// Inserts an identity together with one access token, atomically.
    pub async fn insert_identity_with_token(
        &self,
        identity: &Identity,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        self.store.insert_identity_with_token(identity, token).await
    }

    /// One identity, or `None`.
    pub async fn identity(
        &self,
        id: &IdentityId,
        freshness: Freshness,
    ) -> Result<Option<Identity>, StoreError> {
        let cached = freshness == Freshness::Cached;
        self.identities
            .get_or_load(id.clone(), self.now(), cached, || self.store.identity(id))
            .await
    }

    /// Every identity, oldest first.
    pub async fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.store.identities().await
    }

    /// Deletes an identity, revoking its tokens and dropping its
    /// memberships; false when there was none.
    pub async fn delete_identity(&self, id: &IdentityId) -> Result<bool, StoreError> {
        let result = self.store.delete_identity(id, self.now()).await;
        self.identities.remove(&id.clone());
        // Which cached tokens and memberships are its is not indexed.
        self.identity_tokens.clear();
        self.memberships.clear();
        result
    }

    /// An identity's Token Auth, or `None`.
    pub async fn token_auth_config(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Option<TokenAuthConfig>, StoreError> {
        self.store.token_auth_config(identity_id).await
    }

    /// Attaches Token Auth; [`StoreError::Conflict`] when it is attached.
    pub async fn insert_token_auth_config(
        &self,
        identity_id: &IdentityId,
        config: &TokenAuthConfig,
    ) -> Result<(), StoreError> {
        self.store
            .insert_token_auth_config(identity_id, config, self.now())
            .await
    }

    /// Replaces Token Auth; false when none is attached.
    pub async fn update_token_auth_config(
        &self,
        identity_id: &IdentityId,
        config: &TokenAuthConfig,
    ) -> Result<bool, StoreError> {
        self.store
            .update_token_auth_config(identity_id, config, self.now())
            .await
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
                .identity_tokens
                .get_or_load(id.clone(), self.now(), true, || {
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

    /// Counts one use of an unlimited access token, in memory until the next flush.
    pub fn record_identity_token_use(&self, id: &AccessTokenId) {
        self.identity_token_uses.add(id, self.now());
    }

    // --- memberships ------------------------------------------------------

    /// An identity's membership of a project, or `None`.
    pub async fn membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
        freshness: Freshness,
    ) -> Result<Option<Membership>, StoreError> {
        let key = (project_id.clone(), identity_id.clone());
        let cached = freshness == Freshness::Cached;
        self.memberships
            .get_or_load(key, self.now(), cached, || {
                self.store.membership(project_id, identity_id)
            })
            .await
    }

    /// Adds a membership; [`StoreError::Conflict`] when it exists.
    pub async fn insert_membership(&self, record: &Membership) -> Result<(), StoreError> {
        let result = self.store.insert_membership(record).await;
        self.memberships
            .remove(&(record.project_id.clone(), record.identity_id.clone()));
        result
    }

    /// Removes a membership; false when there was none.
    pub async fn delete_membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
    ) -> Result<bool, StoreError> {
        let result = self.store.delete_membership(project_id, identity_id).await;
        self.memberships
            .remove(&(project_id.clone(), identity_id.clone()));
        result
    }

    /// Rows as `read` returns them, plus the uses in `batch` not yet
    /// flushed; a flush cannot run between the read and the addition.
    async fn with_pending_uses<R, T>(
        &self,
        batch: &UseBatch<T::Id>,
        read: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError>
    where
        T: CountsUses + 'static,
        for<'a> &'a mut R: IntoIterator<Item = &'a mut T>,
    {
        let _flush = self.flushing.read().await;
        let mut rows = read.await?;
        for row in &mut rows {
            row.add_pending(batch);
        }
        Ok(rows)
    }

    // --- maintenance ------------------------------------------------------

    /// Writes the use counts batched in memory; on failure the unwritten
    /// ones are kept for the next flush.
    pub async fn flush_uses(&self) -> Result<(), StoreError> {
        let _flush = self.flushing.write().await;
        let service = self.service_token_uses.take();
        for (i, (id, n, at)) in service.iter().enumerate() {
            if let Err(e) = self.store.add_service_token_uses(id, *n, *at).await {
                self.service_token_uses.restore(service[i..].to_vec());
                return Err(e);
            }
        }
        let identity = self.identity_token_uses.take();
        for (i, (id, n, at)) in identity.iter().enumerate() {
            if let Err(e) = self.store.add_identity_token_uses(id, *n, *at).await {
                self.identity_token_uses.restore(identity[i..].to_vec());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Deletes service tokens and access tokens expired before
    /// `expired_before` or revoked before `revoked_before`; returns how
    /// many of each.
    pub async fn reap(
        &self,
        expired_before: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let service = self
            .store
            .reap_service_tokens(expired_before, revoked_before)
            .await?;
        let access = self
            .store
            .reap_identity_tokens(expired_before, revoked_before)
            .await?;
        Ok((service, access))
    }
}

/// A token row whose use count and last use the database lags behind.
trait CountsUses {
    type Id: Hash + Eq + Clone;
    fn add_pending(&mut self, batch: &UseBatch<Self::Id>);
}

impl CountsUses for ServiceToken {
    type Id = ServiceTokenId;
    fn add_pending(&mut self, batch: &UseBatch<Self::Id>) {
        add_pending(batch, &self.id, &mut self.use_count, &mut self.last_used_at);
    }
}

impl CountsUses for AccessToken {
    type Id = AccessTokenId;
    fn add_pending(&mut self, batch: &UseBatch<Self::Id>) {
        add_pending(batch, &self.id, &mut self.use_count, &mut self.last_used_at);
    }
}

fn add_pending<K: Hash + Eq + Clone>(
    batch: &UseBatch<K>,
    id: &K,
    use_count: &mut u64,
    last_used_at: &mut Option<DateTime<Utc>>,
) {
    if let Some((n, at)) = batch.pending(id) {
        *use_count += n;
        *last_used_at = Some(last_used_at.map_or(at, |prev| prev.max(at)));
    }
}
