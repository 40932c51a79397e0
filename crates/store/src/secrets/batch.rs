//! Group commit for SQLite: the writes waiting their turn are committed in
//! one transaction, each in a savepoint of its own, so one fsync serves
//! them all. SQLite lets one writer in at a time and a durable commit
//! costs an fsync; committed one by one, 64 waiting writers wait 64
//! fsyncs, and their latency grows with their number. Committed together,
//! throughput grows with the queue instead. Each write still succeeds or
//! fails alone (a refused or failed write rolls back its savepoint only),
//! and none is acknowledged before the transaction holding it committed.

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{Secret, SecretKey};
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::{WriteMode, put_in};
use crate::StoreError;
use crate::write::Writer;

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

/// The queue of one store's writes; its task ends when the last store
/// holding it is dropped.
#[derive(Debug, Clone)]
pub(super) struct Batches {
    queue: mpsc::Sender<Put>,
}

impl Batches {
    pub(super) fn start(db: DatabaseConnection, writer: Writer) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Put>(QUEUE);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                commit(&db, &writer, batch).await;
            }
        });
        Self { queue }
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
        self.queue.send(put).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Runs `batch` in one transaction and answers each write once it
/// committed (or with why it did not).
async fn commit(db: &DatabaseConnection, writer: &Writer, batch: Vec<Put>) {
    let txn = match writer.begin(db).await {
        Ok(txn) => txn,
        Err(e) => {
            let message = e.to_string();
            for put in batch {
                let _ = put.reply.send(Err(like(&e, &message)));
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for put in batch {
        let result = async {
            let savepoint = txn.begin().await?;
            let written = put_in(&savepoint, &put.key, &put.sealed, put.now, put.mode).await?;
            if written.is_some() {
                savepoint.commit().await?;
            }
            Ok::<_, StoreError>(written)
        }
        .await;
        done.push((put.reply, result));
    }
    match txn.commit().await {
        Ok(()) => {
            for (reply, result) in done {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (reply, _) in done {
                let _ = reply.send(Err(like(&e, &message)));
            }
        }
    }
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
