//! Token Auth access tokens: issued under an identity's settings, renewed
//! and revoked by their holders, revoked by admins.

use std::net::IpAddr;

use latchkey_domain::access::check_client_ip;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::AccessToken;
use latchkey_domain::model::{AccessTokenId, DisplayName, IdentityId};
use latchkey_domain::ports::BearerToken;
use latchkey_domain::token::{AccessClaims, AnyToken, AuthMethod, Uuid};
use latchkey_domain::ttl::{access_token_expiry, renewed_expiry, seconds_until};
use latchkey_domain::{AccessError, InvalidInput, Reason};

use super::{AuthApp, Authenticated, Caller, Freshness, admin::AdminScope, authn::invalid_token};
use crate::error::AuthError;

/// A new access token, as returned once; its `Debug` omits the token.
#[derive(Clone)]
pub struct IssuedAccessToken {
    /// The whole token.
    pub access_token: String,
    /// Its metadata.
    pub record: AccessToken,
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
    /// Issues an access token under the identity's current Token Auth; the
    /// token keeps those settings for life.
    pub async fn create_identity_access_token(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
        name: DisplayName,
    ) -> Result<IssuedAccessToken, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let config = self.load_token_auth(identity_id).await?;
        let now = self.clock.now();
        let id = AccessTokenId::generate();
        let expires_at = access_token_expiry(now, config.ttl_seconds, config.max_ttl_seconds);
        let record = AccessToken {
            id,
            identity_id: identity_id.clone(),
            name: name.into_string(),
            secret_hash: None,
            expires_at: Some(expires_at),
            revoked_at: None,
            use_count: 0,
            num_uses_limit: config.num_uses_limit,
            ttl_seconds: config.ttl_seconds,
            max_ttl_seconds: config.max_ttl_seconds,
            trusted_ips: config.trusted_ips,
            last_used_at: None,
            created_at: now,
        };
        let access_token = self.sign(&record, AuthMethod::TokenAuth)?;
        self.store.insert_identity_token(&record).await?;
        tracing::info!(token.id = %record.id, identity.id = %identity_id, "access token created");
        Ok(IssuedAccessToken {
            access_token,
            expires_in: seconds_until(expires_at, now),
            record,
        })
    }

    /// The JWT of a new token `record`, obtained by `method`.
    pub(super) fn sign(
        &self,
        record: &AccessToken,
        method: AuthMethod,
    ) -> Result<String, AuthError> {
        self.sign_claims(&claims_of(record, method)?)
    }

    pub(super) fn sign_claims(&self, claims: &AccessClaims) -> Result<String, AuthError> {
        self.access_keys
            .sign(claims)
            .map_err(|e| AuthError::internal("signing an access token", e))
    }

    /// An identity's access tokens.
    pub async fn identity_access_tokens(
        &self,
        caller: &Caller,
        identity_id: &IdentityId,
    ) -> Result<Vec<AccessToken>, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        self.load_identity(identity_id).await?;
        Ok(self.store.identity_tokens(identity_id).await?)
    }

    /// Renews a live access token to `min(now + TTL, creation + max TTL)`;
    /// returns the token to use from now on (a JWT renews to a new JWT
    /// with a fresh `exp`, the presented one lapsing at its own; an `ia.`
    /// token stays the same) with the seconds left. An expired, revoked or
    /// exhausted token fails with its reason.
    pub async fn renew_access_token(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<IssuedAccessToken, AuthError> {
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
        let access_token = match AnyToken::parse(bearer.expose())? {
            AnyToken::Jwt(jwt) => self.sign_claims(&AccessClaims {
                iat: now.timestamp(),
                exp: Some(expires_at.timestamp()),
                ..jwt.claims().clone()
            })?,
            _ => bearer.expose().to_owned(),
        };
        Ok(IssuedAccessToken {
            access_token,
            expires_in: seconds_until(expires_at, now),
            record: AccessToken {
                expires_at: Some(expires_at),
                ..token
            },
        })
    }

    /// Revokes an access token presented by its holder; revoking twice is fine.
    pub async fn revoke_own_access_token(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let it = match AnyToken::parse(bearer.expose())? {
            AnyToken::Identity(it) => it,
            AnyToken::Jwt(jwt) => {
                // The holder proves possession by the signature; expiry does not stop a revocation.
                let record = self
                    .signed_identity_token(&jwt, client_ip, Freshness::Fresh)
                    .await?;
                return self.revoke_own(&record, client_ip).await;
            }
            AnyToken::Service(_) => {
                return Err(InvalidInput::new(
                    "access_token",
                    "is a service token; delete it with DeleteServiceToken",
                )
                .into());
            }
        };
        let started = tokio::time::Instant::now();
        let record = self
            .store
            .identity_token(&AccessTokenId::from(it.id()), Freshness::Fresh)
            .await?;
        // The holder proves possession; expiry or exhaustion do not stop a revocation.
        self.verify_presented(
            started,
            bearer.expose(),
            it.id(),
            it.secret(),
            record.as_ref().and_then(|r| r.secret_hash.as_ref()),
            client_ip,
        )
        .await?;
        let record = record.ok_or_else(invalid_token)?;
        self.revoke_own(&record, client_ip).await
    }

    async fn revoke_own(
        &self,
        record: &AccessToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        // Possession is not enough: the token's trusted IPs hold for revocation too.
        check_client_ip(&record.trusted_ips, &TrustedIps::default(), client_ip)?;
        self.store.revoke_identity_token(&record.id).await?;
        tracing::info!(token.id = %record.id, "access token revoked by its holder");
        Ok(())
    }

    /// Revokes an access token by id.
    pub async fn revoke_access_token_by_id(
        &self,
        caller: &Caller,
        id: &AccessTokenId,
    ) -> Result<(), AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        if self
            .store
            .identity_token(id, Freshness::Fresh)
            .await?
            .is_none()
        {
            return Err(AuthError::NotFound(format!(
                "access token \"{id}\" not found"
            )));
        }
        self.store.revoke_identity_token(id).await?;
        tracing::info!(token.id = %id, "access token revoked");
        Ok(())
    }
}

/// The claims of a new token `record`, obtained by `method`.
pub(super) fn claims_of(
    record: &AccessToken,
    method: AuthMethod,
) -> Result<AccessClaims, AuthError> {
    let id = Uuid::parse_str(record.id.as_str())
        .map_err(|e| AuthError::internal("an access token id that is not a UUID", e))?;
    Ok(AccessClaims::new(
        record.identity_id.as_str(),
        id,
        method,
        record.created_at.timestamp(),
        record.expires_at.map(|at| at.timestamp()),
    ))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn issued_access_token_debug_omits_the_token_and_its_hash() {
        use latchkey_domain::token::IdentityTokenSecret;
        let secret = IdentityTokenSecret::generate(&mut rand::rngs::OsRng);
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let issued = IssuedAccessToken {
            access_token: secret.expose(),
            record: AccessToken {
                id: secret.id().into(),
                identity_id: IdentityId::from_stored("i".to_owned()),
                name: "n".into(),
                secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
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
