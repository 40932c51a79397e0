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
//!
//! The queue is bounded, and has two lanes: jobs for token ids that failed
//! recently wait behind never-failed ones, and when the queue is full a
//! never-failed job takes the place of the newest suspect one. A job that
//! finds no room is refused at once (`TOO_MANY_FAILED_ATTEMPTS`, retry in
//! 1 s) rather than waiting into its caller's deadline.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use latchkey_domain::token::{Argon2Memory, fingerprint, hash_secret, verify_secret_with};
use latchkey_domain::{AccessError, Reason};
use tokio::sync::oneshot;

use self::verified::Verified;
use crate::error::AuthError;
use latchkey_service_kit::cache::SingleFlight;

mod verified;

/// Verifies token secrets against their stored hashes.
///
/// The cache maps a fingerprint of the whole token to a tag of the hash it
/// was verified against; it only skips argon2. Revocation, expiry and activation
/// are read from the token's row on every call, so caching never extends a token.
/// Concurrent first calls with one token share a single argon2 run.
#[derive(Debug)]
pub struct Verifier {
    cache: Mutex<Verified>,
    in_flight: SingleFlight<[u8; 32], bool>,
    pool: Pool,
    /// A hash of a random secret, verified against for unknown token ids so
    /// that they cost what a wrong secret costs.
    decoy_hash: String,
}

impl Verifier {
    /// A verifier remembering up to `capacity` tokens, with one argon2
    /// worker per core and room for `queue` waiting verifications (`None`:
    /// 16 per worker).
    #[must_use]
    pub fn with_queue(capacity: usize, queue: Option<usize>) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self::with_workers(
            capacity,
            workers,
            queue.unwrap_or(workers * QUEUE_PER_WORKER),
        )
    }

    /// A verifier with exactly `workers` argon2 threads and room for
    /// `queue` waiting verifications.
    #[must_use]
    #[expect(
        clippy::expect_used,
        reason = "start-up: without a real decoy hash an unknown id would be cheap to tell apart, so the service must not start"
    )]
    pub fn with_workers(capacity: usize, workers: usize, queue: usize) -> Self {
        let decoy = format!("{:032x}", rand::random::<u128>());
        Self {
            cache: Mutex::new(Verified::new(capacity, rand::random())),
            in_flight: SingleFlight::default(),
            pool: Pool::start(workers.max(1), queue.max(1)),
            // The decoy has the default parameters every stored hash has.
            decoy_hash: hash_secret(&decoy, &mut rand::rngs::OsRng)
                .expect("argon2 hashes the decoy at start-up"),
        }
    }

    /// True when `raw` (the whole token, the cache key) was verified against
    /// `phc` before and is remembered: no argon2 and no limits apply.
    #[must_use]
    pub fn is_verified(&self, raw: &str, phc: &str) -> bool {
        self.cached(&fingerprint(raw), phc)
    }

    /// True when `secret` matches `phc`; `raw` is the whole token, the cache
    /// key. A `suspect` verification (its token id failed recently) waits
    /// behind others. `spend` is called first, only in the call that runs
    /// argon2: concurrent calls with the same token share its run, and so
    /// spend one attempt between them, not one each. An error from `spend`
    /// refuses this call before any argon2.
    pub async fn verify(
        &self,
        raw: &str,
        secret: &str,
        phc: &str,
        suspect: bool,
        spend: impl FnOnce() -> Result<(), AuthError>,
    ) -> Result<bool, AuthError> {
        let key = fingerprint(raw);
        if self.cached(&key, phc) {
            return Ok(true);
        }
        let ok = self
            .in_flight
            .run(key, || async {
                spend()?;
                self.pool.verify(secret, phc, suspect).await
            })
            .await?;
        if ok && let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, phc_tag(phc));
        }
        Ok(ok)
    }

    /// Spends on a token id that has no row what [`Self::verify`] spends
    /// on a wrong secret, so the two cannot be told apart by time and an
    /// unknown id is no cheaper to flood with. Always false.
    pub async fn verify_unknown(
        &self,
        raw: &str,
        secret: &str,
        suspect: bool,
        spend: impl FnOnce() -> Result<(), AuthError>,
    ) -> Result<bool, AuthError> {
        let decoy = self.decoy_hash.clone();
        self.verify(raw, secret, &decoy, suspect, spend)
            .await
            .map(|_| false)
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
        self.in_flight.in_flight()
    }

    fn cached(&self, key: &[u8; 32], phc: &str) -> bool {
        self.cache
            .lock()
            .is_ok_and(|cache| cache.contains(key, phc_tag(phc)))
    }
}

/// The first 8 bytes of a stored hash's fingerprint: enough to notice that
/// a row was re-hashed, in 8 bytes instead of the ~97 of the hash.
fn phc_tag(phc: &str) -> u64 {
    let f = fingerprint(phc);
    u64::from_le_bytes([f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]])
}

/// Queued verifications per worker by default: with ~45 ms each, a full
/// queue drains in under a second, inside the secrets service's deadline.
pub const QUEUE_PER_WORKER: usize = 16;

/// A verification waiting for a worker; `reply` closed means nobody waits.
struct Job {
    secret: String,
    phc: String,
    reply: oneshot::Sender<Result<bool, Busy>>,
}

/// The queue had no room for a verification.
#[derive(Debug)]
struct Busy;

/// The two lanes of waiting jobs.
#[derive(Default)]
struct Lanes {
    fresh: VecDeque<Job>,
    suspect: VecDeque<Job>,
}

impl Lanes {
    fn len(&self) -> usize {
        self.fresh.len() + self.suspect.len()
    }

    fn pop(&mut self) -> Option<Job> {
        self.fresh.pop_front().or_else(|| self.suspect.pop_front())
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Lanes>,
    capacity: usize,
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
    fn start(workers: usize, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            capacity,
            ..Shared::default()
        });
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

    async fn verify(&self, secret: &str, phc: &str, suspect: bool) -> Result<bool, AuthError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            secret: secret.to_owned(),
            phc: phc.to_owned(),
            reply,
        };
        {
            let mut lanes = self
                .shared
                .queue
                .lock()
                .map_err(|_| AuthError::broken("argon2 queue poisoned"))?;
            // Abandoned jobs hold no place.
            lanes.fresh.retain(|j| !j.reply.is_closed());
            lanes.suspect.retain(|j| !j.reply.is_closed());
            if lanes.len() >= self.shared.capacity {
                match lanes.suspect.pop_back() {
                    Some(displaced) if !suspect => {
                        let _ = displaced.reply.send(Err(Busy));
                    }
                    Some(kept) => {
                        lanes.suspect.push_back(kept);
                        return Err(busy());
                    }
                    None => return Err(busy()),
                }
            }
            if suspect {
                lanes.suspect.push_back(job);
            } else {
                lanes.fresh.push_back(job);
            }
        }
        self.shared.ready.notify_one();
        match answer.await {
            Ok(Ok(ok)) => Ok(ok),
            Ok(Err(Busy)) => Err(busy()),
            Err(_) => Err(AuthError::broken("argon2 worker stopped")),
        }
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
                if let Some(job) = queue.pop() {
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
        let _ = job.reply.send(Ok(ok));
    }
}

fn busy() -> AuthError {
    AccessError::new(
        Reason::TooManyFailedAttempts,
        "the auth service is verifying too many new tokens at once; retry in 1 s",
    )
    .retry_after(std::time::Duration::from_secs(1))
    .into()
}

#[cfg(test)]
mod tests;
