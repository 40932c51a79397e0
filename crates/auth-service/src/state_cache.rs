//! Per-replica caches that keep `Authorize` off the database in the steady
//! state, with a bounded staleness.
//!
//! Rows (tokens, identities, projects, memberships) are cached for at most
//! `ttl`, measured with the service's clock; a replica drops its own entry
//! whenever it changes the row, so its own changes apply at once and other
//! replicas' within `ttl`. Uses of tokens without a limit are counted in
//! memory and flushed at least every `ttl`; limited tokens always consume
//! through one atomic database update.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use lru::LruCache;

use crate::single_flight::SingleFlight;

/// A bounded map whose entries expire `ttl` after they were stored.
///
/// Invalidation is race-free: every [`TtlCache::remove`] and
/// [`TtlCache::clear`] bumps a generation, and a load that began before the
/// bump never stores what it read (it may be the row before the change).
#[derive(Debug)]
pub struct TtlCache<K: Hash + Eq, V> {
    ttl: Duration,
    entries: Mutex<LruCache<K, (DateTime<Utc>, V)>>,
    generation: AtomicU64,
    /// Misses of one key share one load, but only with loads that began in
    /// the same generation: none can hand out a row read before an
    /// invalidation to a caller that arrived after it.
    loads: SingleFlight<(K, u64), V>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` entries, each fresh for `ttl`.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            generation: AtomicU64::new(0),
            loads: SingleFlight::default(),
        }
    }

    /// The value stored for `key` if it is younger than the TTL at `now`.
    pub fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        if self.ttl <= Duration::zero() {
            return None;
        }
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((at, value)) if now - *at < self.ttl && now >= *at => Some(value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` for `key`, fresh from `now`.
    pub fn put(&self, key: K, value: V, now: DateTime<Utc>) {
        if self.ttl > Duration::zero()
            && let Ok(mut entries) = self.entries.lock()
        {
            entries.put(key, (now, value));
        }
    }

    /// The cached value for `key`, or (when `use_cache` is false or the
    /// entry is stale) the value `load` returns, which is then cached.
    /// Concurrent cached misses of `key` share one load.
    pub async fn get_or_load<E, Fut>(
        &self,
        key: K,
        now: DateTime<Utc>,
        use_cache: bool,
        load: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if use_cache && let Some(hit) = self.get(&key, now) {
            return Ok(hit);
        }
        let started = self.generation.load(Ordering::Acquire);
        let value = if use_cache {
            self.loads.run((key.clone(), started), load).await?
        } else {
            load().await?
        };
        self.put_unless_invalidated(key, value.clone(), now, started);
        Ok(value)
    }

    /// Stores a loaded value only if nothing was invalidated since the load
    /// began; checked under the lock that invalidation takes.
    fn put_unless_invalidated(&self, key: K, value: V, now: DateTime<Utc>, started: u64) {
        if self.ttl > Duration::zero()
            && let Ok(mut entries) = self.entries.lock()
            && self.generation.load(Ordering::Acquire) == started
        {
            entries.put(key, (now, value));
        }
    }

    /// Forgets `key`, after this replica changed it; loads in progress
    /// will not store what they read.
    pub fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.pop(key);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }
}

/// Uses counted in memory, per token id: how many and the last one.
#[derive(Debug)]
pub struct UseBatch<K> {
    pending: Mutex<HashMap<K, (u64, DateTime<Utc>)>>,
}

impl<K> Default for UseBatch<K> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> UseBatch<K> {
    /// Counts one use of `token_id` at `now`.
    pub fn add(&self, token_id: &K, now: DateTime<Utc>) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(token_id.clone()).or_insert((0, now));
            entry.0 += 1;
            entry.1 = entry.1.max(now);
        }
    }

    /// The uses of `token_id` counted and not yet taken, with the last one.
    pub fn pending(&self, token_id: &K) -> Option<(u64, DateTime<Utc>)> {
        self.pending.lock().ok()?.get(token_id).copied()
    }

    /// Takes every pending count, to write them out.
    pub fn take(&self) -> Vec<(K, u64, DateTime<Utc>)> {
        self.pending
            .lock()
            .map(|mut pending| pending.drain().map(|(id, (n, at))| (id, n, at)).collect())
            .unwrap_or_default()
    }

    /// Puts counts back after a failed write, so no use is lost.
    pub fn restore(&self, uses: Vec<(K, u64, DateTime<Utc>)>) {
        if let Ok(mut pending) = self.pending.lock() {
            for (id, n, at) in uses {
                let entry = pending.entry(id).or_insert((0, at));
                entry.0 += n;
                entry.1 = entry.1.max(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn entries_expire_after_the_ttl_by_the_given_clock() {
        let cache = TtlCache::new(Duration::seconds(1), 10);
        cache.put("a", 1, t0());
        assert_eq!(cache.get(&"a", t0() + Duration::milliseconds(999)), Some(1));
        assert_eq!(cache.get(&"a", t0() + Duration::seconds(1)), None);
        assert_eq!(cache.get(&"a", t0()), None, "an expired entry is dropped");
    }

    #[test]
    fn removed_entries_are_reloaded_and_a_zero_ttl_disables_caching() {
        let cache = TtlCache::new(Duration::seconds(1), 10);
        cache.put("a", 1, t0());
        cache.remove(&"a");
        assert_eq!(cache.get(&"a", t0()), None);
        let off = TtlCache::new(Duration::zero(), 10);
        off.put("a", 1, t0());
        assert_eq!(off.get(&"a", t0()), None);
    }

    #[tokio::test]
    async fn a_load_that_began_before_an_invalidation_is_not_cached() {
        let cache = std::sync::Arc::new(TtlCache::new(Duration::seconds(60), 10));
        for _ in 0..100 {
            let (read_tx, read_rx) = tokio::sync::oneshot::channel::<()>();
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let loader = {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get_or_load("token", t0(), true, || async {
                            // The row as it was before the revoking UPDATE.
                            let _ = read_tx.send(());
                            let _ = go_rx.await;
                            Ok::<_, ()>("live")
                        })
                        .await
                })
            };
            read_rx.await.unwrap();
            // The revocation commits and invalidates while the load is in flight.
            cache.remove(&"token");
            go_tx.send(()).unwrap();
            assert_eq!(loader.await.unwrap(), Ok("live"));

            assert_eq!(
                cache.get(&"token", t0()),
                None,
                "the stale row was not cached"
            );
            let fresh = cache
                .get_or_load("token", t0(), true, || async { Ok::<_, ()>("revoked") })
                .await;
            assert_eq!(fresh, Ok("revoked"));
            cache.remove(&"token");
        }
    }

    #[test]
    fn batched_uses_add_up_and_survive_a_failed_flush() {
        let batch = UseBatch::default();
        let t = "t".to_owned();
        batch.add(&t, t0());
        batch.add(&t, t0() + Duration::seconds(2));
        let taken = batch.take();
        assert_eq!(
            taken,
            vec![("t".to_owned(), 2, t0() + Duration::seconds(2))]
        );
        assert!(batch.take().is_empty());
        batch.restore(taken);
        batch.add(&t, t0());
        assert_eq!(
            batch.take(),
            vec![("t".to_owned(), 3, t0() + Duration::seconds(2))]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_load_but_never_across_an_invalidation() {
        let cache = std::sync::Arc::new(TtlCache::new(Duration::seconds(60), 10));
        let loads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (go, wait) = tokio::sync::watch::channel(false);
        let miss = |value: &'static str| {
            let (cache, loads, mut wait) = (cache.clone(), loads.clone(), wait.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("token", t0(), true, || async move {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let _ = wait.wait_for(|go| *go).await;
                        Ok::<_, ()>(value)
                    })
                    .await
            })
        };
        // Ten misses while one load is in flight: one load between them.
        let before: Vec<_> = (0..10).map(|_| miss("active")).collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The row changes here; a caller from now on must not get the load above.
        cache.remove(&"token");
        let after = miss("revoked");
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        go.send(true).unwrap();
        for call in before {
            assert_eq!(call.await.unwrap(), Ok("active"));
        }
        assert_eq!(after.await.unwrap(), Ok("revoked"));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
