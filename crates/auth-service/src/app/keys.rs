//! Keys: project keys wrapped under the root key (and rewrapped during a
//! rotation), and argon2id hashes of new token secrets.

use latchkey_domain::audit::AuditKey;
use latchkey_domain::crypto::WireKey;
use latchkey_domain::model::Project;
use latchkey_domain::token::{AccessTokenKeys, SecretHash, hash_secret};

use super::{AuthApp, RootKey};
use crate::error::AuthError;

impl AuthApp {
    /// A root key project keys may still be wrapped under, during a rotation.
    #[must_use]
    pub fn with_secondary_root_key(mut self, key: Option<RootKey>) -> Self {
        self.access_keys = AccessTokenKeys::derive(&self.root_key, key.as_ref());
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
                .unwrap_key(project.id.as_str(), &project.wrapped_key)
                .is_ok()
            {
                continue;
            }
            let key = secondary
                .unwrap_key(project.id.as_str(), &project.wrapped_key)
                .map_err(|e| {
                    AuthError::internal(
                        format!("project key of {} opens with neither root key", project.id),
                        e,
                    )
                })?;
            let wrapped = self
                .root_key
                .wrap(project.id.as_str(), &key, &mut rand::rngs::OsRng)
                .map_err(|e| AuthError::internal("rewrapping a project key", e))?;
            self.store
                .set_project_wrapped_key(&project.id, &wrapped)
                .await?;
            rewrapped += 1;
        }
        Ok(rewrapped)
    }

    /// The audit key: derived from the primary root key.
    #[must_use]
    pub fn audit_key(&self) -> AuditKey {
        AuditKey::derive(&self.root_key)
    }

    /// The audit key, for the internal caller that presents `presented_key`
    /// (the secrets service chains its events with it).
    pub fn audit_key_for(&self, presented_key: Option<&str>) -> Result<AuditKey, AuthError> {
        self.check_internal_key(presented_key)?;
        Ok(self.audit_key())
    }

    pub(super) fn project_key(&self, project: &Project) -> Result<WireKey, AuthError> {
        let primary = self
            .root_key
            .unwrap_key(project.id.as_str(), &project.wrapped_key);
        let opened = match (primary, &self.secondary_root_key) {
            (Ok(key), _) => Ok(key),
            (Err(_), Some(secondary)) => {
                secondary.unwrap_key(project.id.as_str(), &project.wrapped_key)
            }
            (Err(e), None) => Err(e),
        };
        opened.map_err(|e| {
            AuthError::internal(format!("project key of {} does not unwrap", project.id), e)
        })
    }
}

impl AuthApp {
    /// argon2id-hashes a new token's secret, with its fingerprint, on the
    /// blocking pool: at most one hash per core runs at once and the rest
    /// wait their turn, so creations bound memory and threads.
    pub(super) async fn hash(&self, secret: &str) -> Result<SecretHash, AuthError> {
        let permit = self
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AuthError::internal("hashing pool closed", e))?;
        let owned = secret.to_owned();
        let phc = tokio::task::spawn_blocking(move || {
            let hashed = hash_secret(&owned, &mut rand::rngs::OsRng);
            drop(permit);
            hashed
        })
        .await
        .map_err(|e| AuthError::internal("hash task failed", e))?
        .map_err(|e| AuthError::internal("argon2 hash failed", e))?;
        Ok(self.fingerprints.seal(secret, &phc))
    }
}
