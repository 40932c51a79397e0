//! The secrets service's database: ciphertext only.

mod batch;
mod entity;
mod migration;

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{ProjectId, Secret, SecretKey};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use sea_orm::sea_query::LikeExpr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use sea_orm_migration::MigratorTrait;

use self::entity::{secret, secret_version};
use crate::write::Writer;
use crate::{StoreError, connect, corrupt, to_u64};

/// How often a write retries after losing a race with a concurrent writer.
const PUT_RETRIES: u32 = 20;

/// When a write may happen: Infisical's create refuses an existing secret
/// and its update a missing one; Latchkey's own set writes either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or write the next version.
    Upsert,
    /// Only if the secret does not exist.
    CreateOnly,
    /// Only if the secret exists.
    UpdateOnly,
}

/// The secrets service's repository.
#[derive(Debug, Clone)]
pub struct SecretStore {
    db: DatabaseConnection,
    writer: Writer,
    /// SQLite's writes, committed together (one fsync for all the writes
    /// waiting); `None` on PostgreSQL, where each commits on its own.
    batches: Option<batch::Batches>,
}

impl SecretStore {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = connect(url).await?;
        migration::Migrator::up(&db, None).await?;
        let writer = Writer::for_db(&db);
        let batches = (sea_orm::ConnectionTrait::get_database_backend(&db)
            == sea_orm::DbBackend::Sqlite)
            .then(|| batch::Batches::start(db.clone(), writer.clone()));
        Ok(Self {
            writer,
            batches,
            db,
        })
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
        if let Some(batches) = &self.batches {
            return batches.put(key.clone(), sealed, now, mode).await;
        }
        // Concurrent first writes race on the unique index: the loser
        // retries and finds the row.
        let mut attempt = 0;
        loop {
            match self.put_once(key, &sealed, now, mode).await {
                Err(StoreError::Conflict(_) | StoreError::Busy(_)) if attempt < PUT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt)))
                        .await;
                }
                other => return other,
            }
        }
    }

    async fn put_once(
        &self,
        key: &SecretKey,
        sealed: &Sealed,
        now: DateTime<Utc>,
        mode: WriteMode,
    ) -> Result<Option<Secret>, StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        let put = put_in(&*txn, key, sealed, now, mode).await?;
        if put.is_some() {
            txn.commit().await?;
        }
        Ok(put)
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

/// Writes `key`'s next version (or refuses under `mode`) in `txn`, which
/// the caller commits.
async fn put_in(
    txn: &impl sea_orm::ConnectionTrait,
    key: &SecretKey,
    sealed: &Sealed,
    now: DateTime<Utc>,
    mode: WriteMode,
) -> Result<Option<Secret>, StoreError> {
    // FOR UPDATE on PostgreSQL serialises writers of one secret; SQLite has one writer anyway.
    let existing = find(key).lock_exclusive().one(txn).await?;
    match (mode, &existing) {
        (WriteMode::CreateOnly, Some(_)) | (WriteMode::UpdateOnly, None) => return Ok(None),
        _ => {}
    }
    let (id, version, created_at) = match existing {
        Some(row) => {
            let version = row.version + 1;
            let id = row.id.clone();
            let created_at = row.created_at;
            let mut active: secret::ActiveModel = row.into();
            active.ciphertext = Set(sealed.ciphertext.clone());
            active.iv = Set(sealed.iv.clone());
            active.tag = Set(sealed.tag.clone());
            active.version = Set(version);
            active.updated_at = Set(now);
            active.update(txn).await?;
            (id, version, created_at)
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            secret::ActiveModel {
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
            }
            .insert(txn)
            .await?;
            (id, 1, now)
        }
    };
    secret_version::ActiveModel {
        secret_id: Set(id.clone()),
        version: Set(version),
        ciphertext: Set(sealed.ciphertext.clone()),
        iv: Set(sealed.iv.clone()),
        tag: Set(sealed.tag.clone()),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(Some(Secret {
        id,
        key: key.clone(),
        sealed: sealed.clone(),
        version: to_u64(version, "version")?,
        created_at,
        updated_at: now,
    }))
}

fn find(key: &SecretKey) -> sea_orm::Select<secret::Entity> {
    secret::Entity::find()
        .filter(secret::Column::ProjectId.eq(key.project_id.as_str()))
        .filter(secret::Column::Environment.eq(key.environment.as_str()))
        .filter(secret::Column::Path.eq(key.path.as_str()))
        .filter(secret::Column::Name.eq(key.name.as_str()))
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
