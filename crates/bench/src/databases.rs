//! The databases the bench runs on: SQLite files in its temporary data
//! directory, or fresh PostgreSQL databases made from
//! `LATCHKEY_TEST_POSTGRES_URL` and dropped at the end; and filling the auth
//! database with stored tokens for `--tokens`.

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::BoxError;

/// Which database both services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// SQLite files in the temporary data directory.
    Sqlite,
    /// New databases on the server `LATCHKEY_TEST_POSTGRES_URL` names.
    Postgres,
}

/// The two services' database URLs (`None`: SQLite, their default), and
/// what to drop afterwards.
pub(crate) struct Databases {
    pub(crate) auth: Option<String>,
    pub(crate) secrets: Option<String>,
    server: Option<(String, Vec<String>)>,
}

impl Databases {
    pub(crate) async fn create(backend: Backend) -> Result<Self, BoxError> {
        if backend == Backend::Sqlite {
            return Ok(Self {
                auth: None,
                secrets: None,
                server: None,
            });
        }
        let base = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .map_err(|_| "--backend postgres needs LATCHKEY_TEST_POSTGRES_URL")?;
        let (server, _) = base
            .rsplit_once('/')
            .ok_or("LATCHKEY_TEST_POSTGRES_URL has no database name")?;
        let admin = Database::connect(&base).await?;
        let suffix = format!("{:016x}", rand::random::<u64>());
        let names = vec![
            format!("lk_bench_auth_{suffix}"),
            format!("lk_bench_secrets_{suffix}"),
        ];
        for name in &names {
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
        }
        Ok(Self {
            auth: Some(format!("{server}/{}", names[0])),
            secrets: Some(format!("{server}/{}", names[1])),
            server: Some((base, names)),
        })
    }

    /// Drops the PostgreSQL databases (best effort).
    pub(crate) async fn drop_all(self) {
        let Some((base, names)) = self.server else {
            return;
        };
        if let Ok(admin) = Database::connect(&base).await {
            for name in names {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        }
    }
}

/// Stores `n` service tokens of `project` straight into the auth database,
/// 1,000 rows per INSERT: creating a million through the API would take
/// hours of argon2 hashing. Never used by a call, they make the tables the
/// size a large deployment has.
pub(crate) async fn store_tokens(url: &str, project: &str, n: usize) -> Result<(), BoxError> {
    let db: DatabaseConnection = Database::connect(url).await?;
    let now =
        chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000, 0).ok_or("timestamp")?;
    let columns = [
        "id",
        "project_id",
        "name",
        "secret_hash",
        "scopes",
        "permissions",
        "trusted_ips",
        "expires_at",
        "active",
        "revoked_at",
        "key_ciphertext",
        "key_iv",
        "key_tag",
        "use_count",
        "last_used_at",
        "created_at",
    ]
    .map(Alias::new);
    let mut stored = 0;
    while stored < n {
        let batch = (n - stored).min(1000);
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new("service_tokens"))
            .columns(columns.clone());
        for _ in 0..batch {
            insert.values([
                uuid::Uuid::new_v4().to_string().into(),
                project.into(),
                "stored".into(),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
                r#"[{"environment":"dev","secret_path":"/**"}]"#.into(),
                "read".into(),
                "[]".into(),
                Option::<chrono::DateTime<chrono::Utc>>::None.into(),
                true.into(),
                Option::<chrono::DateTime<chrono::Utc>>::None.into(),
                vec![0u8; 48].into(),
                vec![0u8; 12].into(),
                vec![0u8; 16].into(),
                0i64.into(),
                Option::<chrono::DateTime<chrono::Utc>>::None.into(),
                now.into(),
            ])?;
        }
        db.execute(db.get_database_backend().build(&insert)).await?;
        stored += batch;
    }
    Ok(())
}
