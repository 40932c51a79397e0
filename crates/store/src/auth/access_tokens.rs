//! Identity access tokens, whose use limits hold in one conditional UPDATE.

use chrono::{DateTime, Utc};
use latchkey_domain::model::{AccessToken, AccessTokenId, IdentityId};
use latchkey_domain::token::SecretHash;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::json;

use super::entity::identity_token;
use super::{AuthStore, parse_ips};
use crate::{StoreError, to_i64, to_u64};

impl AuthStore {
    /// Adds `uses` uses of an access token without a limit, the last at `last_used_at`.
    pub async fn add_identity_token_uses(
        &self,
        id: &AccessTokenId,
        uses: u64,
        last_used_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        identity_token::Entity::update_many()
            .col_expr(
                identity_token::Column::UseCount,
                Expr::col(identity_token::Column::UseCount).add(to_i64(uses)),
            )
            .col_expr(
                identity_token::Column::LastUsedAt,
                Expr::value(last_used_at),
            )
            .filter(identity_token::Column::Id.eq(id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
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

    /// Inserts an identity access token.
    pub async fn insert_identity_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        identity_token_model(token).insert(&self.db).await?;
        Ok(())
    }

    /// One identity access token, revoked ones included.
    pub async fn identity_token(
        &self,
        id: &AccessTokenId,
    ) -> Result<Option<AccessToken>, StoreError> {
        identity_token::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await?
            .map(identity_token_record)
            .transpose()
    }

    /// An identity's access tokens, revoked ones included, oldest first.
    pub async fn identity_tokens(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<AccessToken>, StoreError> {
        identity_token::Entity::find()
            .filter(identity_token::Column::IdentityId.eq(identity_id.as_str()))
            .order_by_asc(identity_token::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(identity_token_record)
            .collect()
    }

    /// Replaces an access token's stored secret hash.
    pub async fn set_identity_token_secret_hash(
        &self,
        id: &AccessTokenId,
        hash: &SecretHash,
    ) -> Result<(), StoreError> {
        identity_token::Entity::update_many()
            .col_expr(
                identity_token::Column::SecretHash,
                Expr::value(hash.as_str().to_owned()),
            )
            .filter(identity_token::Column::Id.eq(id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Revokes an access token; false when there was no live token with that id.
    pub async fn revoke_identity_token(
        &self,
        id: &AccessTokenId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = identity_token::Entity::update_many()
            .col_expr(identity_token::Column::RevokedAt, Expr::value(now))
            .filter(identity_token::Column::Id.eq(id.as_str()))
            .filter(identity_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Sets a new expiry, only while the token is live: not revoked, not
    /// expired at `now`, and with uses left. False otherwise.
    pub async fn renew_identity_token(
        &self,
        id: &AccessTokenId,
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
        id: &AccessTokenId,
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
}

/// The condition of a live access token at `now`: not revoked, not expired,
/// uses left. One definition for renewal and consumption.
fn live_identity_token(id: &AccessTokenId, now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(identity_token::Column::Id.eq(id.as_str()))
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

pub(super) fn identity_token_model(token: &AccessToken) -> identity_token::ActiveModel {
    identity_token::ActiveModel {
        id: Set(token.id.as_str().to_owned()),
        identity_id: Set(token.identity_id.as_str().to_owned()),
        name: Set(token.name.clone()),
        // Empty for a JWT: no secret, nothing to hash.
        secret_hash: Set(token
            .secret_hash
            .as_ref()
            .map_or_else(String::new, |h| h.as_str().to_owned())),
        expires_at: Set(token.expires_at),
        revoked_at: Set(token.revoked_at),
        use_count: Set(0),
        num_uses_limit: Set(to_i64(token.num_uses_limit)),
        ttl_seconds: Set(token.ttl_seconds),
        max_ttl_seconds: Set(token.max_ttl_seconds),
        trusted_ips: Set(json!(token.trusted_ips.to_strings()).to_string()),
        last_used_at: Set(None),
        created_at: Set(token.created_at),
    }
}

fn identity_token_record(m: identity_token::Model) -> Result<AccessToken, StoreError> {
    Ok(AccessToken {
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: AccessTokenId::from_stored(m.id),
        identity_id: IdentityId::from_stored(m.identity_id),
        name: m.name,
        secret_hash: (!m.secret_hash.is_empty()).then(|| SecretHash::new(m.secret_hash)),
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
