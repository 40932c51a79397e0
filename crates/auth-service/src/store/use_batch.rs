//! Uses counted in memory between flushes: tokens without a use limit are
//! counted here and written out at least every state TTL (limited tokens
//! always consume through one atomic database update), and encryptions
//! under each project key likewise.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Uses counted in memory, per token id: how many and the last one.
#[derive(Debug)]
pub(super) struct UseBatch<K> {
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
    pub(super) fn add(&self, token_id: &K, now: DateTime<Utc>) {
        self.add_many(token_id, 1, now);
    }

    /// Counts `n` at once (encryptions under a project key, say).
    pub(super) fn add_many(&self, key: &K, n: u64, now: DateTime<Utc>) {
        if let Ok(mut pending) = self.pending.lock() {
            let entry = pending.entry(key.clone()).or_insert((0, now));
            entry.0 += n;
            entry.1 = entry.1.max(now);
        }
    }

    /// The uses of `token_id` counted and not yet taken, with the last one.
    pub(super) fn pending(&self, token_id: &K) -> Option<(u64, DateTime<Utc>)> {
        self.pending.lock().ok()?.get(token_id).copied()
    }

    /// Takes every pending count, to write them out.
    pub(super) fn take(&self) -> Vec<(K, u64, DateTime<Utc>)> {
        self.pending
            .lock()
            .map(|mut pending| pending.drain().map(|(id, (n, at))| (id, n, at)).collect())
            .unwrap_or_default()
    }

    /// Puts counts back after a failed write, so no use is lost.
    pub(super) fn restore(&self, uses: Vec<(K, u64, DateTime<Utc>)>) {
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
    fn batched_uses_add_up_and_survive_a_failed_flush() {
        let batch = UseBatch::default();
        let t = "t".to_owned();
        batch.add(&t, t0());
        batch.add(&t, t0() + chrono::Duration::seconds(2));
        let taken = batch.take();
        assert_eq!(
            taken,
            vec![("t".to_owned(), 2, t0() + chrono::Duration::seconds(2))]
        );
        assert!(batch.take().is_empty());
        batch.restore(taken);
        batch.add(&t, t0());
        assert_eq!(
            batch.take(),
            vec![("t".to_owned(), 3, t0() + chrono::Duration::seconds(2))]
        );
    }
}
