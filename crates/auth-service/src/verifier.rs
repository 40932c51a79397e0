//! argon2id verification of token secrets: bounded in concurrency (each
//! verify costs ~19 MiB and ~45 ms) and cached, so a valid token pays it once
//! per replica.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_domain::token::{fingerprint, verify_secret};
use lru::LruCache;
use tokio::sync::Semaphore;

use crate::error::AuthError;

/// Verifies token secrets against their stored hashes.
///
/// The cache maps a fingerprint of the whole token to the hash it was
/// verified against; it only skips argon2. Revocation, expiry and activation
/// are read from the token's row on every call, so caching never extends a token.
#[derive(Debug)]
pub struct Verifier {
    cache: Mutex<LruCache<[u8; 32], String>>,
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
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::Internal("verifier closed".to_owned()))?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (secret, hash) = (secret.to_owned(), phc.to_owned());
        let ok = tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .map_err(|e| AuthError::Internal(format!("argon2 task failed: {e}")))?;
        if ok && let Ok(mut cache) = self.cache.lock() {
            cache.put(key, phc.to_owned());
        }
        Ok(ok)
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
