//! The auth service's use cases. Each parses nothing (the gRPC layer hands
//! over domain types), loads what it needs, applies the domain's rules and
//! stores the result.
//!
//! This file holds authentication, admin checks, projects, service tokens,
//! `LookupToken` and `Authorize`; [`identities`] holds machine identities,
//! Token Auth, access tokens and project memberships.

mod admin;
mod identities;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Duration;
use latchkey_domain::access::{
    Target, check_client_ip, check_raw_allowed, check_scoped_access, check_token_state,
    uses_exhausted_error,
};
use latchkey_domain::crypto::{RootKey, WireKey, key_rotation_recommended};
use latchkey_domain::identity::OrgRole;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::path::Environment;
use latchkey_domain::ports::{AuthorizationRequest, BearerToken, Clock, Grant};
use latchkey_domain::scope::{Action, Permissions, Scopes};
use latchkey_domain::token::{
    AnyToken, IdentityTokenSecret, SecretHash, ServiceTokenSecret, hash_secret,
};
use latchkey_domain::ttl::expiry_after;
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_service_kit::config::InternalKey;
use latchkey_store::StoreError;
use latchkey_store::auth::{
    IdentityRecord, IdentityTokenRecord, NewProject, ProjectRecord, ServiceTokenRecord,
};

pub use self::admin::{Admin, AdminCaller};
pub use self::identities::{ConfigChanges, IssuedAccessToken};
use crate::error::AuthError;
use crate::limiter::{FailureLimiter, FailureLimits};
use crate::store::CachedAuthStore;
pub use crate::store::Freshness;
use crate::verifier::Verifier;

/// Deleted and revoked tokens answer `TOKEN_REVOKED` this long, then are reaped.
pub const REVOKED_RETENTION_DAYS: i64 = 7;

/// How long an expired token answers `TOKEN_EXPIRED` before it is reaped,
/// unless configured (`LATCHKEY_EXPIRED_GRACE_SECONDS`).
pub const DEFAULT_EXPIRED_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// A caller whose token was verified and is live.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// A service token.
    Service {
        /// The token's row.
        token: ServiceTokenRecord,
    },
    /// An identity access token.
    Identity {
        /// The token's row.
        token: IdentityTokenRecord,
        /// Its identity.
        identity: IdentityRecord,
    },
}

/// Where an admin call acts: the whole organisation, or one project (whose
/// admins may also make it).
#[derive(Debug, Clone, Copy)]
pub enum AdminScope<'a> {
    /// Org admins only.
    Org,
    /// Org admins and the project's admins.
    Project(&'a str),
}

/// A new service token's settings, parsed.
#[derive(Debug, Clone)]
pub struct NewServiceToken {
    /// Project id.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// Scopes, at least one.
    pub scopes: Scopes,
    /// Permissions, at least one.
    pub permissions: Permissions,
    /// Lifetime in seconds; 0 never expires.
    pub expires_in_seconds: i64,
    /// Per-token allowlist.
    pub trusted_ips: TrustedIps,
}

/// What `LookupToken` reports.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The verified caller.
    pub caller: Authenticated,
    /// For a service token, its project's encryption count.
    pub key_encryption_count: u64,
}

/// The auth service's use cases.
#[derive(Debug)]
pub struct AuthApp {
    store: CachedAuthStore,
    root_key: RootKey,
    /// The previous root key during a rotation: opens, never wraps.
    secondary_root_key: Option<RootKey>,
    internal_key: InternalKey,
    clock: Arc<dyn Clock>,
    verifier: Verifier,
    /// How long expired tokens are kept, answering `TOKEN_EXPIRED`.
    expired_grace: Duration,
    failures: FailureLimiter,
}

impl AuthApp {
    /// Wires the use cases.
    #[must_use]
    pub fn new(
        store: CachedAuthStore,
        root_key: RootKey,
        internal_key: InternalKey,
        clock: Arc<dyn Clock>,
        verifier: Verifier,
    ) -> Self {
        Self {
            store,
            root_key,
            secondary_root_key: None,
            internal_key,
            clock,
            verifier,
            expired_grace: Duration::seconds(DEFAULT_EXPIRED_GRACE_SECONDS),
            failures: FailureLimiter::new(FailureLimits::default()),
        }
    }

    /// How many failed verifications a token id or client IP may make.
    #[must_use]
    pub fn with_failure_limits(mut self, limits: FailureLimits) -> Self {
        self.failures = FailureLimiter::new(limits);
        self
    }

    /// How long expired tokens keep answering `TOKEN_EXPIRED` before the
    /// reaper deletes them.
    #[must_use]
    pub fn with_expired_grace(mut self, grace: Duration) -> Self {
        self.expired_grace = grace;
        self
    }

    /// Writes the use counts batched in memory; on failure the unwritten
    /// ones are kept for the next flush.
    pub async fn flush_uses(&self) -> Result<(), AuthError> {
        Ok(self.store.flush_uses().await?)
    }

    /// The verifier, for its counters.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

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
        match AnyToken::parse(raw)? {
            AnyToken::Service(st) => {
                let record = self
                    .store
                    .service_token(&st.id().to_string(), freshness)
                    .await?;
                let hash = record.as_ref().map(|r| &r.secret_hash);
                self.verify_presented(raw, st.id(), st.secret(), hash, client_ip)
                    .await?;
                let record = record.ok_or_else(invalid_token)?;
                check_token_state(record.state(), self.clock.now())?;
                // Whether the holder's key part opens `encrypted_project_key` is
                // the client's check: the key part never reaches this service.
                Ok(Authenticated::Service { token: record })
            }
            AnyToken::Identity(it) => {
                let record = self
                    .store
                    .identity_token(&it.id().to_string(), freshness)
                    .await?;
                let hash = record.as_ref().map(|r| &r.secret_hash);
                self.verify_presented(raw, it.id(), it.secret(), hash, client_ip)
                    .await?;
                let record = record.ok_or_else(invalid_token)?;
                check_token_state(record.state(), self.clock.now())?;
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
        }
    }

    /// Checks a presented secret against its row's hash (`None`: no such
    /// token, checked against a decoy at the same cost). A token this
    /// replica verified before skips the failure limits; any other is
    /// refused while its id or `client_ip` is over budget, and a failure
    /// spends both budgets.
    pub(crate) async fn verify_presented(
        &self,
        raw: &str,
        id: uuid::Uuid,
        secret: &str,
        hash: Option<&SecretHash>,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        if hash.is_some_and(|h| self.verifier.is_verified(raw, h.as_str())) {
            return Ok(());
        }
        let now = self.clock.now();
        // Suspect if it failed before; then this attempt is spent up front,
        // so attempts in flight count against the budgets at once.
        let suspect = self.failures.failed_recently(id, now);
        self.failures.attempt(client_ip, id, now)?;
        let ok = match hash {
            Some(h) => self.verifier.verify(raw, secret, h.as_str(), suspect).await,
            None => self.verifier.verify_unknown(raw, secret, suspect).await,
        };
        if matches!(ok, Ok(true) | Err(_)) {
            // A success, or no verdict (refused as busy): not a failure.
            self.failures.succeeded(client_ip, id, self.clock.now());
        }
        if ok? {
            return Ok(());
        }
        latchkey_service_kit::telemetry::record_failed_verification(if hash.is_some() {
            "wrong_secret"
        } else {
            "unknown_id"
        });
        Err(invalid_token().into())
    }

    /// Creates a project with the default environments and a fresh wrapped key.
    pub async fn create_project(&self, name: &str, e2ee: bool) -> Result<ProjectRecord, AuthError> {
        let name = display_name(name, "name")?;
        let id = uuid::Uuid::new_v4().to_string();
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        let environments = Environment::DEFAULTS
            .iter()
            .map(|(slug, display)| Environment::parse(slug).map(|e| (e, (*display).to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .insert_project(NewProject {
                wrapped_key: self
                    .root_key
                    .wrap(&id, &key, &mut rand::rngs::OsRng)
                    .map_err(|e| AuthError::Internal(format!("wrapping a project key: {e}")))?,
                id: id.clone(),
                name,
                e2ee,
                environments,
                created_at: self.clock.now(),
            })
            .await?;
        self.project(&id).await
    }

    /// One project, or `NOT_FOUND`.
    pub async fn project(&self, id: &str) -> Result<ProjectRecord, AuthError> {
        self.project_as(id, Freshness::Fresh).await
    }

    async fn project_as(&self, id: &str, freshness: Freshness) -> Result<ProjectRecord, AuthError> {
        self.store
            .project(id, freshness)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {id:?} not found")))
    }

    /// Every project.
    pub async fn projects(&self) -> Result<Vec<ProjectRecord>, AuthError> {
        Ok(self.store.projects().await?)
    }

    /// Adds an environment to a project.
    pub async fn create_environment(
        &self,
        admin: &Admin,
        project_id: &str,
        slug: &Environment,
        name: &str,
    ) -> Result<ProjectRecord, AuthError> {
        admin.require_unscoped("adding an environment")?;
        let project = self.project(project_id).await?;
        let exists = || {
            AuthError::Conflict(format!(
                "environment {:?} already exists in project {project_id}",
                slug.as_str()
            ))
        };
        if project.environments.iter().any(|(e, _)| e == slug) {
            return Err(exists());
        }
        let name = if name.trim().is_empty() {
            slug.as_str().to_owned()
        } else {
            display_name(name, "name")?
        };
        self.store
            .insert_environment(project_id, slug, &name)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => exists(),
                other => other.into(),
            })?;
        self.project(project_id).await
    }

    /// Replaces a project's IP allowlist.
    pub async fn set_project_trusted_ips(
        &self,
        admin: &Admin,
        project_id: &str,
        ips: &TrustedIps,
    ) -> Result<ProjectRecord, AuthError> {
        admin.require_unscoped("changing the project's IP allowlist")?;
        let changed = self.store.set_project_trusted_ips(project_id, ips).await?;
        if !changed {
            return Err(AuthError::NotFound(format!(
                "project {project_id:?} not found"
            )));
        }
        self.project(project_id).await
    }

    /// Issues a service token: hashes its secret, encrypts the project key
    /// under its key part, and returns the whole token once. No copy of the
    /// key part is kept.
    pub async fn create_service_token(
        &self,
        admin: &Admin,
        new: NewServiceToken,
    ) -> Result<(String, ServiceTokenRecord), AuthError> {
        admin.require_covers(&new.scopes, "the new token's scopes")?;
        let project = self.project(&new.project_id).await?;
        check_environments_exist(&project, &new.scopes)?;
        let now = self.clock.now();
        let expires_at = expiry_after(now, new.expires_in_seconds, "expires_in_seconds")?;
        let project_key = self.project_key(&project)?;
        let token = ServiceTokenSecret::generate(&mut rand::rngs::OsRng);
        // No associated data: Infisical's clients decrypt this envelope as is.
        let encrypted_project_key = token
            .key()
            .seal(project_key.expose().as_bytes(), b"", &mut rand::rngs::OsRng)
            .map_err(|e| AuthError::Internal(format!("sealing a token's project key: {e}")))?;
        let record = ServiceTokenRecord {
            id: token.id().to_string(),
            project_id: project.id,
            name: new.name,
            secret_hash: hash(token.secret()).await?,
            scopes: new.scopes,
            permissions: new.permissions,
            trusted_ips: new.trusted_ips,
            expires_at,
            active: true,
            revoked_at: None,
            encrypted_project_key,
            use_count: 0,
            last_used_at: None,
            created_at: now,
        };
        self.store.insert_service_token(&record).await?;
        tracing::info!(token.id = %record.id, project.id = %record.project_id, "service token created");
        Ok((token.expose(), record))
    }

    /// A project's live service tokens (neither deleted nor expired); a
    /// scoped admin sees only those inside its scopes.
    pub async fn service_tokens(
        &self,
        admin: &Admin,
        project_id: &str,
    ) -> Result<Vec<ServiceTokenRecord>, AuthError> {
        self.project(project_id).await?;
        let mut tokens = self.store.service_tokens(project_id).await?;
        // Expired tokens leave the listing at once; GetServiceToken still shows them.
        let now = self.clock.now();
        tokens.retain(|t| admin.covers(&t.scopes) && t.expires_at.is_none_or(|e| e > now));
        Ok(tokens)
    }

    /// One live service token, or `NOT_FOUND`.
    pub async fn service_token(&self, id: &str) -> Result<ServiceTokenRecord, AuthError> {
        self.store
            .service_token(id, Freshness::Fresh)
            .await?
            .filter(|t| t.revoked_at.is_none())
            .ok_or_else(|| AuthError::NotFound(format!("service token {id:?} not found")))
    }

    /// Deletes a service token; it answers `TOKEN_REVOKED` from now on.
    pub async fn delete_service_token(&self, id: &str) -> Result<(), AuthError> {
        let revoked = self.store.revoke_service_token(id).await?;
        if !revoked {
            return Err(AuthError::NotFound(format!(
                "service token {id:?} not found"
            )));
        }
        tracing::info!(token.id = %id, "service token deleted");
        Ok(())
    }

    /// Deactivates or reactivates a service token.
    pub async fn set_service_token_active(
        &self,
        id: &str,
        active: bool,
    ) -> Result<ServiceTokenRecord, AuthError> {
        let changed = self.store.set_service_token_active(id, active).await?;
        if !changed {
            return Err(AuthError::NotFound(format!(
                "service token {id:?} not found"
            )));
        }
        tracing::info!(token.id = %id, active, "service token activation changed");
        self.service_token(id).await
    }

    /// Describes the caller's own token without consuming a use.
    pub async fn lookup(
        &self,
        bearer: &BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Lookup, AuthError> {
        let caller = self
            .authenticate(bearer, client_ip, Freshness::Fresh)
            .await?;
        let mut key_encryption_count = 0;
        match &caller {
            Authenticated::Service { token } => {
                let project = self.project(&token.project_id).await?;
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

    /// Decides whether the secrets service may serve a call, and consumes one
    /// use when it may. Only callers presenting the internal key are heard,
    /// because they vouch for the client IP.
    pub async fn authorize(
        &self,
        presented_key: Option<&str>,
        req: AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        if !presented_key.is_some_and(|k| self.internal_key.matches(k)) {
            return Err(AccessError::new(
                Reason::PermissionDenied,
                "Authorize is internal: only the secrets service, presenting the internal key, may call it",
            )
            .into());
        }
        match self
            .authenticate(&req.token, req.client_ip, Freshness::Cached)
            .await?
        {
            Authenticated::Service { token } => self.authorize_service_token(token, &req).await,
            Authenticated::Identity { token, identity } => {
                self.authorize_identity(token, identity, &req).await
            }
        }
    }

    async fn authorize_service_token(
        &self,
        token: ServiceTokenRecord,
        req: &AuthorizationRequest,
    ) -> Result<Grant, AuthError> {
        if let Some(asked) = req.project_id.as_deref()
            && asked != token.project_id
        {
            return Err(AccessError::new(
                Reason::PermissionDenied,
                format!(
                    "the service token belongs to project {}, not {asked}",
                    token.project_id
                ),
            )
            .into());
        }
        let project = self
            .project_as(&token.project_id, Freshness::Cached)
            .await?;
        check_client_ip(&token.trusted_ips, &project.trusted_ips, req.client_ip)?;
        check_scoped_access(&token.scopes, token.permissions, target(req))?;
        check_raw_allowed(req.raw, project.e2ee)?;
        // Service tokens have no use limit: their uses are counted in memory and flushed.
        self.store.record_service_token_use(&token.id);
        self.count_write(&project, req.action).await?;
        Ok(Grant {
            principal: format!("service-token:{}", token.id),
            project_key: self.raw_key(&project, req.raw)?,
            project_id: project.id,
            scopes: token.scopes,
            encrypted_project_key: Some(token.encrypted_project_key),
        })
    }

    /// Consumes one use in one atomic statement; when none is left (or the
    /// token expired or was revoked since it was read) says which.
    async fn consume_identity_use(&self, token: &IdentityTokenRecord) -> Result<(), AuthError> {
        if token.num_uses_limit == 0 {
            self.store.record_identity_token_use(&token.id);
            return Ok(());
        }
        if self.store.consume_identity_token_use(&token.id).await? {
            return Ok(());
        }
        self.denial_for(&token.id).await
    }

    /// Why a conditional update on a live token matched nothing.
    async fn denial_for<T>(&self, token_id: &str) -> Result<T, AuthError> {
        let current = self
            .store
            .identity_token(token_id, Freshness::Fresh)
            .await?
            .ok_or_else(|| AccessError::new(Reason::TokenRevoked, "the token was deleted"))?;
        check_token_state(current.state(), self.clock.now())?;
        Err(uses_exhausted_error(current.num_uses_limit).into())
    }

    async fn count_write(&self, project: &ProjectRecord, action: Action) -> Result<(), AuthError> {
        if action == Action::Write {
            // Each write is one AES-GCM encryption under the project key, by the client or by us.
            let count = self.store.count_encryption(&project.id).await?;
            latchkey_service_kit::telemetry::record_key_encryptions(&project.id, count);
            if key_rotation_recommended(count) {
                tracing::warn!(
                    project.id = %project.id,
                    key.encryptions = count,
                    "project key passed 90% of its 2^32 AES-GCM encryption budget; rotate it"
                );
            }
        }
        Ok(())
    }

    fn raw_key(&self, project: &ProjectRecord, raw: bool) -> Result<Option<WireKey>, AuthError> {
        if raw {
            self.project_key(project).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Deletes tokens expired longer than the grace period, and deleted or
    /// revoked ones past their retention; until then they answer
    /// `TOKEN_EXPIRED` or `TOKEN_REVOKED` rather than `TOKEN_INVALID`.
    pub async fn reap(&self) -> Result<u64, AuthError> {
        let now = self.clock.now();
        let expired_before = now - self.expired_grace;
        let revoked_before = now - Duration::days(REVOKED_RETENTION_DAYS);
        let (tokens, access_tokens) = self.store.reap(expired_before, revoked_before).await?;
        if tokens + access_tokens > 0 {
            tracing::info!(
                service_tokens = tokens,
                access_tokens,
                "reaped expired and revoked tokens"
            );
        }
        Ok(tokens + access_tokens)
    }

    /// On an empty database, creates the bootstrap admin identity and writes
    /// its token to `path` (mode 0600). Returns the path when it did.
    pub async fn bootstrap_admin(&self, path: &Path) -> Result<Option<PathBuf>, AuthError> {
        if self.store.identity_count().await? > 0 {
            return Ok(None);
        }
        let now = self.clock.now();
        let token = IdentityTokenSecret::generate(&mut rand::rngs::OsRng);
        let identity = IdentityRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: "bootstrap-admin".to_owned(),
            org_role: OrgRole::Admin,
            created_at: now,
        };
        let record = IdentityTokenRecord {
            id: token.id().to_string(),
            identity_id: identity.id.clone(),
            name: "bootstrap".to_owned(),
            secret_hash: hash(token.secret()).await?,
            expires_at: None,
            revoked_at: None,
            use_count: 0,
            num_uses_limit: 0,
            ttl_seconds: 0,
            max_ttl_seconds: 0,
            trusted_ips: TrustedIps::default(),
            last_used_at: None,
            created_at: now,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                AuthError::Internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // Write the file before the row exists, so a failure leaves no admin nobody can use.
        let _ = std::fs::remove_file(path);
        latchkey_service_kit::config::write_private(path, &token.expose())
            .map_err(|e| AuthError::Internal(format!("cannot write {}: {e}", path.display())))?;
        self.store
            .insert_identity_with_token(&identity, &record)
            .await?;
        Ok(Some(path.to_owned()))
    }

    /// A root key project keys may still be wrapped under, during a rotation.
    #[must_use]
    pub fn with_secondary_root_key(mut self, key: Option<RootKey>) -> Self {
        self.secondary_root_key = key;
        self
    }

    /// Rewraps under the primary root key every project key that only the
    /// secondary opens; returns how many. Run at start-up, under the
    /// start-up lock, so a rotation completes as replicas roll.
    pub async fn rewrap_project_keys(&self) -> Result<u64, AuthError> {
        let Some(secondary) = &self.secondary_root_key else {
            return Ok(0);
        };
        let mut rewrapped = 0;
        for project in self.store.projects().await? {
            if self
                .root_key
                .unwrap_key(&project.id, &project.wrapped_key)
                .is_ok()
            {
                continue;
            }
            let key = secondary
                .unwrap_key(&project.id, &project.wrapped_key)
                .map_err(|e| {
                    AuthError::Internal(format!(
                        "project key of {} opens with neither root key: {e}",
                        project.id
                    ))
                })?;
            let wrapped = self
                .root_key
                .wrap(&project.id, &key, &mut rand::rngs::OsRng)
                .map_err(|e| AuthError::Internal(format!("rewrapping a project key: {e}")))?;
            self.store
                .set_project_wrapped_key(&project.id, &wrapped)
                .await?;
            rewrapped += 1;
        }
        Ok(rewrapped)
    }

    fn project_key(&self, project: &ProjectRecord) -> Result<WireKey, AuthError> {
        let primary = self.root_key.unwrap_key(&project.id, &project.wrapped_key);
        let opened = match (primary, &self.secondary_root_key) {
            (Ok(key), _) => Ok(key),
            (Err(_), Some(secondary)) => secondary.unwrap_key(&project.id, &project.wrapped_key),
            (Err(e), None) => Err(e),
        };
        opened.map_err(|e| {
            AuthError::Internal(format!(
                "project key of {} does not unwrap: {e}",
                project.id
            ))
        })
    }
}

fn target(req: &AuthorizationRequest) -> Target<'_> {
    Target {
        environment: &req.environment,
        path: &req.path,
        action: req.action,
        recursive: req.recursive,
    }
}

fn invalid_token() -> AccessError {
    AccessError::new(
        Reason::TokenInvalid,
        "the token is not valid: check that it was copied whole, or create a new one",
    )
}

/// argon2id-hashes a token secret on the blocking pool.
async fn hash(secret: &str) -> Result<SecretHash, AuthError> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || hash_secret(&secret, &mut rand::rngs::OsRng))
        .await
        .map_err(|e| AuthError::Internal(format!("hash task failed: {e}")))?
        .map(SecretHash::new)
        .map_err(|e| AuthError::Internal(format!("argon2 hash failed: {e}")))
}

fn check_environments_exist(project: &ProjectRecord, scopes: &Scopes) -> Result<(), InvalidInput> {
    for (i, scope) in scopes.as_slice().iter().enumerate() {
        if !project
            .environments
            .iter()
            .any(|(e, _)| *e == scope.environment)
        {
            let have: Vec<_> = project
                .environments
                .iter()
                .map(|(e, _)| e.as_str())
                .collect();
            return Err(InvalidInput::new(
                format!("scopes[{i}].environment"),
                format!(
                    "environment {:?} does not exist in project {}; it has {}",
                    scope.environment.as_str(),
                    project.id,
                    have.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A name of 1 to 64 printable characters, trimmed.
fn display_name(raw: &str, field: &str) -> Result<String, InvalidInput> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            field,
            "a name is 1 to 64 printable characters",
        ));
    }
    Ok(name.to_owned())
}
