//! Machine identities: Token Auth, access tokens, project memberships, and
//! how an identity's call is authorised.

use std::net::IpAddr;

use latchkey_domain::access::{check_client_ip, check_raw_allowed, check_scoped_access};
use latchkey_domain::identity::{OrgRole, ProjectRole, TokenAuthConfig};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::ports::{AuthorizationRequest, BearerToken, Grant};
use latchkey_domain::scope::Scopes;
use latchkey_domain::token::{AnyToken, IdentityTokenSecret};
use latchkey_domain::ttl::{access_token_expiry, renewed_expiry, seconds_until};
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_store::StoreError;
use latchkey_store::auth::{IdentityRecord, IdentityTokenRecord, MembershipRecord};

use super::{
    Admin, AuthApp, Authenticated, Freshness, check_environments_exist, display_name, hash,
    invalid_token, target,
};
use crate::error::AuthError;

/// Token Auth fields to change; `None` and an empty list leave a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigChanges<'a> {
    /// `access_token_ttl`.
    pub ttl: Option<i64>,
    /// `access_token_max_ttl`.
    pub max_ttl: Option<i64>,
    /// `access_token_num_uses_limit`.
    pub num_uses_limit: Option<i64>,
    /// `access_token_trusted_ips`.
    pub trusted_ips: &'a [String],
}

impl ConfigChanges<'_> {
    fn apply(&self, base: &TokenAuthConfig) -> Result<TokenAuthConfig, InvalidInput> {
        base.with_changes(
            self.ttl,
            self.max_ttl,
            self.num_uses_limit,
            self.trusted_ips,
        )
    }
}

/// A new access token, as returned once; its `Debug` omits the token.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The whole token.
    pub access_token: String,
    /// Its metadata.
    pub record: IdentityTokenRecord,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl std::fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("record", &self.record)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl AuthApp {
    pub(super) async fn authorize_identity(
        &self,
        token: IdentityTokenRecord,
        identity: IdentityRecord,
        req: &AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        let project_id = req.project_id.as_deref().ok_or_else(|| {
            InvalidInput::new(
                "project_id",
                "is required with an identity access token (service tokens know their project)",
            )
        })?;
        // The token's own IPs, then membership, before anything tells
        // whether the project exists.
        check_client_ip(&token.trusted_ips, &TrustedIps::default(), req.client_ip)?;
        let membership = self
            .store
            .membership(project_id, &identity.id, Freshness::Cached)
            .await?
            .ok_or_else(|| {
                AccessError::new(
                    Reason::PermissionDenied,
                    format!(
                        "identity {} is not a member of project {project_id}; an admin can add it with AddIdentityToProject",
                        identity.id
                    ),
                )
            })?;
        let project = self.project_as(project_id, Freshness::Cached).await?;
        check_client_ip(&token.trusted_ips, &project.trusted_ips, req.client_ip)?;
        let scopes = match membership.scopes {
            Some(scopes) => scopes,
            // An unscoped membership covers the project's environments, not any slug.
            None if project
                .environments
                .iter()
                .any(|(e, _)| *e == req.environment) =>
            {
                Scopes::everything_in(&req.environment)
            }
            None => {
                return Err(AccessError::new(
                    Reason::ScopeDenied,
                    format!(
                        "environment {:?} does not exist in project {}",
                        req.environment.as_str(),
                        project.id
                    ),
                )
                .into());
            }
        };
        check_scoped_access(&scopes, membership.role.permissions(), target(req))?;
        check_raw_allowed(req.raw, project.e2ee)?;
        self.consume_identity_use(&token).await?;
        self.count_write(&project, req.action).await?;
        Ok(Grant {
            principal: format!("identity:{}", identity.id),
            project_key: self.raw_key(&project, req.raw)?,
            project_id: project.id,
            scopes,
            encrypted_project_key: None,
        })
    }

    /// Creates an identity.
    pub async fn create_identity(
        &self,
        name: &str,
        org_role: OrgRole,
    ) -> Result<IdentityRecord, AuthError> {
        let identity = IdentityRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: display_name(name, "name")?,
            org_role,
            created_at: self.clock.now(),
        };
        self.store.insert_identity(&identity).await?;
        tracing::info!(identity.id = %identity.id, org_role = org_role.as_str(), "identity created");
        Ok(identity)
    }

    /// Every identity.
    pub async fn identities(&self) -> Result<Vec<IdentityRecord>, AuthError> {
        Ok(self.store.identities().await?)
    }

    /// One identity, or `NOT_FOUND`.
    pub async fn identity(&self, id: &str) -> Result<IdentityRecord, AuthError> {
        self.store
            .identity(id, Freshness::Fresh)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("identity {id:?} not found")))
    }

    /// Deletes an identity and revokes its tokens; an identity cannot delete itself.
    pub async fn delete_identity(
        &self,
        caller: &IdentityRecord,
        id: &str,
    ) -> Result<(), AuthError> {
        if caller.id == id {
            return Err(InvalidInput::new(
                "identity_id",
                "is the identity making this call; delete it with another admin's token",
            )
            .into());
        }
        let deleted = self.store.delete_identity(id).await?;
        if !deleted {
            return Err(AuthError::NotFound(format!("identity {id:?} not found")));
        }
        tracing::info!(identity.id = %id, "identity deleted; its tokens are revoked");
        Ok(())
    }

    /// Attaches Token Auth with `changes` over the defaults.
    pub async fn attach_token_auth(
        &self,
        identity_id: &str,
        changes: ConfigChanges<'_>,
    ) -> Result<TokenAuthConfig, AuthError> {
        self.identity(identity_id).await?;
        let config = changes.apply(&TokenAuthConfig::defaults())?;
        self.store
            .insert_token_auth_config(identity_id, &config)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AuthError::Conflict(format!(
                    "Token Auth is already attached to identity {identity_id}; change it with UpdateTokenAuth"
                )),
                other => other.into(),
            })?;
        Ok(config)
    }

    /// Changes Token Auth; tokens already issued keep the settings they were issued under.
    pub async fn update_token_auth(
        &self,
        identity_id: &str,
        changes: ConfigChanges<'_>,
    ) -> Result<TokenAuthConfig, AuthError> {
        let config = changes.apply(&self.token_auth(identity_id).await?)?;
        if !self
            .store
            .update_token_auth_config(identity_id, &config)
            .await?
        {
            return Err(no_token_auth(identity_id));
        }
        Ok(config)
    }

    /// An identity's Token Auth, or `NOT_FOUND`.
    pub async fn token_auth(&self, identity_id: &str) -> Result<TokenAuthConfig, AuthError> {
        self.identity(identity_id).await?;
        self.store
            .token_auth_config(identity_id)
            .await?
            .ok_or_else(|| no_token_auth(identity_id))
    }

    /// Issues an access token under the identity's current Token Auth; the
    /// token keeps those settings for life.
    pub async fn create_identity_access_token(
        &self,
        identity_id: &str,
        name: &str,
    ) -> Result<IssuedAccessToken, AuthError> {
        let config = self.token_auth(identity_id).await?;
        let now = self.clock.now();
        let token = IdentityTokenSecret::generate(&mut rand::rngs::OsRng);
        let expires_at = access_token_expiry(now, config.ttl_seconds, config.max_ttl_seconds);
        let record = IdentityTokenRecord {
            id: token.id().to_string(),
            identity_id: identity_id.to_owned(),
            name: if name.trim().is_empty() {
                "Access token".to_owned()
            } else {
                display_name(name, "name")?
            },
            secret_hash: hash(token.secret()).await?,
            expires_at: Some(expires_at),
            revoked_at: None,
            use_count: 0,
            num_uses_limit: u64::try_from(config.num_uses_limit).map_err(|_| {
                AuthError::Internal(format!(
                    "Token Auth of {identity_id} has a negative use limit"
                ))
            })?,
            ttl_seconds: config.ttl_seconds,
            max_ttl_seconds: config.max_ttl_seconds,
            trusted_ips: config.trusted_ips,
            last_used_at: None,
            created_at: now,
        };
        self.store.insert_identity_token(&record).await?;
        tracing::info!(token.id = %record.id, identity.id = %identity_id, "access token created");
        Ok(IssuedAccessToken {
            access_token: token.expose(),
            expires_in: seconds_until(expires_at, now),
            record,
        })
    }

    /// An identity's access tokens.
    pub async fn identity_access_tokens(
        &self,
        identity_id: &str,
    ) -> Result<Vec<IdentityTokenRecord>, AuthError> {
        self.identity(identity_id).await?;
        Ok(self.store.identity_tokens(identity_id).await?)
    }

    /// Renews a live access token to `min(now + TTL, creation + max TTL)`;
    /// returns it with the seconds left. An expired, revoked or exhausted
    /// token fails with its reason.
    pub async fn renew_access_token(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(IdentityTokenRecord, i64), AuthError> {
        let token = match self
            .authenticate(bearer, client_ip, Freshness::Fresh)
            .await?
        {
            Authenticated::Identity { token, .. } => token,
            Authenticated::Service { .. } => {
                return Err(InvalidInput::new(
                    "access_token",
                    "is a service token; only identity access tokens renew",
                )
                .into());
            }
        };
        check_client_ip(&token.trusted_ips, &TrustedIps::default(), client_ip)?;
        let now = self.clock.now();
        let expires_at = renewed_expiry(
            now,
            token.created_at,
            token.ttl_seconds,
            token.max_ttl_seconds,
        );
        if expires_at <= now {
            return Err(AccessError::new(
                Reason::TokenExpired,
                "the token reached its max TTL and cannot be renewed; create a new access token",
            )
            .into());
        }
        let renewed = self
            .store
            .renew_identity_token(&token.id, expires_at)
            .await?;
        if !renewed {
            // Lost a race with expiry, revocation or the last use: say which.
            return self.denial_for(&token.id).await;
        }
        tracing::info!(token.id = %token.id, "access token renewed");
        let expires_in = seconds_until(expires_at, now);
        Ok((
            IdentityTokenRecord {
                expires_at: Some(expires_at),
                ..token
            },
            expires_in,
        ))
    }

    /// Revokes an access token presented by its holder; revoking twice is fine.
    pub async fn revoke_own_access_token(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let AnyToken::Identity(it) = AnyToken::parse(bearer.expose())? else {
            return Err(InvalidInput::new(
                "access_token",
                "is a service token; delete it with DeleteServiceToken",
            )
            .into());
        };
        let record = self
            .store
            .identity_token(&it.id().to_string(), Freshness::Fresh)
            .await?;
        // The holder proves possession; expiry or exhaustion do not stop a revocation.
        self.verify_presented(
            bearer.expose(),
            it.id(),
            it.secret(),
            record.as_ref().map(|r| &r.secret_hash),
            client_ip,
        )
        .await?;
        let record = record.ok_or_else(invalid_token)?;
        // Possession is not enough: the token's trusted IPs hold for revocation too.
        check_client_ip(&record.trusted_ips, &TrustedIps::default(), client_ip)?;
        self.store.revoke_identity_token(&record.id).await?;
        tracing::info!(token.id = %record.id, "access token revoked by its holder");
        Ok(())
    }

    /// Revokes an access token by id.
    pub async fn revoke_access_token_by_id(&self, id: &str) -> Result<(), AuthError> {
        if self
            .store
            .identity_token(id, Freshness::Fresh)
            .await?
            .is_none()
        {
            return Err(AuthError::NotFound(format!(
                "access token {id:?} not found"
            )));
        }
        self.store.revoke_identity_token(id).await?;
        tracing::info!(token.id = %id, "access token revoked");
        Ok(())
    }

    /// Gives an identity a role in a project, optionally narrowed by scopes.
    pub async fn add_identity_to_project(
        &self,
        admin: &Admin,
        project_id: &str,
        identity_id: &str,
        role: ProjectRole,
        scopes: Option<Scopes>,
    ) -> Result<MembershipRecord, AuthError> {
        match &scopes {
            None => admin.require_unscoped("an unscoped membership")?,
            Some(scopes) => admin.require_covers(scopes, "the membership's scopes")?,
        }
        let project = self.project(project_id).await?;
        self.identity(identity_id).await?;
        if let Some(scopes) = &scopes {
            check_environments_exist(&project, scopes)?;
        }
        let record = MembershipRecord {
            project_id: project.id,
            identity_id: identity_id.to_owned(),
            role,
            scopes,
            created_at: self.clock.now(),
        };
        self.store.insert_membership(&record).await.map_err(|e| match e {
            StoreError::Conflict(_) => AuthError::Conflict(format!(
                "identity {identity_id} is already a member of project {project_id}; remove it first to change its role"
            )),
            other => other.into(),
        })?;
        Ok(record)
    }

    /// Removes an identity from a project.
    pub async fn remove_identity_from_project(
        &self,
        admin: &Admin,
        project_id: &str,
        identity_id: &str,
    ) -> Result<(), AuthError> {
        if admin.scopes().is_some()
            && let Some(membership) = self
                .store
                .membership(project_id, identity_id, Freshness::Fresh)
                .await?
        {
            match &membership.scopes {
                None => admin.require_unscoped("removing an unscoped membership")?,
                Some(scopes) => admin.require_covers(scopes, "the membership's scopes")?,
            }
        }
        let removed = self
            .store
            .delete_membership(project_id, identity_id)
            .await?;
        if !removed {
            return Err(AuthError::NotFound(format!(
                "identity {identity_id:?} is not a member of project {project_id:?}"
            )));
        }
        Ok(())
    }
}

fn no_token_auth(identity_id: &str) -> AuthError {
    AuthError::NotFound(format!(
        "identity {identity_id} has no Token Auth; attach it with AttachTokenAuth"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn issued_access_token_debug_omits_the_token_and_its_hash() {
        let secret = IdentityTokenSecret::generate(&mut rand::rngs::OsRng);
        let now = chrono::Utc::now();
        let issued = IssuedAccessToken {
            access_token: secret.expose(),
            record: IdentityTokenRecord {
                id: secret.id().to_string(),
                identity_id: "i".into(),
                name: "n".into(),
                secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
                expires_at: None,
                revoked_at: None,
                use_count: 0,
                num_uses_limit: 0,
                ttl_seconds: 60,
                max_ttl_seconds: 60,
                trusted_ips: TrustedIps::default(),
                last_used_at: None,
                created_at: now,
            },
            expires_in: 60,
        };
        let debug = format!("{issued:?}");
        assert!(debug.contains(&secret.id().to_string()), "{debug}");
        assert!(!debug.contains(secret.secret()), "{debug}");
        assert!(!debug.contains("aGFzaGhhc2g"), "{debug}");
    }
}
