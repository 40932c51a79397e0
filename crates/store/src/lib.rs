//! Latchkey's storage: sea-orm entities, migrations and repositories for the
//! two databases, one per service.
//!
//! - [`auth`]: projects, environments, wrapped project keys, service tokens,
//!   identities and their access tokens ([`auth::AuthStore`]).
//! - [`secrets`]: secrets and their versions, as ciphertext only
//!   ([`secrets::SecretStore`]).
//!
//! SQLite (`sqlite://path?mode=rwc`) is the default and PostgreSQL
//! (`postgres://...`) the production backend; both run the same migrations on
//! connect. `DbErr` never leaves this crate: it becomes a [`StoreError`].

pub mod auth;
pub mod secrets;

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

/// A storage failure, mapped from the database driver at this boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored value no longer parses: the database was edited by hand or by a newer version.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(String),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict(msg),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres://` or `postgresql://` URLs.
    Postgres,
}

impl Backend {
    /// The backend of a database URL, or `None` for an unsupported scheme.
    #[must_use]
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

async fn connect(url: &str) -> Result<DatabaseConnection, StoreError> {
    let backend = Backend::of_url(url).ok_or_else(|| {
        StoreError::Database(
            "unsupported database URL scheme: use sqlite:// or postgres://".to_owned(),
        )
    })?;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if backend == Backend::Sqlite {
        // SQLite allows one writer; a small pool avoids lock contention.
        options.max_connections(4).min_connections(1);
    } else {
        options.max_connections(16);
    }
    Ok(Database::connect(options).await?)
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
