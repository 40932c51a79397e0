//! argon2id verification of token secrets: bounded in concurrency (each
//! verify costs ~19 MiB and ~45 ms) and cached, so a valid token pays it once
//! per replica.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use latchkey_domain::token::{fingerprint, verify_secret};
use lru::LruCache;
use tokio::sync::{OnceCell, Semaphore};

use crate::error::AuthError;

/// Verifies token secrets against their stored hashes.
///
/// The cache maps a fingerprint of the whole token to the hash it was
/// verified against; it only skips argon2. Revocation, expiry and activation
/// are read from the token's row on every call, so caching never extends a token.
/// Concurrent first calls with one token share a single argon2 run.
#[derive(Debug)]
pub struct Verifier {
    cache: Mutex<LruCache<[u8; 32], String>>,
    in_flight: Mutex<HashMap<[u8; 32], Arc<OnceCell<bool>>>>,
    permits: Semaphore,
    runs: AtomicU64,
}

impl Verifier {
    /// A verifier remembering up to `capacity` tokens.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let parallel = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self {
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            in_flight: Mutex::new(HashMap::new()),
            permits: Semaphore::new(parallel),
            runs: AtomicU64::new(0),
        }
    }

    /// True when `secret` matches `phc`; `raw` is the whole token, the cache key.
    pub async fn verify(&self, raw: &str, secret: &str, phc: &str) -> Result<bool, AuthError> {
        let key = fingerprint(raw);
        if self.cached(&key, phc) {
            return Ok(true);
        }
        let cell = match self.in_flight.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(_) => Arc::new(OnceCell::new()),
        };
        let result = cell
            .get_or_try_init(|| self.run_argon2(secret, phc))
            .await
            .copied();
        if let Ok(mut map) = self.in_flight.lock()
            && map.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            map.remove(&key);
        }
        let ok = result?;
        if ok && let Ok(mut cache) = self.cache.lock() {
            cache.put(key, phc.to_owned());
        }
        Ok(ok)
    }

    async fn run_argon2(&self, secret: &str, phc: &str) -> Result<bool, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("verifier closed".to_owned()))?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (secret, hash) = (secret.to_owned(), phc.to_owned());
        tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .map_err(|e| AuthError::Internal(format!("argon2 task failed: {e}")))
    }

    /// How many argon2 verifications ran (for tests and metrics).
    #[must_use]
    pub fn argon2_runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn cached(&self, key: &[u8; 32], phc: &str) -> bool {
        self.cache
            .lock()
            .is_ok_and(|mut cache| cache.get(key).is_some_and(|h| h == phc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_domain::token::hash_secret;

    #[tokio::test]
    async fn second_verification_of_a_valid_token_skips_argon2() {
        let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
        let verifier = Verifier::new(10);
        assert!(verifier.verify("tok", "s3cret", &hash).await.unwrap());
        assert!(verifier.verify("tok", "s3cret", &hash).await.unwrap());
        assert_eq!(verifier.argon2_runs(), 1);
    }

    #[tokio::test]
    async fn wrong_secrets_are_never_cached() {
        let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
        let verifier = Verifier::new(10);
        assert!(!verifier.verify("tok", "wrong", &hash).await.unwrap());
        assert!(!verifier.verify("tok", "wrong", &hash).await.unwrap());
        assert_eq!(verifier.argon2_runs(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_verifications_share_one_argon2_run() {
        let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
        let verifier = Arc::new(Verifier::new(10));
        let calls = (0..20).map(|_| {
            let (verifier, hash) = (verifier.clone(), hash.clone());
            tokio::spawn(async move { verifier.verify("tok", "s3cret", &hash).await.unwrap() })
        });
        for call in calls {
            assert!(call.await.unwrap());
        }
        assert_eq!(verifier.argon2_runs(), 1);
    }

    #[tokio::test]
    async fn cache_is_bounded() {
        let hash = hash_secret("s", &mut rand::rngs::OsRng).unwrap();
        let verifier = Verifier::new(1);
        verifier.verify("a", "s", &hash).await.unwrap();
        verifier.verify("b", "s", &hash).await.unwrap();
        verifier.verify("a", "s", &hash).await.unwrap();
        assert_eq!(verifier.argon2_runs(), 3);
    }
}
