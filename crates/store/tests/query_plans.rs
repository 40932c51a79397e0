//! Every query the reaper and the hot paths run is answered from an index,
//! never by scanning a table: checked with SQLite's `EXPLAIN QUERY PLAN`
//! and PostgreSQL's `EXPLAIN` (sequential scans disabled, so a plan that
//! still scans has no index to use).

#![expect(
    unused_crate_dependencies,
    reason = "each test binary uses part of the shared dev-dependencies"
)]
#![expect(clippy::unwrap_used, reason = "tests")]

use latchkey_store::auth::AuthStore;
use latchkey_store::secrets::SecretStore;
use latchkey_test_support::{Backend, TestDb, backend_tests};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

backend_tests!(
    reaper_and_auth_hot_path_queries_use_indexes,
    secrets_hot_path_queries_use_indexes,
);

const T: &str = "'2026-01-01 00:00:00'";

/// The auth database's queries, as the store builds them (literals for
/// the bound values).
fn auth_queries() -> Vec<String> {
    vec![
        // The reaper, both token tables.
        format!("DELETE FROM service_tokens WHERE expires_at < {T} OR revoked_at < {T}"),
        format!("DELETE FROM identity_access_tokens WHERE expires_at < {T} OR revoked_at < {T}"),
        // Authorize and LookupToken: rows by primary key.
        "SELECT * FROM service_tokens WHERE id = 'x'".to_owned(),
        "SELECT * FROM identity_access_tokens WHERE id = 'x'".to_owned(),
        "SELECT * FROM identities WHERE id = 'x'".to_owned(),
        "SELECT * FROM projects WHERE id = 'x'".to_owned(),
        "SELECT * FROM environments WHERE project_id = 'x' ORDER BY position".to_owned(),
        "SELECT * FROM project_memberships WHERE project_id = 'x' AND identity_id = 'y'".to_owned(),
        "SELECT * FROM token_auth_configs WHERE identity_id = 'x'".to_owned(),
        // Consuming a use of a limited access token: one conditional UPDATE.
        format!(
            "UPDATE identity_access_tokens SET use_count = use_count + 1 WHERE id = 'x' \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {T}) \
             AND (num_uses_limit = 0 OR use_count < num_uses_limit)"
        ),
        // Admin listings and deleting an identity.
        "SELECT * FROM service_tokens WHERE project_id = 'x' AND revoked_at IS NULL".to_owned(),
        "SELECT * FROM identity_access_tokens WHERE identity_id = 'x'".to_owned(),
        format!(
            "UPDATE identity_access_tokens SET revoked_at = {T} WHERE identity_id = 'x' \
             AND revoked_at IS NULL"
        ),
        "DELETE FROM project_memberships WHERE identity_id = 'x'".to_owned(),
    ]
}

async fn reaper_and_auth_hot_path_queries_use_indexes(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    AuthStore::connect(&db.url).await.unwrap();
    assert_indexed(&db.url, backend, &auth_queries()).await;
}

async fn secrets_hot_path_queries_use_indexes(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    SecretStore::connect(&db.url).await.unwrap();
    let queries = [
        "SELECT * FROM secrets WHERE project_id = 'p' AND environment = 'dev' AND path = '/a' \
         ORDER BY path, name",
        "SELECT * FROM secrets WHERE project_id = 'p' AND environment = 'dev' \
         AND (path = '/a' OR path LIKE '/a/%') ORDER BY path, name",
        "SELECT * FROM secrets WHERE project_id = 'p' AND environment = 'dev' AND path = '/a' \
         AND name = 'K'",
        "SELECT * FROM secret_versions WHERE secret_id = 'x'",
    ]
    .map(str::to_owned);
    assert_indexed(&db.url, backend, &queries).await;
}

/// Fails naming each query whose plan scans a table.
async fn assert_indexed(url: &str, backend: Backend, queries: &[String]) {
    let db = Database::connect(url).await.unwrap();
    let mut scans = Vec::new();
    for sql in queries {
        let plan = match backend {
            Backend::Sqlite => {
                let rows = db
                    .query_all(Statement::from_string(
                        DbBackend::Sqlite,
                        format!("EXPLAIN QUERY PLAN {sql}"),
                    ))
                    .await
                    .unwrap();
                rows.iter()
                    .map(|r| r.try_get::<String>("", "detail").unwrap())
                    .collect::<Vec<_>>()
            }
            Backend::Postgres => {
                // One connection, so the setting holds for the EXPLAIN.
                let txn = sea_orm::TransactionTrait::begin(&db).await.unwrap();
                txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                    .await
                    .unwrap();
                let rows = txn
                    .query_all(Statement::from_string(
                        DbBackend::Postgres,
                        format!("EXPLAIN {sql}"),
                    ))
                    .await
                    .unwrap();
                txn.rollback().await.unwrap();
                rows.iter()
                    .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
                    .collect()
            }
        };
        let scanned = plan.iter().any(|line| match backend {
            // "SCAN t" reads the whole table; "SEARCH t USING INDEX" does not.
            Backend::Sqlite => line.trim_start().starts_with("SCAN "),
            Backend::Postgres => line.contains("Seq Scan"),
        });
        if scanned {
            scans.push(format!("{sql}\n    {}", plan.join("\n    ")));
        }
    }
    assert!(
        scans.is_empty(),
        "queries that scan a table:\n{}",
        scans.join("\n")
    );
}
