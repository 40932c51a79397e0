//! Background work: flushing batched use counts, reaping expired and
//! revoked tokens, and the bootstrap admin on an empty database.

use std::path::{Path, PathBuf};

use chrono::Duration;
use latchkey_domain::identity::OrgRole;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{AccessToken, AccessTokenId, Identity, IdentityId, Principal};
use latchkey_domain::token::AuthMethod;
use latchkey_service_kit::audit::CallMeta;

use super::{AuthApp, REVOKED_RETENTION_DAYS};
use crate::error::AuthError;

impl AuthApp {
    /// Writes the use counts batched in memory; on failure the unwritten
    /// ones are kept for the next flush.
    pub async fn flush_uses(&self) -> Result<(), AuthError> {
        Ok(self.store.flush_uses().await?)
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
            self.record_own_act(
                "token.reaped",
                format!("service_tokens={tokens} access_tokens={access_tokens}"),
                tokens + access_tokens,
            )
            .await;
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
        let identity = Identity {
            id: IdentityId::generate(),
            name: "bootstrap-admin".to_owned(),
            org_role: OrgRole::Admin,
            created_at: now,
        };
        let record = AccessToken {
            id: AccessTokenId::generate(),
            identity_id: identity.id.clone(),
            name: "bootstrap".to_owned(),
            secret_hash: None,
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
            std::fs::create_dir_all(dir)
                .map_err(|e| AuthError::internal(format!("cannot create {}", dir.display()), e))?;
        }
        // Write the file before the row exists, so a failure leaves no admin nobody can use.
        let _ = std::fs::remove_file(path);
        let token = self.sign(&record, AuthMethod::TokenAuth)?;
        latchkey_service_kit::config::write_private(path, &token)
            .map_err(|e| AuthError::internal(format!("cannot write {}", path.display()), e))?;
        self.store
            .insert_identity_with_token(&identity, &record)
            .await?;
        self.record_own_act(
            "identity.bootstrap",
            Principal::Identity(identity.id.clone()).to_string(),
            1,
        )
        .await;
        Ok(Some(path.to_owned()))
    }

    /// Records what the service did by itself (nobody's call): `count`
    /// things done to `target`. Nobody waits to be told it failed, so a
    /// failure is logged.
    async fn record_own_act(&self, kind: &str, target: String, count: u64) {
        let mut event = CallMeta::internal(kind).event(kind, self.audit.now());
        event.target = target;
        event.count = count;
        if let Err(e) = self.audit.record(event, None).await {
            tracing::warn!(error = %e.message, event = kind, "could not record the service's own act");
        }
    }
}
