//! Kubernetes Auth: an identity's trusted service-account issuer and keys.

use chrono::{DateTime, Utc};
use latchkey_domain::identity::KubernetesAuthConfig;
use latchkey_domain::model::IdentityId;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;

use super::entity::kubernetes_auth_config as k8s;
use super::{AuthStore, access_settings};
use crate::{StoreError, corrupt, to_i64};

impl AuthStore {
    /// An identity's Kubernetes Auth, or `None` when not attached.
    pub async fn kubernetes_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Option<KubernetesAuthConfig>, StoreError> {
        k8s::Entity::find_by_id(identity_id.as_str())
            .one(&self.db)
            .await?
            .map(config_record)
            .transpose()
    }

    /// Attaches Kubernetes Auth; [`StoreError::Conflict`] when already attached.
    pub async fn insert_kubernetes_auth(
        &self,
        config: &KubernetesAuthConfig,
    ) -> Result<(), StoreError> {
        model(config, config.created_at).insert(&self.db).await?;
        Ok(())
    }

    /// Replaces an attached Kubernetes Auth; false when none is attached.
    pub async fn update_kubernetes_auth(
        &self,
        config: &KubernetesAuthConfig,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut row = model(config, now);
        row.created_at = sea_orm::ActiveValue::NotSet;
        match row.update(&self.db).await {
            Ok(_) => Ok(true),
            Err(sea_orm::DbErr::RecordNotUpdated) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes an identity's Kubernetes Auth; false when none was attached.
    pub async fn delete_kubernetes_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<bool, StoreError> {
        Ok(k8s::Entity::delete_by_id(identity_id.as_str())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }
}

fn model(config: &KubernetesAuthConfig, updated_at: DateTime<Utc>) -> k8s::ActiveModel {
    let access = &config.access;
    k8s::ActiveModel {
        identity_id: Set(config.identity_id.as_str().to_owned()),
        issuer: Set(config.issuer.clone()),
        keys: Set(config.keys.clone()),
        allowed_audiences: Set(json!(config.allowed_audiences).to_string()),
        allowed_namespaces: Set(json!(config.allowed_namespaces).to_string()),
        allowed_names: Set(json!(config.allowed_names).to_string()),
        access_token_ttl: Set(access.ttl_seconds),
        access_token_max_ttl: Set(access.max_ttl_seconds),
        access_token_num_uses_limit: Set(to_i64(access.num_uses_limit)),
        access_token_trusted_ips: Set(json!(access.trusted_ips.to_strings()).to_string()),
        created_at: Set(config.created_at),
        updated_at: Set(updated_at),
    }
}

fn list(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn config_record(m: k8s::Model) -> Result<KubernetesAuthConfig, StoreError> {
    Ok(KubernetesAuthConfig {
        allowed_audiences: list(&m.allowed_audiences, "allowed_audiences")?,
        allowed_namespaces: list(&m.allowed_namespaces, "allowed_namespaces")?,
        allowed_names: list(&m.allowed_names, "allowed_names")?,
        access: access_settings(
            m.access_token_ttl,
            m.access_token_max_ttl,
            m.access_token_num_uses_limit,
            &m.access_token_trusted_ips,
        )?,
        identity_id: IdentityId::from_stored(m.identity_id),
        issuer: m.issuer,
        keys: m.keys,
        created_at: m.created_at,
    })
}
