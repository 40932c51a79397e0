//! Latchkey's storage: sea-orm entities, migrations and repositories for the
//! two databases, one per service.
//!
//! - [`auth`]: projects, environments, wrapped project keys, service tokens,
//!   identities and their access tokens ([`auth::AuthStore`]).
//! - [`secrets`]: secrets and their versions, as ciphertext only
//!   ([`secrets::SecretStore`]).
//! - [`audit`]: the audit table each database holds for its service
//!   ([`audit::AuditStore`]).
//!
//! SQLite (`sqlite://path?mode=rwc`) is the default and PostgreSQL
//! (`postgres://...`) the production backend; both run the same migrations on
//! connect. `DbErr` never leaves this crate: it becomes a [`StoreError`].

#![cfg_attr(
    test,
    expect(
        unused_crate_dependencies,
        reason = "the unit-test build links the dev-dependencies the integration tests use"
    )
)]

pub mod audit;
pub mod auth;
mod schema;
pub mod secrets;
mod write;

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr, sqlx};

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
    #[error("database error")]
    Database(#[source] DbErr),
    /// A concurrent transaction held the rows (SQLite busy, PostgreSQL
    /// serialization failure or deadlock); the operation may be retried.
    #[error("database busy")]
    Busy(#[source] DbErr),
}

impl StoreError {
    /// A database failure that no driver call reported (a bad URL, a file
    /// that cannot be created), described by `message`.
    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError::Database(DbErr::Custom(message.into()))
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_busy(&err) {
            return StoreError::Busy(err);
        }
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict(msg),
            _ => StoreError::Database(err),
        }
    }
}

fn is_busy(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let (DbErr::Exec(runtime) | DbErr::Query(runtime) | DbErr::Conn(runtime)) = err else {
        return false;
    };
    // SQLite BUSY (5), LOCKED (6), BUSY_SNAPSHOT (517); PostgreSQL 40001, 40P01.
    matches!(runtime, RuntimeErr::SqlxError(sqlx::Error::Database(e))
        if matches!(e.code().as_deref(), Some("5" | "6" | "517" | "40001" | "40P01")))
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
        StoreError::unavailable("unsupported database URL scheme: use sqlite:// or postgres://")
    })?;
    if backend == Backend::Sqlite {
        create_private_sqlite_file(url)?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if backend == Backend::Sqlite {
        // SQLite allows one writer; a small pool avoids lock contention. WAL
        // with synchronous=FULL fsyncs the log at every commit, so an
        // acknowledged write survives the machine's crash, not only the
        // process's (the README gives the measured cost).
        options
            .max_connections(4)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
            });
    } else {
        options.max_connections(16);
    }
    Ok(Database::connect(options).await?)
}

/// Creates a missing SQLite database file with mode 0600 before SQLite
/// would create it 0644 (its WAL and shared-memory files take the database
/// file's mode): it holds token hashes and wrapped keys.
fn create_private_sqlite_file(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::unavailable(format!(
            "cannot create the SQLite database {path}: {e}"
        ))),
    }
}

/// The file an `sqlite:` URL names, if it names one (not `:memory:`).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then_some(path)
}

/// Held while a replica migrates and bootstraps, so replicas starting at
/// the same moment on one PostgreSQL database do it one at a time: a
/// session-level advisory lock on a connection of its own, released when
/// the lock is dropped or the process dies (the session ends). SQLite, a
/// single-replica backend, needs none.
#[derive(Debug)]
pub struct StartupLock {
    connection: Option<sqlx::PgConnection>,
}

impl StartupLock {
    /// Waits for the lock named `name` (one per service) on `url`.
    pub async fn acquire(url: &str, name: &str) -> Result<StartupLock, StoreError> {
        use sqlx::Connection;
        if Backend::of_url(url) != Some(Backend::Postgres) {
            return Ok(StartupLock { connection: None });
        }
        let mut connection = sqlx::PgConnection::connect(url).await.map_err(sqlx_error)?;
        // hashtext gives each service's lock a stable 32-bit key.
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(format!("latchkey:{name}:startup"))
            .execute(&mut connection)
            .await
            .map_err(sqlx_error)?;
        Ok(StartupLock {
            connection: Some(connection),
        })
    }

    /// Releases the lock.
    pub async fn release(self) {
        use sqlx::Connection;
        if let Some(connection) = self.connection {
            // Closing the session releases the lock.
            let _ = connection.close().await;
        }
    }
}

fn sqlx_error(err: sqlx::Error) -> StoreError {
    StoreError::Database(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err)))
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// A stored count or limit; a negative one is corrupt data, never read as
/// 0 (which for a use limit would mean unlimited).
fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| corrupt(what, format!("{n} is negative")))
}

/// A count or limit as a column holds it: past `i64::MAX` (which no count
/// reaches) it saturates rather than wraps negative.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///d/auth.db?mode=rwc"),
            Some("/d/auth.db")
        );
        assert_eq!(sqlite_path("sqlite://rel/auth.db"), Some("rel/auth.db"));
        assert_eq!(sqlite_path("sqlite:auth.db"), Some("auth.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[tokio::test]
    async fn a_new_sqlite_database_is_private_to_its_owner_whatever_the_umask_allows() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let file = dir.path().join("auth.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());

        let db = connect(&url).await.unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(&db, "CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();

        for f in ["auth.db", "auth.db-wal"] {
            let path = dir.path().join(f);
            if path.exists() {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{f}");
            }
        }
        assert!(file.exists());
    }
}
