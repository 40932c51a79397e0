//! Machine identities and their Token Auth configs.

use chrono::{DateTime, Utc};
use latchkey_domain::identity::{OrgRole, TokenAuthConfig};
use latchkey_domain::model::{AccessToken, Identity, IdentityId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::access_tokens::identity_token_model;
use super::entity::{
    client_secret, identity, identity_token, kubernetes_auth_config, membership, token_auth_config,
    universal_auth_config,
};
use super::{AuthStore, access_settings};
use crate::{StoreError, corrupt, to_i64};

impl AuthStore {
    /// How many identities exist.
    pub async fn identity_count(&self) -> Result<u64, StoreError> {
        Ok(identity::Entity::find().count(&self.db).await?)
    }

    /// Inserts an identity.
    pub async fn insert_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        identity_model(identity).insert(&self.db).await?;
        Ok(())
    }

    /// Inserts an identity together with one access token, atomically.
    pub async fn insert_identity_with_token(
        &self,
        identity: &Identity,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        identity_model(identity).insert(&*txn).await?;
        identity_token_model(token).insert(&*txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// One identity, or `None`.
    pub async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        identity::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await?
            .map(identity_record)
            .transpose()
    }

    /// Every identity, oldest first.
    pub async fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        identity::Entity::find()
            .order_by_asc(identity::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(identity_record)
            .collect()
    }

    /// Deletes an identity with its auth methods (Token Auth, Universal
    /// Auth and its client secrets, Kubernetes Auth) and memberships, and
    /// revokes its tokens, in one transaction. False when there was none.
    pub async fn delete_identity(
        &self,
        id: &IdentityId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        identity_token::Entity::update_many()
            .col_expr(identity_token::Column::RevokedAt, Expr::value(now))
            .filter(identity_token::Column::IdentityId.eq(id.as_str()))
            .filter(identity_token::Column::RevokedAt.is_null())
            .exec(&*txn)
            .await?;
        membership::Entity::delete_many()
            .filter(membership::Column::IdentityId.eq(id.as_str()))
            .exec(&*txn)
            .await?;
        token_auth_config::Entity::delete_by_id(id.as_str())
            .exec(&*txn)
            .await?;
        universal_auth_config::Entity::delete_by_id(id.as_str())
            .exec(&*txn)
            .await?;
        kubernetes_auth_config::Entity::delete_by_id(id.as_str())
            .exec(&*txn)
            .await?;
        client_secret::Entity::delete_many()
            .filter(client_secret::Column::IdentityId.eq(id.as_str()))
            .exec(&*txn)
            .await?;
        let deleted = identity::Entity::delete_by_id(id.as_str())
            .exec(&*txn)
            .await?
            .rows_affected
            == 1;
        txn.commit().await?;
        Ok(deleted)
    }

    /// An identity's Token Auth config, or `None` when not attached.
    pub async fn token_auth_config(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Option<TokenAuthConfig>, StoreError> {
        let Some(m) = token_auth_config::Entity::find_by_id(identity_id.as_str())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        access_settings(
            m.access_token_ttl,
            m.access_token_max_ttl,
            m.access_token_num_uses_limit,
            &m.access_token_trusted_ips,
        )
        .map(Some)
    }

    /// Attaches Token Auth; [`StoreError::Conflict`] when already attached.
    pub async fn insert_token_auth_config(
        &self,
        identity_id: &IdentityId,
        config: &TokenAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        token_auth_config::ActiveModel {
            identity_id: Set(identity_id.as_str().to_owned()),
            access_token_ttl: Set(config.ttl_seconds),
            access_token_max_ttl: Set(config.max_ttl_seconds),
            access_token_num_uses_limit: Set(to_i64(config.num_uses_limit)),
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
        identity_id: &IdentityId,
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
                Expr::value(to_i64(config.num_uses_limit)),
            )
            .col_expr(
                token_auth_config::Column::AccessTokenTrustedIps,
                Expr::value(json!(config.trusted_ips.to_strings()).to_string()),
            )
            .col_expr(token_auth_config::Column::UpdatedAt, Expr::value(now))
            .filter(token_auth_config::Column::IdentityId.eq(identity_id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

pub(super) fn identity_model(identity: &Identity) -> identity::ActiveModel {
    identity::ActiveModel {
        id: Set(identity.id.as_str().to_owned()),
        name: Set(identity.name.clone()),
        org_role: Set(identity.org_role.as_str().to_owned()),
        created_at: Set(identity.created_at),
    }
}

fn identity_record(m: identity::Model) -> Result<Identity, StoreError> {
    Ok(Identity {
        org_role: OrgRole::parse(&m.org_role).map_err(|e| corrupt("org_role", e))?,
        id: IdentityId::from_stored(m.id),
        name: m.name,
        created_at: m.created_at,
    })
}
