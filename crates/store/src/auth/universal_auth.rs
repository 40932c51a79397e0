//! Universal Auth: an identity's settings and its client secrets (hashes only).

use chrono::{DateTime, Utc};
use latchkey_domain::identity::{ClientSecret, UniversalAuthConfig};
use latchkey_domain::model::{AccessToken, IdentityId};
use latchkey_domain::token::SecretHash;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::access_tokens::identity_token_model;
use super::entity::{client_secret, universal_auth_config as ua};
use super::{AuthStore, access_settings, parse_ips};
use crate::{StoreError, to_i64, to_u64};

impl AuthStore {
    /// An identity's Universal Auth, or `None` when not attached.
    pub async fn universal_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Option<UniversalAuthConfig>, StoreError> {
        ua::Entity::find_by_id(identity_id.as_str())
            .one(&self.db)
            .await?
            .map(config_record)
            .transpose()
    }

    /// The Universal Auth a client ID names, or `None`.
    pub async fn universal_auth_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<UniversalAuthConfig>, StoreError> {
        ua::Entity::find()
            .filter(ua::Column::ClientId.eq(client_id))
            .one(&self.db)
            .await?
            .map(config_record)
            .transpose()
    }

    /// Attaches Universal Auth; [`StoreError::Conflict`] when already attached.
    pub async fn insert_universal_auth(
        &self,
        config: &UniversalAuthConfig,
    ) -> Result<(), StoreError> {
        ua::ActiveModel {
            identity_id: Set(config.identity_id.as_str().to_owned()),
            client_id: Set(config.client_id.clone()),
            client_secret_trusted_ips: Set(ips_json(&config.client_secret_trusted_ips)),
            access_token_ttl: Set(config.access.ttl_seconds),
            access_token_max_ttl: Set(config.access.max_ttl_seconds),
            access_token_num_uses_limit: Set(to_i64(config.access.num_uses_limit)),
            access_token_trusted_ips: Set(ips_json(&config.access.trusted_ips)),
            created_at: Set(config.created_at),
            updated_at: Set(config.created_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Replaces an attached Universal Auth's settings (not its client ID);
    /// false when none is attached.
    pub async fn update_universal_auth(
        &self,
        config: &UniversalAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let access = &config.access;
        let result = ua::Entity::update_many()
            .col_expr(
                ua::Column::ClientSecretTrustedIps,
                Expr::value(ips_json(&config.client_secret_trusted_ips)),
            )
            .col_expr(ua::Column::AccessTokenTtl, Expr::value(access.ttl_seconds))
            .col_expr(
                ua::Column::AccessTokenMaxTtl,
                Expr::value(access.max_ttl_seconds),
            )
            .col_expr(
                ua::Column::AccessTokenNumUsesLimit,
                Expr::value(to_i64(access.num_uses_limit)),
            )
            .col_expr(
                ua::Column::AccessTokenTrustedIps,
                Expr::value(ips_json(&access.trusted_ips)),
            )
            .col_expr(ua::Column::UpdatedAt, Expr::value(now))
            .filter(ua::Column::IdentityId.eq(config.identity_id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Removes an identity's Universal Auth and revokes its client secrets,
    /// in one transaction; false when none was attached.
    pub async fn delete_universal_auth(
        &self,
        identity_id: &IdentityId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        client_secret::Entity::update_many()
            .col_expr(client_secret::Column::RevokedAt, Expr::value(now))
            .filter(client_secret::Column::IdentityId.eq(identity_id.as_str()))
            .filter(client_secret::Column::RevokedAt.is_null())
            .exec(&*txn)
            .await?;
        let deleted = ua::Entity::delete_by_id(identity_id.as_str())
            .exec(&*txn)
            .await?
            .rows_affected
            == 1;
        txn.commit().await?;
        Ok(deleted)
    }

    /// Stores a new client secret (its hash).
    pub async fn insert_client_secret(&self, secret: &ClientSecret) -> Result<(), StoreError> {
        client_secret::ActiveModel {
            id: Set(secret.id.clone()),
            identity_id: Set(secret.identity_id.as_str().to_owned()),
            description: Set(secret.description.clone()),
            prefix: Set(secret.prefix.clone()),
            secret_hash: Set(secret.secret_hash.as_str().to_owned()),
            ttl_seconds: Set(secret.ttl_seconds),
            num_uses_limit: Set(to_i64(secret.num_uses_limit)),
            use_count: Set(0),
            last_used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(secret.created_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// An identity's client secrets not revoked, oldest first.
    pub async fn client_secrets(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<ClientSecret>, StoreError> {
        client_secret::Entity::find()
            .filter(client_secret::Column::IdentityId.eq(identity_id.as_str()))
            .filter(client_secret::Column::RevokedAt.is_null())
            .order_by_asc(client_secret::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(secret_record)
            .collect()
    }

    /// Revokes one of an identity's client secrets; false when it has no
    /// such secret (revoking twice is fine).
    pub async fn revoke_client_secret(
        &self,
        identity_id: &IdentityId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let found = client_secret::Entity::find_by_id(id)
            .filter(client_secret::Column::IdentityId.eq(identity_id.as_str()))
            .one(&self.db)
            .await?
            .is_some();
        client_secret::Entity::update_many()
            .col_expr(client_secret::Column::RevokedAt, Expr::value(now))
            .filter(client_secret::Column::Id.eq(id))
            .filter(client_secret::Column::IdentityId.eq(identity_id.as_str()))
            .filter(client_secret::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(found)
    }

    /// Logs in with client secret `secret_id`: counts the login (if it is
    /// not revoked and has a login left, at `now`) and stores `token`, in
    /// one transaction, so a secret's limit holds across concurrent logins
    /// and replicas. False when the secret had no login left.
    pub async fn log_in_with_client_secret(
        &self,
        secret_id: &str,
        now: DateTime<Utc>,
        token: &AccessToken,
    ) -> Result<bool, StoreError> {
        use client_secret::Column as C;
        let txn = self.writer.begin(&self.db).await?;
        let counted = client_secret::Entity::update_many()
            .col_expr(C::UseCount, Expr::col(C::UseCount).add(1))
            .col_expr(C::LastUsedAt, Expr::value(now))
            .filter(C::Id.eq(secret_id))
            .filter(C::RevokedAt.is_null())
            .filter(
                Condition::any()
                    .add(C::NumUsesLimit.eq(0))
                    .add(Expr::col(C::UseCount).lt(Expr::col(C::NumUsesLimit))),
            )
            .exec(&*txn)
            .await?
            .rows_affected
            == 1;
        if !counted {
            return Ok(false);
        }
        identity_token_model(token).insert(&*txn).await?;
        txn.commit().await?;
        Ok(true)
    }
}

fn ips_json(ips: &latchkey_domain::ip::TrustedIps) -> String {
    json!(ips.to_strings()).to_string()
}

fn config_record(m: ua::Model) -> Result<UniversalAuthConfig, StoreError> {
    Ok(UniversalAuthConfig {
        client_secret_trusted_ips: parse_ips(&m.client_secret_trusted_ips)?,
        access: access_settings(
            m.access_token_ttl,
            m.access_token_max_ttl,
            m.access_token_num_uses_limit,
            &m.access_token_trusted_ips,
        )?,
        identity_id: IdentityId::from_stored(m.identity_id),
        client_id: m.client_id,
        created_at: m.created_at,
    })
}

fn secret_record(m: client_secret::Model) -> Result<ClientSecret, StoreError> {
    Ok(ClientSecret {
        num_uses_limit: to_u64(m.num_uses_limit, "num_uses_limit")?,
        use_count: to_u64(m.use_count, "use_count")?,
        id: m.id,
        identity_id: IdentityId::from_stored(m.identity_id),
        description: m.description,
        prefix: m.prefix,
        secret_hash: SecretHash::new(m.secret_hash),
        ttl_seconds: m.ttl_seconds,
        last_used_at: m.last_used_at,
        revoked_at: m.revoked_at,
        created_at: m.created_at,
    })
}
