//! Write transactions that queue rather than fail under contention.
//!
//! SQLite lets one writer in at a time. A plain (deferred) transaction
//! that reads and then writes must upgrade its read snapshot to the write
//! lock; when another writer committed in between, SQLite refuses at once
//! (`SQLITE_BUSY_SNAPSHOT`, no busy handler), and under load some writes
//! fail however often they retry. So on SQLite a write transaction takes
//! the write lock before it reads anything (what `BEGIN IMMEDIATE` does,
//! which sea-orm cannot issue), and the writers of one process wait their
//! turn in a fair queue instead of polling in SQLite's busy handler.
//! PostgreSQL needs neither: row locks serialise its writers.

use std::ops::Deref;
use std::sync::Arc;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// Begins the write transactions of one store.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    /// SQLite's writers' queue; `None` on PostgreSQL.
    turn: Option<Arc<Mutex<()>>>,
}

impl Writer {
    pub(crate) fn for_db(db: &DatabaseConnection) -> Self {
        Self {
            turn: (db.get_database_backend() == DbBackend::Sqlite)
                .then(|| Arc::new(Mutex::new(()))),
        }
    }

    /// Whether one transaction writes at a time (SQLite).
    pub(crate) fn is_serial(&self) -> bool {
        self.turn.is_some()
    }

    /// The writers' turn (on SQLite), for one statement that writes
    /// without reading, which SQLite makes atomic by itself.
    pub(crate) async fn turn(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.turn {
            Some(turn) => Some(turn.clone().lock_owned().await),
            None => None,
        }
    }

    /// A transaction holding the write lock (on SQLite) from its start.
    pub(crate) async fn begin(&self, db: &DatabaseConnection) -> Result<WriteTxn, StoreError> {
        let turn = match &self.turn {
            Some(turn) => Some(turn.clone().lock_owned().await),
            None => None,
        };
        let txn = db.begin().await?;
        if turn.is_some() {
            // A write statement takes the write lock, waiting in the busy
            // handler for another process's writer, before anything is read.
            txn.execute_unprepared("UPDATE seaql_migrations SET version = version WHERE 0")
                .await?;
        }
        Ok(WriteTxn { txn, _turn: turn })
    }
}

/// A write transaction; the next writer's turn comes when it ends.
#[derive(Debug)]
pub(crate) struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTxn {
    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit().await?)
    }
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}
