//! Service tokens.

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{ProjectId, ServiceToken, ServiceTokenId};
use latchkey_domain::scope::{Permissions, ScopeCache};
use latchkey_domain::token::SecretHash;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;

use super::entity::service_token;
use super::{AuthStore, cached_scopes, parse_ips, scopes_json};
use crate::{StoreError, corrupt, to_i64, to_u64};

impl AuthStore {
    /// Inserts a service token.
    pub async fn insert_service_token(&self, token: &ServiceToken) -> Result<(), StoreError> {
        service_token::ActiveModel {
            id: Set(token.id.as_str().to_owned()),
            project_id: Set(token.project_id.as_str().to_owned()),
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
    pub async fn service_token(
        &self,
        id: &ServiceTokenId,
    ) -> Result<Option<ServiceToken>, StoreError> {
        service_token::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await?
            .map(|m| service_token_record(m, &self.compiled))
            .transpose()
    }

    /// A project's live (not deleted) service tokens, oldest first.
    pub async fn service_tokens(
        &self,
        project_id: &ProjectId,
    ) -> Result<Vec<ServiceToken>, StoreError> {
        service_token::Entity::find()
            .filter(service_token::Column::ProjectId.eq(project_id.as_str()))
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
        id: &ServiceTokenId,
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
            .filter(service_token::Column::Id.eq(id.as_str()))
            .filter(service_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deactivates or reactivates a live service token; false when there is none.
    pub async fn set_service_token_active(
        &self,
        id: &ServiceTokenId,
        active: bool,
    ) -> Result<bool, StoreError> {
        let result = service_token::Entity::update_many()
            .col_expr(service_token::Column::Active, Expr::value(active))
            .filter(service_token::Column::Id.eq(id.as_str()))
            .filter(service_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Replaces a service token's stored secret hash.
    pub async fn set_service_token_secret_hash(
        &self,
        id: &ServiceTokenId,
        hash: &SecretHash,
    ) -> Result<(), StoreError> {
        service_token::Entity::update_many()
            .col_expr(
                service_token::Column::SecretHash,
                Expr::value(hash.as_str().to_owned()),
            )
            .filter(service_token::Column::Id.eq(id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Adds `uses` uses of a service token, the last at `last_used_at`, atomically.
    pub async fn add_service_token_uses(
        &self,
        id: &ServiceTokenId,
        uses: u64,
        last_used_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        service_token::Entity::update_many()
            .col_expr(
                service_token::Column::UseCount,
                Expr::col(service_token::Column::UseCount).add(to_i64(uses)),
            )
            .col_expr(service_token::Column::LastUsedAt, Expr::value(last_used_at))
            .filter(service_token::Column::Id.eq(id.as_str()))
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
}

fn service_token_record(
    m: service_token::Model,
    compiled: &ScopeCache,
) -> Result<ServiceToken, StoreError> {
    Ok(ServiceToken {
        scopes: cached_scopes(compiled, &m.scopes)?,
        permissions: Permissions::from_stored(&m.permissions)
            .map_err(|e| corrupt("permissions", e))?,
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: ServiceTokenId::from_stored(m.id),
        project_id: ProjectId::from_stored(m.project_id),
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
