//! The auth service's database.

mod entity;
mod migration;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use latchkey_domain::access::TokenState;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::identity::{OrgRole, ProjectRole, TokenAuthConfig};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::path::Environment;
use latchkey_domain::scope::{Permissions, Scope, Scopes};
use latchkey_domain::token::SecretHash;
use lru::LruCache;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde_json::json;

use self::entity::{
    environment, identity, identity_token, membership, project, service_token, token_auth_config,
};
use crate::{StoreError, connect, corrupt, to_u64};

/// A project as stored, its lists parsed.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    /// Project id.
    pub id: String,
    /// Name.
    pub name: String,
    /// End-to-end encrypted: the server never decrypts.
    pub e2ee: bool,
    /// The project key wrapped under the root key.
    pub wrapped_key: Sealed,
    /// Encryptions performed under the project key.
    pub encryption_count: u64,
    /// The project's IP allowlist.
    pub trusted_ips: TrustedIps,
    /// Environments, oldest first: (slug, name).
    pub environments: Vec<(Environment, String)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Project id.
    pub id: String,
    /// Name.
    pub name: String,
    /// End-to-end encrypted.
    pub e2ee: bool,
    /// The project key wrapped under the root key.
    pub wrapped_key: Sealed,
    /// Initial environments: (slug, name).
    pub environments: Vec<(Environment, String)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A service token as stored: only the hash of its secret, and the project
/// key encrypted under its key part.
#[derive(Debug, Clone)]
pub struct ServiceTokenRecord {
    /// Token id.
    pub id: String,
    /// Project id.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// argon2id PHC hash of the secret part.
    pub secret_hash: SecretHash,
    /// Scopes.
    pub scopes: Scopes,
    /// Permissions.
    pub permissions: Permissions,
    /// Per-token IP allowlist.
    pub trusted_ips: TrustedIps,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// False when deactivated.
    pub active: bool,
    /// Set when deleted.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The project key encrypted under the token's key part.
    pub encrypted_project_key: Sealed,
    /// Allowed uses so far.
    pub use_count: u64,
    /// Last allowed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl ServiceTokenRecord {
    /// The lifecycle state the access checks need.
    #[must_use]
    pub fn state(&self) -> TokenState {
        TokenState {
            expires_at: self.expires_at,
            active: self.active,
            revoked: self.revoked_at.is_some(),
            use_count: self.use_count,
            use_limit: 0,
        }
    }
}

/// An identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// Identity id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Organisation role.
    pub org_role: OrgRole,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An identity access token as stored.
#[derive(Debug, Clone)]
pub struct IdentityTokenRecord {
    /// Token id.
    pub id: String,
    /// Identity id.
    pub identity_id: String,
    /// Name.
    pub name: String,
    /// argon2id PHC hash of the secret part.
    pub secret_hash: SecretHash,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Allowed uses so far.
    pub use_count: u64,
    /// Maximum uses; 0 is unlimited (from the config it was issued under).
    pub num_uses_limit: u64,
    /// TTL it was issued with, for renewals.
    pub ttl_seconds: i64,
    /// Max TTL it was issued with, for renewals.
    pub max_ttl_seconds: i64,
    /// Addresses it may be used from.
    pub trusted_ips: TrustedIps,
    /// Last allowed use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl IdentityTokenRecord {
    /// The lifecycle state the access checks need.
    #[must_use]
    pub fn state(&self) -> TokenState {
        TokenState {
            expires_at: self.expires_at,
            active: true,
            revoked: self.revoked_at.is_some(),
            use_count: self.use_count,
            use_limit: self.num_uses_limit,
        }
    }
}

/// An identity's membership of a project.
#[derive(Debug, Clone)]
pub struct MembershipRecord {
    /// Project id.
    pub project_id: String,
    /// Identity id.
    pub identity_id: String,
    /// Role in the project.
    pub role: ProjectRole,
    /// Scopes narrowing the role; `None` covers the whole project.
    pub scopes: Option<Scopes>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// The auth service's repository.
#[derive(Debug, Clone)]
pub struct AuthStore {
    db: DatabaseConnection,
    compiled: Arc<CompiledScopes>,
}

/// Scope lists by their stored text, compiled once: a row reloaded into the
/// state cache every second does not recompile its globs.
#[derive(Debug)]
struct CompiledScopes(Mutex<LruCache<String, Scopes>>);

/// Distinct scope lists kept compiled.
const COMPILED_SCOPES: usize = 10_000;

impl CompiledScopes {
    fn parse(&self, text: &str) -> Result<Scopes, StoreError> {
        if let Ok(mut memo) = self.0.lock()
            && let Some(scopes) = memo.get(text)
        {
            return Ok(scopes.clone());
        }
        let scopes = parse_scopes(text)?;
        if let Ok(mut memo) = self.0.lock() {
            memo.put(text.to_owned(), scopes.clone());
        }
        Ok(scopes)
    }
}

impl AuthStore {
    /// Connects and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let db = connect(url).await?;
        migration::Migrator::up(&db, None).await?;
        let capacity = NonZeroUsize::new(COMPILED_SCOPES).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            db,
            compiled: Arc::new(CompiledScopes(Mutex::new(LruCache::new(capacity)))),
        })
    }

    /// Inserts a project and its environments in one transaction.
    pub async fn insert_project(&self, new: NewProject) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        project::ActiveModel {
            id: Set(new.id.clone()),
            name: Set(new.name),
            e2ee: Set(new.e2ee),
            key_ciphertext: Set(new.wrapped_key.ciphertext),
            key_iv: Set(new.wrapped_key.iv),
            key_tag: Set(new.wrapped_key.tag),
            encryption_count: Set(0),
            trusted_ips: Set("[]".to_owned()),
            created_at: Set(new.created_at),
        }
        .insert(&txn)
        .await?;
        for (position, (slug, name)) in new.environments.iter().enumerate() {
            insert_environment(&txn, &new.id, slug, name, position, new.created_at).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// One project, or `None`.
    pub async fn project(&self, id: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let Some(model) = project::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let envs = environment::Entity::find()
            .filter(environment::Column::ProjectId.eq(id))
            .order_by_asc(environment::Column::Position)
            .all(&self.db)
            .await?;
        project_record(model, envs).map(Some)
    }

    /// Every project, oldest first.
    pub async fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        let models = project::Entity::find()
            .order_by_asc(project::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut envs = environment::Entity::find()
            .order_by_asc(environment::Column::Position)
            .all(&self.db)
            .await?;
        models
            .into_iter()
            .map(|m| {
                let mine: Vec<_> = envs
                    .iter()
                    .filter(|e| e.project_id == m.id)
                    .cloned()
                    .collect();
                envs.retain(|e| e.project_id != m.id);
                project_record(m, mine)
            })
            .collect()
    }

    /// Adds an environment after the existing ones; [`StoreError::Conflict`] if the slug exists.
    pub async fn insert_environment(
        &self,
        project_id: &str,
        slug: &Environment,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let position = environment::Entity::find()
            .filter(environment::Column::ProjectId.eq(project_id))
            .count(&self.db)
            .await?;
        insert_environment(
            &self.db,
            project_id,
            slug,
            name,
            usize::try_from(position).unwrap_or(usize::MAX),
            now,
        )
        .await
    }

    /// Replaces a project's wrapped key (root key rotation); false when the
    /// project does not exist.
    pub async fn set_project_wrapped_key(
        &self,
        project_id: &str,
        wrapped: &Sealed,
    ) -> Result<bool, StoreError> {
        let result = project::Entity::update_many()
            .col_expr(
                project::Column::KeyCiphertext,
                Expr::value(wrapped.ciphertext.clone()),
            )
            .col_expr(project::Column::KeyIv, Expr::value(wrapped.iv.clone()))
            .col_expr(project::Column::KeyTag, Expr::value(wrapped.tag.clone()))
            .filter(project::Column::Id.eq(project_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Replaces a project's allowlist; false when the project does not exist.
    pub async fn set_project_trusted_ips(
        &self,
        project_id: &str,
        ips: &TrustedIps,
    ) -> Result<bool, StoreError> {
        let result = project::Entity::update_many()
            .col_expr(
                project::Column::TrustedIps,
                Expr::value(json!(ips.to_strings()).to_string()),
            )
            .filter(project::Column::Id.eq(project_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Counts one encryption under a project key, atomically; returns the new count.
    pub async fn count_encryption(&self, project_id: &str) -> Result<u64, StoreError> {
        project::Entity::update_many()
            .col_expr(
                project::Column::EncryptionCount,
                Expr::col(project::Column::EncryptionCount).add(1),
            )
            .filter(project::Column::Id.eq(project_id))
            .exec(&self.db)
            .await?;
        let count = project::Entity::find_by_id(project_id)
            .one(&self.db)
            .await?
            .map_or(Ok(0), |p| to_u64(p.encryption_count, "encryption_count"))?;
        Ok(count)
    }

    /// Inserts a service token.
    pub async fn insert_service_token(&self, token: &ServiceTokenRecord) -> Result<(), StoreError> {
        service_token::ActiveModel {
            id: Set(token.id.clone()),
            project_id: Set(token.project_id.clone()),
            name: Set(token.name.clone()),
            secret_hash: Set(token.secret_hash.as_str().to_owned()),
            scopes: Set(scopes_json(&token.scopes)),
            permissions: Set(token.permissions.describe()),
            trusted_ips: Set(json!(token.trusted_ips.to_strings()).to_string()),
            expires_at: Set(token.expires_at),
            active: Set(token.active),
            revoked_at: Set(token.revoked_at),
            key_ciphertext: Set(token.encrypted_project_key.ciphertext.clone()),
            key_iv: Set(token.encrypted_project_key.iv.clone()),
            key_tag: Set(token.encrypted_project_key.tag.clone()),
            use_count: Set(0),
            last_used_at: Set(None),
            created_at: Set(token.created_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// One service token, deleted ones included (they answer `TOKEN_REVOKED`).
    pub async fn service_token(&self, id: &str) -> Result<Option<ServiceTokenRecord>, StoreError> {
        service_token::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|m| service_token_record(m, &self.compiled))
            .transpose()
    }

    /// A project's live (not deleted) service tokens, oldest first.
    pub async fn service_tokens(
        &self,
        project_id: &str,
    ) -> Result<Vec<ServiceTokenRecord>, StoreError> {
        service_token::Entity::find()
            .filter(service_token::Column::ProjectId.eq(project_id))
            .filter(service_token::Column::RevokedAt.is_null())
            .order_by_asc(service_token::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| service_token_record(m, &self.compiled))
            .collect()
    }

    /// Deletes a service token: marks it revoked and erases its copy of the
    /// project key. False when there was no live token with that id.
    pub async fn revoke_service_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = service_token::Entity::update_many()
            .col_expr(service_token::Column::RevokedAt, Expr::value(now))
            .col_expr(
                service_token::Column::KeyCiphertext,
                Expr::value(Vec::<u8>::new()),
            )
            .col_expr(service_token::Column::KeyIv, Expr::value(Vec::<u8>::new()))
            .col_expr(service_token::Column::KeyTag, Expr::value(Vec::<u8>::new()))
            .filter(service_token::Column::Id.eq(id))
            .filter(service_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deactivates or reactivates a live service token; false when there is none.
    pub async fn set_service_token_active(
        &self,
        id: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let result = service_token::Entity::update_many()
            .col_expr(service_token::Column::Active, Expr::value(active))
            .filter(service_token::Column::Id.eq(id))
            .filter(service_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Adds `uses` uses of a service token, the last at `last_used_at`, atomically.
    pub async fn add_service_token_uses(
        &self,
        id: &str,
        uses: u64,
        last_used_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        service_token::Entity::update_many()
            .col_expr(
                service_token::Column::UseCount,
                Expr::col(service_token::Column::UseCount)
                    .add(i64::try_from(uses).unwrap_or(i64::MAX)),
            )
            .col_expr(service_token::Column::LastUsedAt, Expr::value(last_used_at))
            .filter(service_token::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Adds `uses` uses of an access token without a limit, the last at `last_used_at`.
    pub async fn add_identity_token_uses(
        &self,
        id: &str,
        uses: u64,
        last_used_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        identity_token::Entity::update_many()
            .col_expr(
                identity_token::Column::UseCount,
                Expr::col(identity_token::Column::UseCount)
                    .add(i64::try_from(uses).unwrap_or(i64::MAX)),
            )
            .col_expr(
                identity_token::Column::LastUsedAt,
                Expr::value(last_used_at),
            )
            .filter(identity_token::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes service tokens that expired before `expired_before` or were
    /// deleted before `revoked_before`; returns how many.
    pub async fn reap_service_tokens(
        &self,
        expired_before: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = service_token::Entity::delete_many()
            .filter(
                service_token::Column::ExpiresAt
                    .lt(expired_before)
                    .or(service_token::Column::RevokedAt.lt(revoked_before)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Deletes identity access tokens that expired before `expired_before`
    /// or were revoked before `revoked_before`; returns how many.
    pub async fn reap_identity_tokens(
        &self,
        expired_before: DateTime<Utc>,
        revoked_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let result = identity_token::Entity::delete_many()
            .filter(
                identity_token::Column::ExpiresAt
                    .lt(expired_before)
                    .or(identity_token::Column::RevokedAt.lt(revoked_before)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// How many identities exist.
    pub async fn identity_count(&self) -> Result<u64, StoreError> {
        Ok(identity::Entity::find().count(&self.db).await?)
    }

    /// Inserts an identity.
    pub async fn insert_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        identity_model(identity).insert(&self.db).await?;
        Ok(())
    }

    /// Inserts an identity together with one access token, atomically.
    pub async fn insert_identity_with_token(
        &self,
        identity: &IdentityRecord,
        token: &IdentityTokenRecord,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        identity_model(identity).insert(&txn).await?;
        identity_token_model(token).insert(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// One identity, or `None`.
    pub async fn identity(&self, id: &str) -> Result<Option<IdentityRecord>, StoreError> {
        identity::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(identity_record)
            .transpose()
    }

    /// Every identity, oldest first.
    pub async fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        identity::Entity::find()
            .order_by_asc(identity::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(identity_record)
            .collect()
    }

    /// Deletes an identity with its Token Auth config and memberships, and
    /// revokes its tokens, in one transaction. False when there was none.
    pub async fn delete_identity(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        identity_token::Entity::update_many()
            .col_expr(identity_token::Column::RevokedAt, Expr::value(now))
            .filter(identity_token::Column::IdentityId.eq(id))
            .filter(identity_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        membership::Entity::delete_many()
            .filter(membership::Column::IdentityId.eq(id))
            .exec(&txn)
            .await?;
        token_auth_config::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        let deleted = identity::Entity::delete_by_id(id)
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        txn.commit().await?;
        Ok(deleted)
    }

    /// An identity's Token Auth config, or `None` when not attached.
    pub async fn token_auth_config(
        &self,
        identity_id: &str,
    ) -> Result<Option<TokenAuthConfig>, StoreError> {
        let Some(m) = token_auth_config::Entity::find_by_id(identity_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(TokenAuthConfig {
            ttl_seconds: m.access_token_ttl,
            max_ttl_seconds: m.access_token_max_ttl,
            num_uses_limit: i64::try_from(to_u64(
                m.access_token_num_uses_limit,
                "access_token_num_uses_limit",
            )?)
            .unwrap_or(i64::MAX),
            trusted_ips: parse_ips(&m.access_token_trusted_ips)?,
        }))
    }

    /// Attaches Token Auth; [`StoreError::Conflict`] when already attached.
    pub async fn insert_token_auth_config(
        &self,
        identity_id: &str,
        config: &TokenAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        token_auth_config::ActiveModel {
            identity_id: Set(identity_id.to_owned()),
            access_token_ttl: Set(config.ttl_seconds),
            access_token_max_ttl: Set(config.max_ttl_seconds),
            access_token_num_uses_limit: Set(config.num_uses_limit),
            access_token_trusted_ips: Set(json!(config.trusted_ips.to_strings()).to_string()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Replaces an attached Token Auth config; false when none is attached.
    pub async fn update_token_auth_config(
        &self,
        identity_id: &str,
        config: &TokenAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = token_auth_config::Entity::update_many()
            .col_expr(
                token_auth_config::Column::AccessTokenTtl,
                Expr::value(config.ttl_seconds),
            )
            .col_expr(
                token_auth_config::Column::AccessTokenMaxTtl,
                Expr::value(config.max_ttl_seconds),
            )
            .col_expr(
                token_auth_config::Column::AccessTokenNumUsesLimit,
                Expr::value(config.num_uses_limit),
            )
            .col_expr(
                token_auth_config::Column::AccessTokenTrustedIps,
                Expr::value(json!(config.trusted_ips.to_strings()).to_string()),
            )
            .col_expr(token_auth_config::Column::UpdatedAt, Expr::value(now))
            .filter(token_auth_config::Column::IdentityId.eq(identity_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Inserts an identity access token.
    pub async fn insert_identity_token(
        &self,
        token: &IdentityTokenRecord,
    ) -> Result<(), StoreError> {
        identity_token_model(token).insert(&self.db).await?;
        Ok(())
    }

    /// One identity access token, revoked ones included.
    pub async fn identity_token(
        &self,
        id: &str,
    ) -> Result<Option<IdentityTokenRecord>, StoreError> {
        identity_token::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(identity_token_record)
            .transpose()
    }

    /// An identity's access tokens, revoked ones included, oldest first.
    pub async fn identity_tokens(
        &self,
        identity_id: &str,
    ) -> Result<Vec<IdentityTokenRecord>, StoreError> {
        identity_token::Entity::find()
            .filter(identity_token::Column::IdentityId.eq(identity_id))
            .order_by_asc(identity_token::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(identity_token_record)
            .collect()
    }

    /// Revokes an access token; false when there was no live token with that id.
    pub async fn revoke_identity_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = identity_token::Entity::update_many()
            .col_expr(identity_token::Column::RevokedAt, Expr::value(now))
            .filter(identity_token::Column::Id.eq(id))
            .filter(identity_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Sets a new expiry, only while the token is live: not revoked, not
    /// expired at `now`, and with uses left. False otherwise.
    pub async fn renew_identity_token(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = identity_token::Entity::update_many()
            .col_expr(identity_token::Column::ExpiresAt, Expr::value(expires_at))
            .filter(live_identity_token(id, now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Consumes one use of an access token in a single conditional UPDATE,
    /// so the limit holds across concurrent calls and replicas. False when
    /// the token is revoked, expired at `now` or has no use left.
    pub async fn consume_identity_token_use(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = identity_token::Entity::update_many()
            .col_expr(
                identity_token::Column::UseCount,
                Expr::col(identity_token::Column::UseCount).add(1),
            )
            .col_expr(identity_token::Column::LastUsedAt, Expr::value(now))
            .filter(live_identity_token(id, now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// An identity's membership of a project, or `None`.
    pub async fn membership(
        &self,
        project_id: &str,
        identity_id: &str,
    ) -> Result<Option<MembershipRecord>, StoreError> {
        membership::Entity::find_by_id((project_id.to_owned(), identity_id.to_owned()))
            .one(&self.db)
            .await?
            .map(|m| {
                Ok(MembershipRecord {
                    role: ProjectRole::parse(&m.role).map_err(|e| corrupt("role", e))?,
                    scopes: m
                        .scopes
                        .as_deref()
                        .map(|text| self.compiled.parse(text))
                        .transpose()?,
                    project_id: m.project_id,
                    identity_id: m.identity_id,
                    created_at: m.created_at,
                })
            })
            .transpose()
    }

    /// Adds a membership; [`StoreError::Conflict`] when the identity is already a member.
    pub async fn insert_membership(&self, record: &MembershipRecord) -> Result<(), StoreError> {
        membership::ActiveModel {
            project_id: Set(record.project_id.clone()),
            identity_id: Set(record.identity_id.clone()),
            role: Set(record.role.as_str().to_owned()),
            scopes: Set(record.scopes.as_ref().map(scopes_json)),
            created_at: Set(record.created_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Removes a membership; false when there was none.
    pub async fn delete_membership(
        &self,
        project_id: &str,
        identity_id: &str,
    ) -> Result<bool, StoreError> {
        let result =
            membership::Entity::delete_by_id((project_id.to_owned(), identity_id.to_owned()))
                .exec(&self.db)
                .await?;
        Ok(result.rows_affected == 1)
    }
}

/// The condition of a live access token at `now`: not revoked, not expired,
/// uses left. One definition for renewal and consumption.
fn live_identity_token(id: &str, now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(identity_token::Column::Id.eq(id))
        .add(identity_token::Column::RevokedAt.is_null())
        .add(
            sea_orm::Condition::any()
                .add(identity_token::Column::ExpiresAt.is_null())
                .add(identity_token::Column::ExpiresAt.gt(now)),
        )
        .add(
            sea_orm::Condition::any()
                .add(identity_token::Column::NumUsesLimit.eq(0))
                .add(
                    Expr::col(identity_token::Column::UseCount)
                        .lt(Expr::col(identity_token::Column::NumUsesLimit)),
                ),
        )
}

fn identity_model(identity: &IdentityRecord) -> identity::ActiveModel {
    identity::ActiveModel {
        id: Set(identity.id.clone()),
        name: Set(identity.name.clone()),
        org_role: Set(identity.org_role.as_str().to_owned()),
        created_at: Set(identity.created_at),
    }
}

fn identity_record(m: identity::Model) -> Result<IdentityRecord, StoreError> {
    Ok(IdentityRecord {
        org_role: OrgRole::parse(&m.org_role).map_err(|e| corrupt("org_role", e))?,
        id: m.id,
        name: m.name,
        created_at: m.created_at,
    })
}

fn identity_token_model(token: &IdentityTokenRecord) -> identity_token::ActiveModel {
    identity_token::ActiveModel {
        id: Set(token.id.clone()),
        identity_id: Set(token.identity_id.clone()),
        name: Set(token.name.clone()),
        secret_hash: Set(token.secret_hash.as_str().to_owned()),
        expires_at: Set(token.expires_at),
        revoked_at: Set(token.revoked_at),
        use_count: Set(0),
        num_uses_limit: Set(i64::try_from(token.num_uses_limit).unwrap_or(i64::MAX)),
        ttl_seconds: Set(token.ttl_seconds),
        max_ttl_seconds: Set(token.max_ttl_seconds),
        trusted_ips: Set(json!(token.trusted_ips.to_strings()).to_string()),
        last_used_at: Set(None),
        created_at: Set(token.created_at),
    }
}

fn identity_token_record(m: identity_token::Model) -> Result<IdentityTokenRecord, StoreError> {
    Ok(IdentityTokenRecord {
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: m.id,
        identity_id: m.identity_id,
        name: m.name,
        secret_hash: SecretHash::new(m.secret_hash),
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        use_count: to_u64(m.use_count, "use_count")?,
        num_uses_limit: to_u64(m.num_uses_limit, "num_uses_limit")?,
        ttl_seconds: m.ttl_seconds,
        max_ttl_seconds: m.max_ttl_seconds,
        last_used_at: m.last_used_at,
        created_at: m.created_at,
    })
}

async fn insert_environment<C: sea_orm::ConnectionTrait>(
    db: &C,
    project_id: &str,
    slug: &Environment,
    name: &str,
    position: usize,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    environment::ActiveModel {
        project_id: Set(project_id.to_owned()),
        slug: Set(slug.as_str().to_owned()),
        name: Set(name.to_owned()),
        position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

fn project_record(
    m: project::Model,
    envs: Vec<environment::Model>,
) -> Result<ProjectRecord, StoreError> {
    let environments = envs
        .into_iter()
        .map(|e| {
            Environment::parse(&e.slug)
                .map(|slug| (slug, e.name))
                .map_err(|err| corrupt("environment slug", err))
        })
        .collect::<Result<_, _>>()?;
    Ok(ProjectRecord {
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: m.id,
        name: m.name,
        e2ee: m.e2ee,
        wrapped_key: Sealed {
            ciphertext: m.key_ciphertext,
            iv: m.key_iv,
            tag: m.key_tag,
        },
        encryption_count: to_u64(m.encryption_count, "encryption_count")?,
        environments,
        created_at: m.created_at,
    })
}

fn service_token_record(
    m: service_token::Model,
    compiled: &CompiledScopes,
) -> Result<ServiceTokenRecord, StoreError> {
    Ok(ServiceTokenRecord {
        scopes: compiled.parse(&m.scopes)?,
        permissions: Permissions::from_stored(&m.permissions)
            .map_err(|e| corrupt("permissions", e))?,
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: m.id,
        project_id: m.project_id,
        name: m.name,
        secret_hash: SecretHash::new(m.secret_hash),
        expires_at: m.expires_at,
        active: m.active,
        revoked_at: m.revoked_at,
        encrypted_project_key: Sealed {
            ciphertext: m.key_ciphertext,
            iv: m.key_iv,
            tag: m.key_tag,
        },
        use_count: to_u64(m.use_count, "use_count")?,
        last_used_at: m.last_used_at,
        created_at: m.created_at,
    })
}

fn scopes_json(scopes: &Scopes) -> String {
    let list: Vec<_> = scopes
        .as_slice()
        .iter()
        .map(|s| json!({"environment": s.environment.as_str(), "secret_path": s.glob.as_str()}))
        .collect();
    json!(list).to_string()
}

fn parse_scopes(text: &str) -> Result<Scopes, StoreError> {
    let list: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| corrupt("scopes", e))?;
    list.iter()
        .map(|s| {
            let env = s
                .get("environment")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let glob = s
                .get("secret_path")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            Scope::new(env, glob).map_err(|e| corrupt("scopes", e))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Scopes::new)
}

fn parse_ips(text: &str) -> Result<TrustedIps, StoreError> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt("trusted_ips", e))?;
    TrustedIps::parse(&list, "trusted_ips").map_err(|e| corrupt("trusted_ips", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_is_compiled_once_and_shared_by_every_load() {
        let memo = CompiledScopes(Mutex::new(LruCache::new(NonZeroUsize::MIN)));
        let text = scopes_json(&Scopes::new(vec![Scope::new("dev", "/a/**").unwrap()]));

        let first = memo.parse(&text).unwrap();
        let second = memo.parse(&text).unwrap();

        assert_eq!(first, second);
        assert_eq!(memo.0.lock().unwrap().len(), 1);
        assert!(matches!(
            memo.parse("not json"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
