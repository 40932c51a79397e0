//! argon2id verification of token secrets: bounded in concurrency and
//! memory (each verify costs ~19 MiB and ~45 ms) and cached, so a valid
//! token pays it once per replica.
//!
//! Verifications run on a fixed set of worker threads, one per core, each
//! with its own reused argon2 memory. A caller only queues a job and waits
//! for its answer: when it goes away (deadline, reset stream) a queued job is
//! dropped unrun and a running one still holds its worker until it ends, so
//! no caller behaviour can run more argon2 at once than there are workers,
//! nor allocate more than one working memory per worker.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use latchkey_domain::token::{Argon2Memory, fingerprint, hash_secret, verify_secret_with};
use lru::LruCache;
use tokio::sync::{OnceCell, oneshot};

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
    pool: Pool,
    /// A hash of a random secret, verified against for unknown token ids so
    /// that they cost what a wrong secret costs.
    decoy_hash: String,
}

impl Verifier {
    /// A verifier remembering up to `capacity` tokens, with one argon2
    /// worker per core.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self::with_workers(capacity, workers)
    }

    /// A verifier with exactly `workers` argon2 threads.
    #[must_use]
    pub fn with_workers(capacity: usize, workers: usize) -> Self {
        let decoy = format!("{:032x}", rand::random::<u128>());
        Self {
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            in_flight: Mutex::new(HashMap::new()),
            pool: Pool::start(workers.max(1)),
            // Start-up: the decoy has the default parameters every stored hash has.
            decoy_hash: hash_secret(&decoy, &mut rand::rngs::OsRng)
                .unwrap_or_else(|_| String::from("$argon2id$unusable")),
        }
    }

    /// True when `secret` matches `phc`; `raw` is the whole token, the cache key.
    pub async fn verify(&self, raw: &str, secret: &str, phc: &str) -> Result<bool, AuthError> {
        let key = fingerprint(raw);
        if self.cached(&key, phc) {
            return Ok(true);
        }
        let entry = InFlight::join(&self.in_flight, key);
        let ok = entry
            .cell
            .get_or_try_init(|| self.pool.verify(secret, phc))
            .await
            .copied()?;
        drop(entry);
        if ok && let Ok(mut cache) = self.cache.lock() {
            cache.put(key, phc.to_owned());
        }
        Ok(ok)
    }

    /// Spends on a token id that has no row what [`Self::verify`] spends
    /// on a wrong secret, so the two cannot be told apart by time and an
    /// unknown id is no cheaper to flood with. Always false.
    pub async fn verify_unknown(&self, raw: &str, secret: &str) -> Result<bool, AuthError> {
        let decoy = self.decoy_hash.clone();
        self.verify(raw, secret, &decoy).await.map(|_| false)
    }

    /// How many argon2 verifications ran (for tests and metrics).
    #[must_use]
    pub fn argon2_runs(&self) -> u64 {
        self.pool.shared.runs.load(Ordering::Relaxed)
    }

    /// The most argon2 verifications that ever ran at once.
    #[must_use]
    pub fn argon2_peak_concurrency(&self) -> usize {
        self.pool.shared.peak.load(Ordering::Relaxed)
    }

    /// Verifications started and not yet finished, queued or running
    /// (single-flight entries), for tests.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map_or(0, |m| m.len())
    }

    fn cached(&self, key: &[u8; 32], phc: &str) -> bool {
        self.cache
            .lock()
            .is_ok_and(|mut cache| cache.get(key).is_some_and(|h| h == phc))
    }
}

/// One caller's share of a single-flight verification. The last caller to
/// leave, by finishing or by being cancelled, removes the map entry.
struct InFlight<'a> {
    map: &'a Mutex<HashMap<[u8; 32], Arc<OnceCell<bool>>>>,
    key: [u8; 32],
    cell: Arc<OnceCell<bool>>,
}

impl<'a> InFlight<'a> {
    fn join(map: &'a Mutex<HashMap<[u8; 32], Arc<OnceCell<bool>>>>, key: [u8; 32]) -> Self {
        let cell = match map.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            Err(_) => Arc::new(OnceCell::new()),
        };
        Self { map, key, cell }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && map.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cell))
            // Clones are made under this lock: two left means the map's and ours.
            && Arc::strong_count(&self.cell) <= 2
        {
            map.remove(&self.key);
        }
    }
}

/// A verification waiting for a worker; `reply` closed means nobody waits.
struct Job {
    secret: String,
    phc: String,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
    stop: AtomicBool,
    running: AtomicUsize,
    peak: AtomicUsize,
    runs: AtomicU64,
}

/// The argon2 worker threads; stopped when dropped.
struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("running", &self.shared.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Pool {
    fn start(workers: usize) -> Self {
        let shared = Arc::new(Shared::default());
        for i in 0..workers {
            let shared = shared.clone();
            // Start-up: a service that cannot start its verifier threads cannot serve.
            #[expect(clippy::expect_used, reason = "start-up")]
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&shared))
                .expect("start an argon2 worker thread");
        }
        Self { shared }
    }

    async fn verify(&self, secret: &str, phc: &str) -> Result<bool, AuthError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            secret: secret.to_owned(),
            phc: phc.to_owned(),
            reply,
        };
        self.shared
            .queue
            .lock()
            .map_err(|_| AuthError::Internal("argon2 queue poisoned".to_owned()))?
            .push_back(job);
        self.shared.ready.notify_one();
        answer
            .await
            .map_err(|_| AuthError::Internal("argon2 worker stopped".to_owned()))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    let mut memory = Argon2Memory::default();
    loop {
        let job = {
            let Ok(mut queue) = shared.queue.lock() else {
                return;
            };
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = match shared.ready.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
        };
        if job.reply.is_closed() {
            continue;
        }
        let now = shared.running.fetch_add(1, Ordering::Relaxed) + 1;
        shared.peak.fetch_max(now, Ordering::Relaxed);
        shared.runs.fetch_add(1, Ordering::Relaxed);
        let ok = verify_secret_with(&job.secret, &job.phc, &mut memory);
        shared.running.fetch_sub(1, Ordering::Relaxed);
        let _ = job.reply.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    async fn unknown_ids_pay_one_argon2_run_and_are_never_valid() {
        let verifier = Verifier::new(10);
        assert!(!verifier.verify_unknown("tok", "s3cret").await.unwrap());
        assert!(!verifier.verify_unknown("tok", "s3cret").await.unwrap());
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
        assert_eq!(verifier.in_flight(), 0);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_callers_never_run_more_argon2_than_workers_nor_leave_entries() {
        let hash = hash_secret("s3cret", &mut rand::rngs::OsRng).unwrap();
        let verifier = Arc::new(Verifier::with_workers(10, 2));
        // 64 distinct wrong tokens, each abandoned after 5 ms.
        let calls = (0..64).map(|i| {
            let (verifier, hash) = (verifier.clone(), hash.clone());
            tokio::spawn(async move {
                let raw = format!("tok-{i}");
                let _ = tokio::time::timeout(
                    Duration::from_millis(5),
                    verifier.verify(&raw, "wrong", &hash),
                )
                .await;
            })
        });
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(verifier.in_flight(), 0, "every abandoned entry is removed");
        // The workers still answer, and never ran more than two at once.
        assert!(verifier.verify("ok", "s3cret", &hash).await.unwrap());
        assert!(verifier.argon2_peak_concurrency() <= 2);
        assert!(
            verifier.argon2_runs() < 64,
            "abandoned queued jobs were skipped, ran {}",
            verifier.argon2_runs()
        );
    }
}
