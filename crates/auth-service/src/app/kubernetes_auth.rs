//! Kubernetes Auth: org admins trust a cluster's service-account issuer
//! for an identity; a workload trades its projected service-account JWT
//! for an access token.

use std::net::IpAddr;

use latchkey_domain::Reason;
use latchkey_domain::identity::{
    KubernetesAuthChanges, KubernetesAuthConfig, ServiceAccountKeys, TokenAuthConfig,
};
use latchkey_domain::model::{AccessToken, AccessTokenId, IdentityId};
use latchkey_domain::token::AuthMethod;
use latchkey_domain::token::jwt::IdentityAuth;
use latchkey_domain::ttl::{access_token_expiry, seconds_until};

use super::access_tokens::{IssuedAccessToken, claims_of};
use super::{AuthApp, Caller, admin::AdminScope};
use crate::error::AuthError;

impl AuthApp {
    /// Attaches Kubernetes Auth with `changes` (an issuer and keys required)
    /// over the defaults.
    pub async fn attach_kubernetes_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &KubernetesAuthChanges,
    ) -> Result<KubernetesAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        let defaults = KubernetesAuthConfig {
            identity_id: identity_id.clone(),
            issuer: String::new(),
            keys: String::new(),
            allowed_audiences: Vec::new(),
            allowed_namespaces: Vec::new(),
            allowed_names: Vec::new(),
            access: TokenAuthConfig::defaults(),
            created_at: self.clock.now(),
        };
        let config = defaults.apply(changes)?;
        self.store
            .uncached()
            .insert_kubernetes_auth(&config)
            .await
            .map_err(|e| AuthError::conflict_or(e, || format!("Kubernetes Auth is already attached to identity {identity_id}; change it with UpdateKubernetesAuth")))?;
        tracing::info!(identity.id = %identity_id, "kubernetes auth attached");
        Ok(config)
    }

    /// Changes Kubernetes Auth; logins afterwards use the new settings.
    pub async fn update_kubernetes_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &KubernetesAuthChanges,
    ) -> Result<KubernetesAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let config = self
            .load_kubernetes_auth(identity_id)
            .await?
            .apply(changes)?;
        if !self
            .store
            .uncached()
            .update_kubernetes_auth(&config, self.clock.now())
            .await?
        {
            return Err(no_kubernetes_auth(identity_id));
        }
        Ok(config)
    }

    /// An identity's Kubernetes Auth, to org admins; or `NOT_FOUND`.
    pub async fn kubernetes_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<KubernetesAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_kubernetes_auth(identity_id).await
    }

    /// Removes Kubernetes Auth; the access tokens it issued live on.
    pub async fn revoke_kubernetes_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<(), AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        if !self
            .store
            .uncached()
            .delete_kubernetes_auth(identity_id)
            .await?
        {
            return Err(no_kubernetes_auth(identity_id));
        }
        tracing::info!(identity.id = %identity_id, "kubernetes auth removed");
        Ok(())
    }

    /// Trades a projected service-account `jwt` for an access token of
    /// `identity_id`. The JWT is checked here, against the identity's
    /// issuer and keys; a forged or foreign one costs a signature check and
    /// spends `client_ip`'s failure budget.
    pub async fn login_kubernetes_auth(
        &self,
        identity_id: &str,
        jwt: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(IdentityId, IssuedAccessToken), AuthError> {
        let identity_id = IdentityId::parse(identity_id, "identity_id")?;
        let now = self.clock.now();
        let config = self
            .store
            .uncached()
            .kubernetes_auth(&identity_id)
            .await?
            .ok_or_else(|| no_kubernetes_auth(&identity_id))?;
        let keys = ServiceAccountKeys::parse(&config.keys)?;
        let subject = match keys.verify(&config, jwt, now.timestamp()) {
            Ok(subject) => subject,
            Err(e) => {
                if matches!(e.reason, Reason::TokenInvalid | Reason::TokenMalformed) {
                    self.failures.cheap_failure(client_ip, now)?;
                }
                return Err(e.into());
            }
        };
        // The config is deleted with its identity: no identity read here; a
        // token issued in a race with the deletion is refused at its first use.
        let access = &config.access;
        let expires_at = access_token_expiry(now, access.ttl_seconds, access.max_ttl_seconds);
        let record = AccessToken {
            id: AccessTokenId::generate(),
            identity_id: identity_id.clone(),
            name: format!("kubernetes-auth {}/{}", subject.namespace, subject.name),
            secret_hash: None,
            expires_at: Some(expires_at),
            revoked_at: None,
            use_count: 0,
            num_uses_limit: access.num_uses_limit,
            ttl_seconds: access.ttl_seconds,
            max_ttl_seconds: access.max_ttl_seconds,
            trusted_ips: access.trusted_ips.clone(),
            last_used_at: None,
            created_at: now,
        };
        let mut claims = claims_of(&record, AuthMethod::KubernetesAuth)?;
        claims.identity_auth = IdentityAuth {
            kubernetes: Some(subject.clone()),
        };
        let access_token = self.sign_claims(&claims)?;
        self.store.insert_identity_token(&record).await?;
        tracing::info!(identity.id = %identity_id, token.id = %record.id, k8s.namespace = %subject.namespace, k8s.service_account = %subject.name, "kubernetes auth login");
        Ok((
            identity_id,
            IssuedAccessToken {
                access_token,
                expires_in: seconds_until(expires_at, now),
                record,
            },
        ))
    }

    /// An identity's Kubernetes Auth, or `NOT_FOUND`, deciding nothing.
    async fn load_kubernetes_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<KubernetesAuthConfig, AuthError> {
        self.load_identity(identity_id).await?;
        self.store
            .uncached()
            .kubernetes_auth(identity_id)
            .await?
            .ok_or_else(|| no_kubernetes_auth(identity_id))
    }
}

fn no_kubernetes_auth(identity_id: &IdentityId) -> AuthError {
    AuthError::NotFound(format!(
        "identity {identity_id} has no Kubernetes Auth; attach it with AttachKubernetesAuth"
    ))
}
