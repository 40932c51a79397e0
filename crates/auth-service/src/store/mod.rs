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
use std::hash::Hash;

use latchkey_domain::model::{
    AccessToken, AccessTokenId, Identity, IdentityId, Membership, Project, ProjectId, ServiceToken,
    ServiceTokenId,
};
use latchkey_domain::ports::Clock;
use latchkey_store::StoreError;
use latchkey_store::auth::AuthStore;
use tokio::sync::RwLock;

use latchkey_service_kit::cache::TtlCache;

mod directory;
mod tokens;
mod use_batch;

use use_batch::UseBatch;

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
    /// Encryptions under each project key, counted in memory like uses
    /// and flushed with them (a write no longer waits on a second
    /// database's durable commit for its count).
    project_encryptions: UseBatch<ProjectId>,
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
            project_encryptions: UseBatch::default(),
            flushing: RwLock::new(()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The store itself, for what no cache holds: Universal Auth settings
    /// and client secrets, read fresh at every login so a revoked secret
    /// is refused at once on every replica.
    #[must_use]
    pub fn uncached(&self) -> &AuthStore {
        &self.store
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

    /// A token row from `cache` (read from the database when absent or
    /// stale), with the uses `batch` counted since it was read.
    async fn cached_counting<T, Fut>(
        &self,
        cache: &TtlCache<T::Id, Option<T>>,
        batch: &UseBatch<T::Id>,
        id: &T::Id,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<T>, StoreError>
    where
        T: CountsUses + Clone,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        let mut row = cache
            .get_or_load(id.clone(), self.now(), true, load)
            .await?;
        if let Some(row) = row.as_mut() {
            row.add_pending(batch);
        }
        Ok(row)
    }

    // --- maintenance ------------------------------------------------------

    /// Writes the use counts batched in memory; on failure the unwritten
    /// ones are kept for the next flush.
    pub async fn flush_uses(&self) -> Result<(), StoreError> {
        let _flush = self.flushing.write().await;
        // A cached row read before its counts were written would show
        // neither: each flushed row is read again on its next use.
        let service = self.service_token_uses.take();
        for (i, (id, n, at)) in service.iter().enumerate() {
            if let Err(e) = self.store.add_service_token_uses(id, *n, *at).await {
                self.service_token_uses.restore(service[i..].to_vec());
                return Err(e);
            }
            self.service_tokens.remove(id);
        }
        let identity = self.identity_token_uses.take();
        for (i, (id, n, at)) in identity.iter().enumerate() {
            if let Err(e) = self.store.add_identity_token_uses(id, *n, *at).await {
                self.identity_token_uses.restore(identity[i..].to_vec());
                return Err(e);
            }
            self.identity_tokens.remove(id);
        }
        let encryptions = self.project_encryptions.take();
        for (i, (id, n, _)) in encryptions.iter().enumerate() {
            if let Err(e) = self.store.count_encryptions(id, *n).await {
                self.project_encryptions.restore(encryptions[i..].to_vec());
                return Err(e);
            }
            self.projects.remove(id);
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
