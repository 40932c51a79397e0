//! Group commit: the writes waiting their turn are committed in one
//! transaction, so one fsync serves them all. A durable commit costs an
//! fsync, and SQLite lets one writer in at a time; committed one by one,
//! 64 waiting writers wait 64 fsyncs, and their latency grows with their
//! number. Committed together, throughput grows with the queue instead.
//! Each statement is a round trip (to SQLite's worker thread, to the
//! PostgreSQL server), so a batch spends one statement per write (two for
//! a new secret) and one for all their version rows. Each write still
//! succeeds or fails alone: when a statement of the batch fails (or, on
//! PostgreSQL, a replica's batch deadlocks with another's), it is rolled
//! back and every write of it is retried in a transaction of its own. None
//! is acknowledged before the transaction holding it committed.

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{Secret, SecretKey, WriteMode};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use super::entity::secret_version;
use super::{put_alone, put_row, version_row};
use crate::StoreError;
use crate::write::{WriteTxn, Writer};

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 128;

/// Writes waiting for the batcher, at most; beyond, callers wait to queue.
const QUEUE: usize = 1024;

type Reply = oneshot::Sender<Result<Option<Secret>, StoreError>>;

#[derive(Debug)]
struct Put {
    key: SecretKey,
    sealed: Sealed,
    now: DateTime<Utc>,
    mode: WriteMode,
    reply: Reply,
}

/// The queues of one store's writes; their tasks end when the last store
/// holding them is dropped.
#[derive(Debug, Clone)]
pub(super) struct Batches {
    /// One per committer; a secret's writes all go to one of them, so its
    /// versions follow their order and two committers never wait for each
    /// other's row locks.
    queues: Vec<mpsc::Sender<Put>>,
}

impl Batches {
    pub(super) fn start(db: DatabaseConnection, writer: Writer) -> Self {
        // SQLite has one writer; PostgreSQL commits a few batches at once,
        // so that a handful of writers do not wait for each other's fsync.
        let committers = if writer.is_serial() { 1 } else { 4 };
        let queues = (0..committers)
            .map(|_| {
                let (queue, mut waiting) = mpsc::channel::<Put>(QUEUE);
                let (db, writer) = (db.clone(), writer.clone());
                tokio::spawn(async move {
                    while let Some(batch) = next_batch(&mut waiting).await {
                        commit(&db, &writer, batch).await;
                    }
                });
                queue
            })
            .collect();
        Self { queues }
    }

    /// Writes `key`'s next version in the next batch, once it committed.
    pub(super) async fn put(
        &self,
        key: SecretKey,
        sealed: Sealed,
        now: DateTime<Utc>,
        mode: WriteMode,
    ) -> Result<Option<Secret>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let put = Put {
            key,
            sealed,
            now,
            mode,
            reply,
        };
        let stopped = || StoreError::unavailable("the store's writer stopped");
        let queue = &self.queues[committer(&put.key, self.queues.len())];
        queue.send(put).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Which of `committers` writes `key`.
fn committer(key: &SecretKey, committers: usize) -> usize {
    use std::hash::{BuildHasher, RandomState};
    // Any hash will do, as long as one process always picks the same one.
    static HASHER: std::sync::LazyLock<RandomState> = std::sync::LazyLock::new(RandomState::new);
    let hash = HASHER.hash_one(location(key));
    usize::try_from(hash % committers as u64).unwrap_or(0)
}

/// The writes waiting, at most [`MAX_BATCH`], once there is one; `None`
/// when the queue closed. Ordered by secret (a secret's writes keep their
/// order), so that batches of two replicas lock rows in one order and
/// cannot deadlock each other.
async fn next_batch(waiting: &mut mpsc::Receiver<Put>) -> Option<Vec<Put>> {
    let mut batch = vec![waiting.recv().await?];
    while batch.len() < MAX_BATCH {
        match waiting.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
    batch.sort_by(|a, b| location(&a.key).cmp(&location(&b.key)));
    Some(batch)
}

fn location(key: &SecretKey) -> (&str, &str, &str, &str) {
    (
        key.project_id.as_str(),
        key.environment.as_str(),
        key.path.as_str(),
        key.name.as_str(),
    )
}

/// Runs `batch` in one transaction and answers each write once it
/// committed; when a statement of the batch fails, each write runs alone.
async fn commit(db: &DatabaseConnection, writer: &Writer, batch: Vec<Put>) {
    let txn = match writer.begin(db).await {
        Ok(txn) => txn,
        // Every write would wait for the same lock: each gets its error.
        Err(e) => {
            let message = e.to_string();
            for put in batch {
                let _ = put.reply.send(Err(like(&e, &message)));
            }
            return;
        }
    };
    match together(txn, &batch).await {
        Ok(written) => {
            for (put, result) in batch.into_iter().zip(written) {
                let _ = put.reply.send(Ok(result));
            }
        }
        Err(_) => {
            for put in batch {
                let result = put_alone(db, writer, &put.key, &put.sealed, put.now, put.mode).await;
                let _ = put.reply.send(result);
            }
        }
    }
}

/// Each write of `batch` (`None` where its mode refused), committed in
/// `txn`, or nothing.
async fn together(txn: WriteTxn, batch: &[Put]) -> Result<Vec<Option<Secret>>, StoreError> {
    let mut written = Vec::with_capacity(batch.len());
    for put in batch {
        written.push(put_row(&*txn, &put.key, &put.sealed, put.now, put.mode).await?);
    }
    let versions = written
        .iter()
        .flatten()
        .map(version_row)
        .collect::<Result<Vec<_>, _>>()?;
    if !versions.is_empty() {
        secret_version::Entity::insert_many(versions)
            .exec_without_returning(&*txn)
            .await?;
    }
    txn.commit().await?;
    Ok(written)
}

/// The same kind of failure for another caller of a failed batch.
fn like(err: &StoreError, message: &str) -> StoreError {
    match err {
        StoreError::Busy(_) => {
            StoreError::Busy(sea_orm::DbErr::Custom(format!("database busy: {message}")))
        }
        _ => StoreError::unavailable(message.to_owned()),
    }
}
