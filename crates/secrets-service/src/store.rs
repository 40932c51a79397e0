//! The secrets service's view of its database: [`SecretStore`] behind a
//! per-replica cache of ciphertext rows, so that no use case mentions it.
//!
//! Folder listings (one folder, or a folder and everything below it) and
//! single-secret reads, found or not, are served from memory for at most
//! the state TTL after the read that filled them began. Every write and
//! delete through this replica drops the entries it could change once it
//! has committed (a read in flight across it stores nothing), so the
//! replica that wrote never serves what it replaced; other replicas see
//! the change, deletions included, within the TTL. Only ciphertext is held,
//! as the database holds it; raw reads decrypt per call.

use std::sync::Arc;

use chrono::Duration;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{ProjectId, Secret, SecretKey, WriteMode};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::ports::Clock;
use latchkey_service_kit::cache::TtlCache;
use latchkey_store::StoreError;
use latchkey_store::secrets::SecretStore;

/// What a cache entry answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Read {
    project_id: ProjectId,
    environment: Environment,
    path: SecretPath,
    what: What,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum What {
    /// The secrets directly in `path`.
    Folder,
    /// The secrets in `path` and every folder below it.
    Subtree,
    /// One secret of `path`.
    Secret(SecretName),
}

impl Read {
    /// Whether writing `key` can change this read's answer.
    fn covers(&self, key: &SecretKey) -> bool {
        self.project_id == key.project_id
            && self.environment == key.environment
            && match &self.what {
                What::Folder => self.path == key.path,
                What::Subtree => key.path.is_within(&self.path),
                What::Secret(name) => self.path == key.path && *name == key.name,
            }
    }
}

/// A cached answer: the rows, in the store's order.
type Rows = Arc<[Secret]>;

/// Bytes counted per cached row beyond its variable-length fields, and per
/// entry for its key and bookkeeping; approximate, so the budget is too.
const ROW_OVERHEAD: usize = std::mem::size_of::<Secret>() + 64;
const ENTRY_OVERHEAD: usize = 256;

fn weigh(rows: &Rows) -> usize {
    ENTRY_OVERHEAD
        + rows
            .iter()
            .map(|s| {
                ROW_OVERHEAD
                    + s.sealed.ciphertext.len()
                    + s.sealed.iv.len()
                    + s.sealed.tag.len()
                    + s.key.project_id.as_str().len()
                    + s.key.environment.as_str().len()
                    + s.key.path.as_str().len()
                    + s.key.name.as_str().len()
                    + s.id.len()
            })
            .sum::<usize>()
}

/// [`SecretStore`] with the ciphertext cache in front.
#[derive(Debug)]
pub struct CachedSecretStore {
    store: SecretStore,
    clock: Arc<dyn Clock>,
    cache: TtlCache<Read, Rows>,
}

impl CachedSecretStore {
    /// Caches answers for at most `ttl` by `clock`, within about `max_bytes`
    /// of memory; zero for either disables the cache.
    #[must_use]
    pub fn new(store: SecretStore, clock: Arc<dyn Clock>, ttl: Duration, max_bytes: usize) -> Self {
        Self {
            store,
            clock,
            cache: TtlCache::weighted(ttl, max_bytes, weigh),
        }
    }

    /// The secrets of a folder, or of it and every folder below it.
    pub async fn list(
        &self,
        project_id: &ProjectId,
        environment: &Environment,
        path: &SecretPath,
        recursive: bool,
    ) -> Result<Rows, StoreError> {
        let read = Read {
            project_id: project_id.clone(),
            environment: environment.clone(),
            path: path.clone(),
            what: if recursive {
                What::Subtree
            } else {
                What::Folder
            },
        };
        self.cache
            .get_or_load(read, self.clock.now(), true, || async {
                Ok(self
                    .store
                    .list(project_id, environment, path, recursive)
                    .await?
                    .into())
            })
            .await
    }

    /// One secret, or `None`.
    pub async fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        let read = Read {
            project_id: key.project_id.clone(),
            environment: key.environment.clone(),
            path: key.path.clone(),
            what: What::Secret(key.name.clone()),
        };
        let rows = self
            .cache
            .get_or_load(read, self.clock.now(), true, || async {
                Ok::<Rows, StoreError>(self.store.get(key).await?.into_iter().collect())
            })
            .await?;
        Ok(rows.first().cloned())
    }

    /// Stores the secret's next version under `mode`; `None` when `mode`
    /// refused.
    pub async fn put(
        &self,
        key: &SecretKey,
        sealed: Sealed,
        mode: WriteMode,
    ) -> Result<Option<Secret>, StoreError> {
        let result = self.store.put_as(key, sealed, self.clock.now(), mode).await;
        // Also on an error: the commit may have happened.
        self.written(key);
        result
    }

    /// Deletes a secret and its versions; returns it as it was, or `None`
    /// when it did not exist.
    pub async fn delete(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        let result = self.store.delete(key).await;
        self.written(key);
        result
    }

    fn written(&self, key: &SecretKey) {
        self.cache.remove_where(|read| read.covers(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str, name: &str) -> SecretKey {
        SecretKey {
            project_id: ProjectId::from_stored("p".to_owned()),
            environment: Environment::parse("dev").unwrap(),
            path: SecretPath::parse(path).unwrap(),
            name: SecretName::parse(name).unwrap(),
        }
    }

    fn read(project: &str, env: &str, path: &str, what: What) -> Read {
        Read {
            project_id: ProjectId::from_stored(project.to_owned()),
            environment: Environment::parse(env).unwrap(),
            path: SecretPath::parse(path).unwrap(),
            what,
        }
    }

    #[test]
    fn a_write_covers_its_folder_its_ancestors_subtrees_and_itself_only() {
        let written = key("/app/api", "DB_URL");
        let secret = |n: &str| What::Secret(SecretName::parse(n).unwrap());
        let covered = [
            read("p", "dev", "/app/api", What::Folder),
            read("p", "dev", "/app/api", What::Subtree),
            read("p", "dev", "/app", What::Subtree),
            read("p", "dev", "/", What::Subtree),
            read("p", "dev", "/app/api", secret("DB_URL")),
        ];
        let untouched = [
            read("p", "dev", "/app", What::Folder),
            read("p", "dev", "/app/api/v2", What::Subtree),
            read("p", "dev", "/app/apiary", What::Subtree),
            read("p", "dev", "/app/api", secret("OTHER")),
            read("p", "prod", "/app/api", What::Folder),
            read("q", "dev", "/app/api", What::Folder),
        ];
        for r in &covered {
            assert!(r.covers(&written), "{r:?}");
        }
        for r in &untouched {
            assert!(!r.covers(&written), "{r:?}");
        }
    }
}
