//! Per-replica caches with a bounded staleness, shared by both services: the
//! auth service's state cache (rows `Authorize` reads) and the secrets
//! service's folder cache (ciphertext rows).
//!
//! An entry is served for at most the TTL after its load *began*, measured
//! with the service's clock, so a change made by another replica is seen
//! within the TTL; a replica invalidates its own entries when it writes, so
//! its own changes apply at once.

mod single_flight;

use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use lru::LruCache;

pub use self::single_flight::SingleFlight;

/// A map bounded by total weight (by default one per entry) whose entries
/// expire `ttl` after they were stored; least recently used entries go first.
///
/// Invalidation is race-free: every [`TtlCache::remove`],
/// [`TtlCache::remove_where`] and [`TtlCache::clear`] bumps a generation,
/// and a load that began before the bump never stores what it read (it may
/// be the row before the change).
#[derive(Debug)]
pub struct TtlCache<K: Hash + Eq, V> {
    ttl: Duration,
    max_weight: usize,
    weigh: fn(&V) -> usize,
    entries: Mutex<Entries<K, V>>,
    generation: AtomicU64,
    /// Misses of one key share one load, but only with loads that began in
    /// the same generation: none can hand out a row read before an
    /// invalidation to a caller that arrived after it.
    loads: SingleFlight<(K, u64), V>,
}

#[derive(Debug)]
struct Entries<K: Hash + Eq, V> {
    lru: LruCache<K, Entry<V>>,
    weight: usize,
}

#[derive(Debug)]
struct Entry<V> {
    at: DateTime<Utc>,
    weight: usize,
    value: V,
}

impl<K: Hash + Eq, V> Entries<K, V> {
    fn pop(&mut self, key: &K) {
        if let Some(old) = self.lru.pop(key) {
            self.weight -= old.weight;
        }
    }

    fn put(&mut self, key: K, entry: Entry<V>, max_weight: usize) {
        self.pop(&key);
        self.weight += entry.weight;
        self.lru.put(key, entry);
        while self.weight > max_weight {
            match self.lru.pop_lru() {
                Some((_, old)) => self.weight -= old.weight,
                None => break,
            }
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` entries, each fresh for `ttl`.
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self::weighted(ttl, capacity, |_| 1)
    }

    /// A cache whose entries weigh at most `max_weight` in total, by `weigh`
    /// (for example their size in bytes); a value heavier than the whole
    /// budget is never stored. Zero `ttl` or `max_weight` disables it.
    #[must_use]
    pub fn weighted(ttl: Duration, max_weight: usize, weigh: fn(&V) -> usize) -> Self {
        Self {
            ttl,
            max_weight,
            weigh,
            entries: Mutex::new(Entries {
                lru: LruCache::unbounded(),
                weight: 0,
            }),
            generation: AtomicU64::new(0),
            loads: SingleFlight::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl > Duration::zero() && self.max_weight > 0
    }

    /// The value stored for `key` if it is younger than the TTL at `now`.
    pub fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        let mut entries = self.entries.lock().ok()?;
        match entries.lru.get(key) {
            Some(e) if now - e.at < self.ttl && now >= e.at => Some(e.value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` for `key`, fresh from `now`.
    pub fn put(&self, key: K, value: V, now: DateTime<Utc>) {
        if let Ok(mut entries) = self.entries.lock() {
            self.store(&mut entries, key, value, now);
        }
    }

    fn store(&self, entries: &mut Entries<K, V>, key: K, value: V, now: DateTime<Utc>) {
        if !self.enabled() {
            return;
        }
        let weight = (self.weigh)(&value);
        if weight > self.max_weight {
            entries.pop(&key);
            return;
        }
        entries.put(
            key,
            Entry {
                at: now,
                weight,
                value,
            },
            self.max_weight,
        );
    }

    /// The cached value for `key`, or (when `use_cache` is false or the
    /// entry is stale) the value `load` returns, which is then cached as of
    /// `now`, the time before the load began. Concurrent cached misses of
    /// `key` share one load.
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
        let value = if use_cache && self.enabled() {
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
        if let Ok(mut entries) = self.entries.lock()
            && self.generation.load(Ordering::Acquire) == started
        {
            self.store(&mut entries, key, value, now);
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

    /// Forgets every key `stale` picks (one pass over the entries), after
    /// this replica changed what they hold; loads in progress will not store
    /// what they read.
    pub fn remove_where(&self, stale: impl Fn(&K) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            let keys: Vec<K> = entries
                .lru
                .iter()
                .filter(|(k, _)| stale(k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in &keys {
                entries.pop(key);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.lru.clear();
            entries.weight = 0;
        }
    }

    /// The entries held (fresh or not yet dropped) and their total weight.
    pub fn size(&self) -> (usize, usize) {
        self.entries
            .lock()
            .map_or((0, 0), |e| (e.lru.len(), e.weight))
    }
}

#[cfg(test)]
mod tests;
