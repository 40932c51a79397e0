//! The secrets service's database: ciphertext only.

mod batch;
mod entity;
mod migration;

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{ProjectId, Secret, SecretKey, WriteMode};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use sea_orm::sea_query::{Expr, LikeExpr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use sea_orm_migration::MigratorTrait;

use self::entity::{secret, secret_version};
use crate::write::Writer;
use crate::{StoreError, connect, corrupt, to_u64};

/// How often a write retries after losing a race with a concurrent writer.
const PUT_RETRIES: u32 = 20;

/// The secrets service's repository.
#[derive(Debug, Clone)]
pub struct SecretStore {
    db: DatabaseConnection,
    writer: Writer,
    /// Writes, committed together (one fsync for all the writes waiting).
    batches: batch::Batches,
}

impl SecretStore {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = connect(url).await?;
        migration::Migrator::up(&db, None).await?;
        let writer = Writer::for_db(&db);
        let batches = batch::Batches::start(db.clone(), writer.clone());
        Ok(Self {
            writer,
            batches,
            db,
        })
    }

    /// The audit table of this database, queueing its writes with this
    /// store's (on SQLite, one writer at a time).
    #[must_use]
    pub fn audit(&self) -> crate::audit::AuditStore {
        crate::audit::AuditStore::new(self.db.clone(), self.writer.clone())
    }

    /// Creates a secret at version 1 or writes its next version; keeps every
    /// version. Concurrent writers each get their own version number.
    pub async fn put(
        &self,
        key: &SecretKey,
        sealed: Sealed,
        now: DateTime<Utc>,
    ) -> Result<Secret, StoreError> {
        self.put_as(key, sealed, now, WriteMode::Upsert)
            .await?
            .ok_or_else(|| StoreError::Conflict("an upsert was refused".to_owned()))
    }

    /// Like [`SecretStore::put`] under `mode`, decided in the writing
    /// transaction (so two creates of one name cannot both succeed); `None`
    /// when `mode` refused.
    pub async fn put_as(
        &self,
        key: &SecretKey,
        sealed: Sealed,
        now: DateTime<Utc>,
        mode: WriteMode,
    ) -> Result<Option<Secret>, StoreError> {
        self.batches.put(key.clone(), sealed, now, mode).await
    }

    /// One secret, or `None`.
    pub async fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        find(key).one(&self.db).await?.map(record).transpose()
    }

    /// The secrets of a folder, or of it and every folder below it, ordered
    /// by path then name.
    pub async fn list(
        &self,
        project_id: &ProjectId,
        environment: &Environment,
        path: &SecretPath,
        recursive: bool,
    ) -> Result<Vec<Secret>, StoreError> {
        let mut query = secret::Entity::find()
            .filter(secret::Column::ProjectId.eq(project_id.as_str()))
            .filter(secret::Column::Environment.eq(environment.as_str()));
        query =
            if !recursive {
                query.filter(secret::Column::Path.eq(path.as_str()))
            } else if path.as_str() == "/" {
                query
            } else {
                let prefix = path
                    .as_str()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                query.filter(secret::Column::Path.eq(path.as_str()).or(
                    secret::Column::Path.like(LikeExpr::new(format!("{prefix}/%")).escape('\\')),
                ))
            };
        let rows = query
            .order_by_asc(secret::Column::Path)
            .order_by_asc(secret::Column::Name)
            .all(&self.db)
            .await?;
        // SQLite's LIKE ignores ASCII case, so the exact rule is applied here.
        rows.into_iter()
            .map(record)
            .filter(|r| r.as_ref().map_or(true, |r| r.key.path.is_within(path)))
            .collect()
    }

    /// Deletes a secret and its versions; returns it as it was, or `None`
    /// when it did not exist.
    pub async fn delete(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        let Some(row) = find(key).one(&*txn).await? else {
            return Ok(None);
        };
        let deleted = record(row.clone())?;
        secret_version::Entity::delete_many()
            .filter(secret_version::Column::SecretId.eq(row.id.clone()))
            .exec(&*txn)
            .await?;
        secret::Entity::delete_by_id(row.id).exec(&*txn).await?;
        txn.commit().await?;
        Ok(Some(deleted))
    }
}

/// Writes `key`'s next version (or refuses under `mode`) in a transaction
/// of its own.
async fn put_alone(
    db: &DatabaseConnection,
    writer: &Writer,
    key: &SecretKey,
    sealed: &Sealed,
    now: DateTime<Utc>,
    mode: WriteMode,
) -> Result<Option<Secret>, StoreError> {
    // Concurrent first writes (from another replica) race on the unique
    // index, and writers of other replicas can deadlock on row locks: the
    // loser retries.
    let mut attempt = 0;
    loop {
        match put_once(db, writer, key, sealed, now, mode).await {
            Err(StoreError::Conflict(_) | StoreError::Busy(_)) if attempt < PUT_RETRIES => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

async fn put_once(
    db: &DatabaseConnection,
    writer: &Writer,
    key: &SecretKey,
    sealed: &Sealed,
    now: DateTime<Utc>,
    mode: WriteMode,
) -> Result<Option<Secret>, StoreError> {
    let txn = writer.begin(db).await?;
    let Some(written) = put_row(&*txn, key, sealed, now, mode).await? else {
        return Ok(None);
    };
    version_row(&written)?.insert(&*txn).await?;
    txn.commit().await?;
    Ok(Some(written))
}

/// Writes `key`'s row at its next version (or refuses under `mode`) in
/// `txn`; the caller writes its [`version_row`]. One statement when the
/// secret exists, two when it is created: a write's cost is its round
/// trips to the database.
async fn put_row(
    txn: &impl sea_orm::ConnectionTrait,
    key: &SecretKey,
    sealed: &Sealed,
    now: DateTime<Utc>,
    mode: WriteMode,
) -> Result<Option<Secret>, StoreError> {
    if mode != WriteMode::CreateOnly {
        // On PostgreSQL the UPDATE's row lock serialises writers of one secret.
        let updated = secret::Entity::update_many()
            .col_expr(
                secret::Column::Ciphertext,
                Expr::value(sealed.ciphertext.clone()),
            )
            .col_expr(secret::Column::Iv, Expr::value(sealed.iv.clone()))
            .col_expr(secret::Column::Tag, Expr::value(sealed.tag.clone()))
            .col_expr(
                secret::Column::Version,
                Expr::col(secret::Column::Version).add(1),
            )
            .col_expr(secret::Column::UpdatedAt, Expr::value(now))
            .filter(at(key))
            .exec_with_returning(txn)
            .await?;
        if let Some(row) = updated.into_iter().next() {
            return record(row).map(Some);
        }
        if mode == WriteMode::UpdateOnly {
            return Ok(None);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = secret::Entity::insert(secret::ActiveModel {
        id: Set(id.clone()),
        project_id: Set(key.project_id.as_str().to_owned()),
        environment: Set(key.environment.as_str().to_owned()),
        path: Set(key.path.as_str().to_owned()),
        name: Set(key.name.as_str().to_owned()),
        ciphertext: Set(sealed.ciphertext.clone()),
        iv: Set(sealed.iv.clone()),
        tag: Set(sealed.tag.clone()),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            secret::Column::ProjectId,
            secret::Column::Environment,
            secret::Column::Path,
            secret::Column::Name,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    match (inserted, mode) {
        (1.., _) => Ok(Some(Secret {
            id,
            key: key.clone(),
            sealed: sealed.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
        })),
        (0, WriteMode::CreateOnly) => Ok(None),
        // A concurrent writer created it after our UPDATE looked: try again.
        (0, _) => Err(StoreError::Conflict(
            "the secret was created concurrently".to_owned(),
        )),
    }
}

/// The row keeping `written`'s version.
fn version_row(written: &Secret) -> Result<secret_version::ActiveModel, StoreError> {
    let version = i64::try_from(written.version)
        .map_err(|_| corrupt("version", format!("{} is too large", written.version)))?;
    Ok(secret_version::ActiveModel {
        secret_id: Set(written.id.clone()),
        version: Set(version),
        ciphertext: Set(written.sealed.ciphertext.clone()),
        iv: Set(written.sealed.iv.clone()),
        tag: Set(written.sealed.tag.clone()),
        created_at: Set(written.updated_at),
    })
}

fn at(key: &SecretKey) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(secret::Column::ProjectId.eq(key.project_id.as_str()))
        .add(secret::Column::Environment.eq(key.environment.as_str()))
        .add(secret::Column::Path.eq(key.path.as_str()))
        .add(secret::Column::Name.eq(key.name.as_str()))
}

fn find(key: &SecretKey) -> sea_orm::Select<secret::Entity> {
    secret::Entity::find().filter(at(key))
}

fn record(m: secret::Model) -> Result<Secret, StoreError> {
    Ok(Secret {
        id: m.id,
        key: SecretKey {
            environment: Environment::parse(&m.environment)
                .map_err(|e| corrupt("environment", e))?,
            path: SecretPath::parse(&m.path).map_err(|e| corrupt("path", e))?,
            name: SecretName::parse(&m.name).map_err(|e| corrupt("name", e))?,
            project_id: ProjectId::from_stored(m.project_id),
        },
        sealed: Sealed {
            ciphertext: m.ciphertext,
            iv: m.iv,
            tag: m.tag,
        },
        version: to_u64(m.version, "version")?,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}
