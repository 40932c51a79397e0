//! One fresh database per test.

use sea_orm::{ConnectionTrait, Database};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the server named by `LATCHKEY_TEST_POSTGRES_URL`.
    Postgres,
}

/// A database that exists for one test and is removed after it.
#[derive(Debug)]
pub struct TestDb {
    /// The URL services connect to.
    pub url: String,
    /// The backend.
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is asked for and
    /// `LATCHKEY_TEST_POSTGRES_URL` is unset (CI always sets it).
    pub async fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
                    // CI must never pass by skipping: there the variable is required.
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "LATCHKEY_TEST_POSTGRES_URL must be set in CI"
                    );
                    eprintln!("skipped: LATCHKEY_TEST_POSTGRES_URL is not set");
                    return None;
                };
                let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to LATCHKEY_TEST_POSTGRES_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let base = admin_url.split('?').next().unwrap_or(&admin_url);
                let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// Every row of every table as text, to search for data that must not be stored.
    pub async fn dump(&self) -> String {
        self.dump_without(&[]).await
    }

    /// [`Self::dump`] but for `skipped` tables (e.g. the audit trail, which
    /// keeps ids of what was deleted, by design).
    pub async fn dump_without(&self, skipped: &[&str]) -> String {
        let db = Database::connect(&self.url).await.expect("connect test db");
        let backend = db.get_database_backend();
        let tables_sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
            }
        };
        let tables = db
            .query_all(sea_orm::Statement::from_string(backend, tables_sql))
            .await
            .expect("list tables");
        let mut out = String::new();
        for row in tables {
            let table: String = row.try_get("", "name").expect("table name");
            if skipped.contains(&table.as_str()) {
                continue;
            }
            let rows_sql = match self.backend {
                Backend::Sqlite => format!("SELECT * FROM \"{table}\""),
                Backend::Postgres => format!("SELECT t::text AS row FROM \"{table}\" t"),
            };
            for r in db
                .query_all(sea_orm::Statement::from_string(backend, rows_sql))
                .await
                .expect("read table")
            {
                match self.backend {
                    Backend::Postgres => {
                        out.push_str(&r.try_get::<String>("", "row").unwrap_or_default())
                    }
                    Backend::Sqlite => {
                        // Read each column as text and as bytes; whichever decodes is kept.
                        for i in 0..64 {
                            if let Ok(text) = r.try_get_by_index::<String>(i) {
                                out.push_str(&text);
                            } else if let Ok(bytes) = r.try_get_by_index::<Vec<u8>>(i) {
                                out.push_str(&String::from_utf8_lossy(&bytes));
                                out.push_str(&hex::encode(&bytes));
                            }
                            out.push('|');
                        }
                    }
                }
                out.push('\n');
            }
        }
        let _ = db.close().await;
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
