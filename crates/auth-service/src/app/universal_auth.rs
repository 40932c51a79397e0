//! Universal Auth: org admins attach it and create client secrets; a
//! workload trades its client ID and a client secret for an access token.

use std::net::IpAddr;

use latchkey_domain::access::check_client_ip;
use latchkey_domain::identity::universal_auth::{
    MAX_CLIENT_SECRETS, default_client_secret_trusted_ips, parse_client_id,
};
use latchkey_domain::identity::{
    ClientSecret, ClientSecretTerms, ClientSecretValue, TokenAuthConfig, UniversalAuthChanges,
    UniversalAuthConfig,
};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{AccessToken, AccessTokenId, IdentityId};
use latchkey_domain::token::{AuthMethod, Precheck, Uuid};
use latchkey_domain::ttl::{access_token_expiry, seconds_until};
use latchkey_domain::{AccessError, InvalidInput, Reason};

use super::access_tokens::{IssuedAccessToken, claims_of};
use super::{AuthApp, Caller, admin::AdminScope, authn::invalid_token};
use crate::error::AuthError;

/// A new client secret, as returned once; its `Debug` omits the secret.
#[derive(Clone)]
pub struct IssuedClientSecret {
    /// The secret.
    pub secret: ClientSecretValue,
    /// What is kept of it.
    pub record: ClientSecret,
}

impl std::fmt::Debug for IssuedClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedClientSecret")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl AuthApp {
    /// Attaches Universal Auth with `changes` over the defaults and a new client ID.
    pub async fn attach_universal_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &UniversalAuthChanges,
    ) -> Result<UniversalAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        let defaults = UniversalAuthConfig {
            identity_id: identity_id.clone(),
            client_id: Uuid::new_v4().to_string(),
            client_secret_trusted_ips: default_client_secret_trusted_ips(),
            access: TokenAuthConfig::defaults(),
            created_at: self.clock.now(),
        };
        let config = defaults.apply(changes)?;
        self.store
            .uncached()
            .insert_universal_auth(&config)
            .await
            .map_err(|e| AuthError::conflict_or(e, || format!("Universal Auth is already attached to identity {identity_id}; change it with UpdateUniversalAuth")))?;
        tracing::info!(identity.id = %identity_id, "universal auth attached");
        Ok(config)
    }

    /// Changes Universal Auth; logins afterwards use the new settings.
    pub async fn update_universal_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        changes: &UniversalAuthChanges,
    ) -> Result<UniversalAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let config = self
            .load_universal_auth(identity_id)
            .await?
            .apply(changes)?;
        if !self
            .store
            .uncached()
            .update_universal_auth(&config, self.clock.now())
            .await?
        {
            return Err(no_universal_auth(identity_id));
        }
        Ok(config)
    }

    /// An identity's Universal Auth, to org admins; or `NOT_FOUND`.
    pub async fn universal_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<UniversalAuthConfig, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_universal_auth(identity_id).await
    }

    /// Removes Universal Auth and revokes its client secrets; the access
    /// tokens it issued live on until revoked or expired.
    pub async fn revoke_universal_auth(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<(), AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        if !self
            .store
            .uncached()
            .delete_universal_auth(identity_id, self.clock.now())
            .await?
        {
            return Err(no_universal_auth(identity_id));
        }
        tracing::info!(identity.id = %identity_id, "universal auth removed; its client secrets are revoked");
        Ok(())
    }

    /// Creates a client secret under `terms`, returned once.
    pub async fn create_client_secret(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        terms: ClientSecretTerms,
    ) -> Result<IssuedClientSecret, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_universal_auth(identity_id).await?;
        let live = self.store.uncached().client_secrets(identity_id).await?;
        if live.len() >= MAX_CLIENT_SECRETS {
            return Err(InvalidInput::new(
                "identity_id",
                format!(
                    "the identity has {MAX_CLIENT_SECRETS} client secrets, the most it may hold; revoke one first"
                ),
            )
            .into());
        }
        let secret = ClientSecretValue::generate(&mut rand::rngs::OsRng);
        let record = ClientSecret {
            id: Uuid::new_v4().to_string(),
            identity_id: identity_id.clone(),
            description: terms.description,
            prefix: secret.prefix().to_owned(),
            secret_hash: self.hash(secret.expose()).await?,
            ttl_seconds: terms.ttl_seconds,
            num_uses_limit: terms.num_uses_limit,
            use_count: 0,
            last_used_at: None,
            revoked_at: None,
            created_at: self.clock.now(),
        };
        self.store.uncached().insert_client_secret(&record).await?;
        tracing::info!(identity.id = %identity_id, client_secret.id = %record.id, "client secret created");
        Ok(IssuedClientSecret { secret, record })
    }

    /// An identity's client secrets not revoked.
    pub async fn client_secrets(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<Vec<ClientSecret>, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_universal_auth(identity_id).await?;
        Ok(self.store.uncached().client_secrets(identity_id).await?)
    }

    /// Revokes a client secret: logins with it are refused from then on,
    /// on every replica (logins read secrets from the database).
    pub async fn revoke_client_secret(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        secret_id: &str,
    ) -> Result<(), AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        if !self
            .store
            .uncached()
            .revoke_client_secret(identity_id, secret_id.trim(), self.clock.now())
            .await?
        {
            return Err(AuthError::NotFound(format!(
                "identity {identity_id} has no client secret \"{}\"",
                secret_id.trim()
            )));
        }
        tracing::info!(identity.id = %identity_id, client_secret.id = %secret_id.trim(), "client secret revoked");
        Ok(())
    }

    /// Trades a client ID and client secret for an access token. An
    /// unknown client ID and a wrong secret are the same `TOKEN_INVALID`,
    /// at the same cost; a wrong secret costs one HMAC per live secret and
    /// spends only `client_ip`'s failure budget, so knowing a client ID
    /// gives no power over its secrets. A secret that matched but may not
    /// log in (expired, used up) says so.
    pub async fn login_universal_auth(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(IdentityId, IssuedAccessToken), AuthError> {
        let started = tokio::time::Instant::now();
        let client_id = parse_client_id(client_id)?;
        let secret = ClientSecretValue::parse(client_secret)?;
        let config = self
            .store
            .uncached()
            .universal_auth_by_client_id(&client_id)
            .await?;
        let secrets = match &config {
            Some(c) => self.store.uncached().client_secrets(&c.identity_id).await?,
            None => Vec::new(),
        };
        // The one live secret whose fingerprint this secret matches, if any.
        let candidate = secrets.iter().find(|s| {
            self.fingerprints.check(secret.expose(), &s.secret_hash) != Precheck::Mismatch
        });
        let id = candidate
            .and_then(|s| Uuid::parse_str(&s.id).ok())
            .unwrap_or_default();
        // The verification cache keys on the client ID and the secret.
        let raw = format!("ua.{client_id}.{}", secret.expose());
        self.verify_presented(
            started,
            &raw,
            id,
            secret.expose(),
            candidate.map(|s| &s.secret_hash),
            client_ip,
        )
        .await?;
        let (Some(config), Some(matched)) = (config, candidate) else {
            return Err(invalid_token().into());
        };
        let now = self.clock.now();
        matched.check_usable(now)?;
        check_client_ip(
            &config.client_secret_trusted_ips,
            &TrustedIps::default(),
            client_ip,
        )?;
        // The config is deleted with its identity: no identity read here; a
        // token issued in a race with the deletion is refused at its first use.
        let access = &config.access;
        let expires_at = access_token_expiry(now, access.ttl_seconds, access.max_ttl_seconds);
        let record = AccessToken {
            id: AccessTokenId::generate(),
            identity_id: config.identity_id.clone(),
            name: format!("universal-auth {}", matched.prefix),
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
        let mut claims = claims_of(&record, AuthMethod::UniversalAuth)?;
        claims.client_secret_id.clone_from(&matched.id);
        let access_token = self.sign_claims(&claims)?;
        if !self
            .store
            .uncached()
            .log_in_with_client_secret(&matched.id, now, &record)
            .await?
        {
            // Lost a race with its last login or its revocation.
            return Err(AccessError::new(
                Reason::TokenUsesExhausted,
                "the client secret has no login left (used up or revoked meanwhile); ask an admin for a new one",
            )
            .into());
        }
        tracing::info!(identity.id = %config.identity_id, token.id = %record.id, client_secret.id = %matched.id, "universal auth login");
        Ok((
            config.identity_id,
            IssuedAccessToken {
                access_token,
                expires_in: seconds_until(expires_at, now),
                record,
            },
        ))
    }

    /// An identity's Universal Auth, or `NOT_FOUND`, deciding nothing.
    async fn load_universal_auth(
        &self,
        identity_id: &IdentityId,
    ) -> Result<UniversalAuthConfig, AuthError> {
        self.load_identity(identity_id).await?;
        self.store
            .uncached()
            .universal_auth(identity_id)
            .await?
            .ok_or_else(|| no_universal_auth(identity_id))
    }
}

fn no_universal_auth(identity_id: &IdentityId) -> AuthError {
    AuthError::NotFound(format!(
        "identity {identity_id} has no Universal Auth; attach it with AttachUniversalAuth"
    ))
}
