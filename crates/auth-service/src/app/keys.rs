//! Keys: project keys wrapped under the root key (and rewrapped during a
//! rotation), and argon2id hashes of new token secrets.

use latchkey_domain::crypto::WireKey;
use latchkey_domain::model::Project;
use latchkey_domain::token::{SecretHash, hash_secret};

use super::{AuthApp, RootKey};
use crate::error::AuthError;

impl AuthApp {
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

/// argon2id-hashes a token secret on the blocking pool.
pub(super) async fn hash(secret: &str) -> Result<SecretHash, AuthError> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || hash_secret(&secret, &mut rand::rngs::OsRng))
        .await
        .map_err(|e| AuthError::internal("hash task failed", e))?
        .map(SecretHash::new)
        .map_err(|e| AuthError::internal("argon2 hash failed", e))
}
