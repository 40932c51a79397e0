//! The tokens a replica verified: about 90 bytes each. When full, a newly
//! verified token takes a random entry's place one time in eight. Under a
//! working set larger than the capacity, a least-recently-used policy misses
//! on every call of a cyclic pattern (and each miss is an argon2 run); this
//! keeps most of the remembered set stable, so the hit rate stays near
//! capacity/working-set (0.46 at twice the capacity, against 0 for LRU and
//! 0.20 for always replacing) and the cost grows smoothly.

use std::collections::HashMap;

/// When full, one newly verified token in this many is admitted.
const ADMIT_ONE_IN: u64 = 8;

/// Fingerprints of verified tokens, each with a tag of the hash it was
/// verified against (a re-hashed row is verified again).
#[derive(Debug)]
pub(super) struct Verified {
    slots: Vec<([u8; 32], u64)>,
    index: HashMap<[u8; 32], usize>,
    capacity: usize,
    /// xorshift64 state choosing victims; no security rests on it.
    victim: u64,
}

impl Verified {
    pub(super) fn new(capacity: usize, seed: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: Vec::new(),
            index: HashMap::new(),
            capacity,
            victim: seed | 1,
        }
    }

    /// Whether `key` was verified against the hash tagged `tag`.
    pub(super) fn contains(&self, key: &[u8; 32], tag: u64) -> bool {
        self.index
            .get(key)
            .is_some_and(|&slot| self.slots.get(slot).is_some_and(|(_, t)| *t == tag))
    }

    /// Remembers `key` as verified against `tag`, replacing a random entry when full.
    pub(super) fn insert(&mut self, key: [u8; 32], tag: u64) {
        if let Some(&slot) = self.index.get(&key) {
            if let Some(entry) = self.slots.get_mut(slot) {
                entry.1 = tag;
            }
            return;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push((key, tag));
            return;
        }
        // Admitting every miss would churn the whole set under a cyclic load.
        if !self.next_random().is_multiple_of(ADMIT_ONE_IN) {
            return;
        }
        let slot = self.next_victim();
        if let Some(entry) = self.slots.get_mut(slot) {
            self.index.remove(&entry.0);
            *entry = (key, tag);
            self.index.insert(key, slot);
        }
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    fn next_victim(&mut self) -> usize {
        let x = self.next_random();
        usize::try_from(x % self.slots.len().max(1) as u64).unwrap_or(0)
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.victim;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.victim = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn a_remembered_token_matches_only_the_hash_it_was_verified_against() {
        let mut v = Verified::new(10, 7);
        v.insert(key(1), 42);
        assert!(v.contains(&key(1), 42));
        assert!(
            !v.contains(&key(1), 43),
            "a re-hashed row is verified again"
        );
        assert!(!v.contains(&key(2), 42));
    }

    #[test]
    fn the_set_never_grows_past_its_capacity() {
        let mut v = Verified::new(100, 7);
        for i in 0..10_000 {
            v.insert(key(i), 1);
        }
        assert_eq!(v.len(), 100);
        assert_eq!(v.index.len(), 100);
    }

    #[test]
    fn a_working_set_twice_the_capacity_still_hits_often() {
        // 200 tokens used in turn against room for 100: LRU would miss every call.
        let mut v = Verified::new(100, 12345);
        let (mut hits, mut calls) = (0, 0);
        for _round in 0..50 {
            for i in 0..200 {
                calls += 1;
                if v.contains(&key(i), 1) {
                    hits += 1;
                } else {
                    v.insert(key(i), 1);
                }
            }
        }
        let rate = f64::from(hits) / f64::from(calls);
        assert!(rate > 0.35, "hit rate {rate}");
    }
}
