//! Who is calling: verifying a presented token (argon2id behind the
//! verifier's cache and the failure limits) and checking it is live.

use std::sync::atomic::{AtomicBool, Ordering};

use latchkey_domain::model::{AccessToken, AccessTokenId, Principal, ServiceTokenId};
use std::net::IpAddr;

use latchkey_domain::access::{check_client_ip, check_token_state};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::ports::BearerToken;
use latchkey_domain::token::jwt::check_exp;
use latchkey_domain::token::{AccessJwt, AnyToken, Precheck, SecretHash};
use latchkey_domain::{AccessError, Reason};

use super::{AuthApp, Authenticated, Caller, Freshness, Lookup};
use crate::error::AuthError;

impl AuthApp {
    /// Verifies a token and checks it is live (not revoked, expired,
    /// exhausted or deactivated). Unknown ids and wrong secrets are the same
    /// `TOKEN_INVALID`; failures count against the token id and `client_ip`.
    pub async fn authenticate(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
        freshness: Freshness,
    ) -> Result<Authenticated, AuthError> {
        let raw = bearer.expose();
        let started = tokio::time::Instant::now();
        match AnyToken::parse(raw)? {
            AnyToken::Service(st) => {
                let record = self
                    .store
                    .service_token(&ServiceTokenId::from(st.id()), freshness)
                    .await?;
                let hash = record.as_ref().map(|r| &r.secret_hash);
                let resealed = self
                    .verify_presented(started, raw, st.id(), st.secret(), hash, client_ip)
                    .await?;
                let record = record.ok_or_else(invalid_token)?;
                if let Some(hash) = resealed {
                    self.store
                        .set_service_token_secret_hash(&record.id, &hash)
                        .await
                        .unwrap_or_else(|e| tracing::warn!(token.id = %record.id, error = %e, "storing the secret's fingerprint failed; retried at the next verification"));
                }
                // Verified: a dead token's denial names whose it is.
                check_token_state(record.state(), self.clock.now()).map_err(|e| {
                    e.about(
                        Principal::ServiceToken(record.id.clone()),
                        Some(record.project_id.clone()),
                    )
                })?;
                // Whether the holder's key part opens `encrypted_project_key` is
                // the client's check: the key part never reaches this service.
                Ok(Authenticated::Service { token: record })
            }
            AnyToken::Identity(it) => {
                // A JWT's row has no hash: as an `ia.` token its id is unknown.
                let record = self
                    .store
                    .identity_token(&AccessTokenId::from(it.id()), freshness)
                    .await?
                    .filter(|r| r.secret_hash.is_some());
                let hash = record.as_ref().and_then(|r| r.secret_hash.as_ref());
                let resealed = self
                    .verify_presented(started, raw, it.id(), it.secret(), hash, client_ip)
                    .await?;
                let record = record.ok_or_else(invalid_token)?;
                if let Some(hash) = resealed {
                    self.store
                        .set_identity_token_secret_hash(&record.id, &hash)
                        .await
                        .unwrap_or_else(|e| tracing::warn!(token.id = %record.id, error = %e, "storing the secret's fingerprint failed; retried at the next verification"));
                }
                self.live_identity_token(record, freshness).await
            }
            AnyToken::Jwt(jwt) => {
                let record = self
                    .signed_identity_token(&jwt, client_ip, freshness)
                    .await?;
                let live = self.live_identity_token(record, freshness).await?;
                // The row lives on past this copy's `exp` only when renewed.
                check_exp(&jwt, self.clock.now().timestamp())
                    .map_err(|e| e.about(live.principal(), None))?;
                Ok(live)
            }
        }
    }

    /// The row of a JWT access token whose signature holds. A wrong
    /// signature costs one HMAC and spends only `client_ip`'s budget; a
    /// signed token whose row is gone was deleted.
    pub(super) async fn signed_identity_token(
        &self,
        jwt: &AccessJwt,
        client_ip: Option<IpAddr>,
        freshness: Freshness,
    ) -> Result<AccessToken, AuthError> {
        if let Err(e) = self.access_keys.verify_signature(jwt) {
            self.failures.cheap_failure(client_ip, self.clock.now())?;
            record_failure(false);
            return Err(e.into());
        }
        let record = self
            .store
            .identity_token(&AccessTokenId::from(jwt.id()), freshness)
            .await?
            .filter(|r| r.identity_id.as_str() == jwt.claims().identity_id)
            .ok_or_else(|| {
                AccessError::new(Reason::TokenRevoked, "the access token was deleted")
            })?;
        Ok(record)
    }

    /// A verified identity token, if it and its identity are live.
    async fn live_identity_token(
        &self,
        record: AccessToken,
        freshness: Freshness,
    ) -> Result<Authenticated, AuthError> {
        check_token_state(record.state(), self.clock.now())
            .map_err(|e| e.about(Principal::Identity(record.identity_id.clone()), None))?;
        let identity = self
            .store
            .identity(&record.identity_id, freshness)
            .await?
            .ok_or_else(|| {
                AccessError::new(Reason::TokenRevoked, "the token's identity was deleted")
            })?;
        Ok(Authenticated::Identity {
            token: record,
            identity,
        })
    }

    /// Authenticates an admin call's token: an identity access token, live,
    /// from one of its trusted IPs. Authorises nothing yet.
    pub async fn caller(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        let (token, identity) = match self
            .authenticate(bearer, client_ip, Freshness::Fresh)
            .await?
        {
            Authenticated::Identity { token, identity } => (token, identity),
            Authenticated::Service { .. } => {
                return Err(AccessError::new(
                    Reason::PermissionDenied,
                    "service tokens only read and write secrets; this call needs an admin identity's token \
                     (see the admin token file the auth service wrote on first start)",
                )
                .into());
            }
        };
        check_client_ip(&token.trusted_ips, &TrustedIps::default(), client_ip)?;
        Ok(Caller {
            token,
            identity,
            client_ip,
        })
    }

    /// Checks a presented secret against its row's hash (`None`: no such
    /// token). A token this replica verified before passes at once. A
    /// secret whose fingerprint does not match (and any secret for an
    /// unknown id, at the same cost) is refused for one HMAC, spending only
    /// `client_ip`'s budget: the token id's budget falls only on secrets
    /// that match the fingerprint, so nobody can lock its holder out. The
    /// rest pay argon2, refused while the id or `client_ip` is over budget.
    /// Returns the hash to store when the row had no fingerprint yet.
    pub(crate) async fn verify_presented(
        &self,
        started: tokio::time::Instant,
        raw: &str,
        id: latchkey_domain::token::Uuid,
        secret: &str,
        hash: Option<&SecretHash>,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<SecretHash>, AuthError> {
        if hash.is_some_and(|h| self.verifier.is_verified(raw, h.phc())) {
            return Ok(None);
        }
        let now = self.clock.now();
        let precheck = match hash {
            Some(h) => self.fingerprints.check(secret, h),
            None => self.fingerprints.check_unknown(secret),
        };
        if precheck == Precheck::Mismatch {
            self.failures.cheap_failure(client_ip, now)?;
            record_failure(hash.is_some());
            // Whether a row was found shows in how long its read and
            // decoding took: every cheap refusal answers at one floor.
            tokio::time::sleep_until(started + CHEAP_FAILURE_FLOOR).await;
            return Err(invalid_token().into());
        }
        let suspect = self.failures.failed_recently(id, now);
        // The attempt is spent when its verification starts, so attempts in
        // flight count against the budgets at once; concurrent calls with
        // the same token share one verification and spend once between them.
        let spent = AtomicBool::new(false);
        let spend = || {
            self.failures.attempt(client_ip, id, now)?;
            spent.store(true, Ordering::Relaxed);
            Ok(())
        };
        let ok = match hash {
            Some(h) => {
                self.verifier
                    .verify(raw, secret, h.phc(), suspect, spend)
                    .await
            }
            None => {
                self.verifier
                    .verify_unknown(raw, secret, suspect, spend)
                    .await
            }
        };
        // A success, or no verdict (refused as busy), gives back what this
        // call spent: it was not a failure.
        if spent.load(Ordering::Relaxed) && matches!(ok, Ok(true) | Err(_)) {
            self.failures.succeeded(client_ip, id, self.clock.now());
        }
        if ok? {
            return Ok(hash
                .filter(|_| precheck == Precheck::Absent)
                .map(|h| self.fingerprints.seal(secret, h.phc())));
        }
        record_failure(hash.is_some());
        Err(invalid_token().into())
    }

    /// Describes the caller's own token without consuming a use.
    pub async fn lookup(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Lookup, AuthError> {
        // From the caches Authorize reads, with the same bound for changes
        // made on another replica; counts this replica made are included.
        let mut caller = self
            .authenticate(bearer, client_ip, Freshness::Cached)
            .await?;
        // A use limit is exact only in the database, where uses are consumed:
        // such a token's row is read again there (verified already).
        if let Authenticated::Identity { token, .. } = &mut caller
            && token.num_uses_limit > 0
        {
            let fresh = self
                .store
                .identity_token(&token.id, Freshness::Fresh)
                .await?
                .ok_or_else(invalid_token)?;
            check_token_state(fresh.state(), self.clock.now())?;
            *token = fresh;
        }
        let mut key_encryption_count = 0;
        match &caller {
            Authenticated::Service { token } => {
                let project = self
                    .load_project(&token.project_id, Freshness::Cached)
                    .await?;
                check_client_ip(&token.trusted_ips, &project.trusted_ips, client_ip)?;
                key_encryption_count = project.encryption_count;
            }
            Authenticated::Identity { token, .. } => {
                check_client_ip(&token.trusted_ips, &TrustedIps::default(), client_ip)?;
            }
        }
        Ok(Lookup {
            caller,
            key_encryption_count,
        })
    }
}

fn record_failure(known: bool) {
    latchkey_service_kit::telemetry::record_failed_verification(if known {
        "wrong_secret"
    } else {
        "unknown_id"
    });
}

/// How long after its lookup began a cheaply refused secret is answered:
/// above what reading and decoding a token's row takes, so an unknown id
/// and a wrong secret cannot be told apart by time; costs no CPU.
const CHEAP_FAILURE_FLOOR: std::time::Duration = std::time::Duration::from_millis(5);

pub(super) fn invalid_token() -> AccessError {
    AccessError::new(
        Reason::TokenInvalid,
        "the token is not valid: check that it was copied whole, or create a new one",
    )
}
