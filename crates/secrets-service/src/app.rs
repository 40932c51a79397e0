//! The secrets service's use cases. Each authorises **before** touching the
//! store, so `NOT_FOUND` never tells an unauthorised caller that a secret exists.

use std::net::IpAddr;
use std::sync::Arc;

use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::{Sealed, secret_aad};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, Authorizer, BearerToken, Clock, Grant};
use latchkey_domain::scope::Action;
use latchkey_store::secrets::{SecretKey, SecretRecord, SecretStore};

use crate::error::SecretsError;

/// The largest secret value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Who is calling: their token and address.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The bearer token.
    pub token: BearerToken,
    /// The client address, when known.
    pub ip: Option<IpAddr>,
}

/// A folder in a project's environment; `project_id` `None` means the service token's project.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Project id, when given.
    pub project_id: Option<String>,
    /// Environment.
    pub environment: Environment,
    /// Folder path.
    pub path: SecretPath,
}

/// A secret decrypted by the server; its `Debug` omits the value.
#[derive(Clone)]
pub struct PlainSecret {
    /// The stored record.
    pub record: SecretRecord,
    /// The plaintext.
    pub value: String,
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSecret")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// The secrets service's use cases over an [`Authorizer`].
#[derive(Debug)]
pub struct SecretsApp<A> {
    store: SecretStore,
    authorizer: Arc<A>,
    clock: Arc<dyn Clock>,
}

impl<A: Authorizer> SecretsApp<A> {
    /// Wires the use cases.
    #[must_use]
    pub fn new(store: SecretStore, authorizer: Arc<A>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            authorizer,
            clock,
        }
    }

    /// Lists a folder (and the folders below it that the token may read,
    /// when `recursive`), as ciphertext.
    pub async fn list(
        &self,
        caller: &Caller,
        folder: &Folder,
        recursive: bool,
        raw: bool,
    ) -> Result<(Grant, Vec<SecretRecord>), SecretsError> {
        let grant = self
            .authorize(caller, folder, Action::Read, raw, recursive)
            .await?;
        let records = self
            .store
            .list(
                &grant.project_id,
                &folder.environment,
                &folder.path,
                recursive,
            )
            .await?
            .into_iter()
            // Sub-folders outside the scopes are left out, never an error.
            .filter(|r| grant.scopes.allows(&r.key.environment, &r.key.path))
            .collect();
        Ok((grant, records))
    }

    /// One secret as ciphertext.
    pub async fn get(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        raw: bool,
    ) -> Result<(Grant, SecretRecord), SecretsError> {
        let grant = self
            .authorize(caller, folder, Action::Read, raw, false)
            .await?;
        let key = secret_key(&grant, folder, name);
        let record = self.store.get(&key).await?.ok_or_else(|| {
            SecretsError::NotFound(format!(
                "secret {:?} not found in {}:{}",
                name.as_str(),
                folder.environment,
                folder.path
            ))
        })?;
        Ok((grant, record))
    }

    /// Stores client-side ciphertext as the secret's next version.
    pub async fn set(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        sealed: Sealed,
    ) -> Result<SecretRecord, SecretsError> {
        check_envelope(&sealed)?;
        let grant = self
            .authorize(caller, folder, Action::Write, false, false)
            .await?;
        let key = secret_key(&grant, folder, name);
        Ok(self.store.put(&key, sealed, self.clock.now()).await?)
    }

    /// Encrypts a plaintext value under the project key and stores it.
    pub async fn set_raw(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        value: &str,
    ) -> Result<SecretRecord, SecretsError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(InvalidInput::new(
                "value",
                format!("is larger than {MAX_VALUE_BYTES} bytes"),
            )
            .into());
        }
        let grant = self
            .authorize(caller, folder, Action::Write, true, false)
            .await?;
        let project_key = grant.project_key.as_ref().ok_or_else(missing_key)?;
        let key = secret_key(&grant, folder, name);
        let sealed = project_key
            .seal(value.as_bytes(), &aad(&key), &mut rand::rngs::OsRng)
            .map_err(|e| SecretsError::Undecryptable(format!("encrypting {}: {e}", key.name)))?;
        Ok(self.store.put(&key, sealed, self.clock.now()).await?)
    }

    /// Deletes a secret.
    pub async fn delete(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
    ) -> Result<(), SecretsError> {
        let grant = self
            .authorize(caller, folder, Action::Write, false, false)
            .await?;
        let key = secret_key(&grant, folder, name);
        if !self.store.delete(&key).await? {
            return Err(SecretsError::NotFound(format!(
                "secret {:?} not found in {}:{}",
                name.as_str(),
                folder.environment,
                folder.path
            )));
        }
        Ok(())
    }

    /// Decrypts records with the project key a raw grant carries.
    pub fn decrypt(
        grant: &Grant,
        records: Vec<SecretRecord>,
    ) -> Result<Vec<PlainSecret>, SecretsError> {
        let project_key = grant.project_key.as_ref().ok_or_else(missing_key)?;
        records
            .into_iter()
            .map(|record| {
                let undecryptable = || {
                    SecretsError::Undecryptable(format!(
                        "secret {} in {}:{} of project {} does not decrypt under the project key",
                        record.key.name,
                        record.key.environment,
                        record.key.path,
                        record.key.project_id
                    ))
                };
                let bytes = project_key
                    .open(&record.sealed, &aad(&record.key))
                    .map_err(|_| undecryptable())?;
                let value = String::from_utf8(bytes).map_err(|_| undecryptable())?;
                Ok(PlainSecret { record, value })
            })
            .collect()
    }

    async fn authorize(
        &self,
        caller: &Caller,
        folder: &Folder,
        action: Action,
        raw: bool,
        recursive: bool,
    ) -> Result<Grant, SecretsError> {
        Ok(self
            .authorizer
            .authorize(AuthorizationRequest {
                token: caller.token.clone(),
                client_ip: caller.ip,
                project_id: folder.project_id.clone(),
                environment: folder.environment.clone(),
                path: folder.path.clone(),
                action,
                raw,
                recursive,
            })
            .await?)
    }
}

fn secret_key(grant: &Grant, folder: &Folder, name: &SecretName) -> SecretKey {
    SecretKey {
        project_id: grant.project_id.clone(),
        environment: folder.environment.clone(),
        path: folder.path.clone(),
        name: name.clone(),
    }
}

fn aad(key: &SecretKey) -> Vec<u8> {
    secret_aad(
        &key.project_id,
        key.environment.as_str(),
        key.path.as_str(),
        key.name.as_str(),
    )
}

fn check_envelope(sealed: &Sealed) -> Result<(), InvalidInput> {
    if sealed.iv.len() != 12 && sealed.iv.len() != 16 {
        return Err(InvalidInput::new(
            "iv",
            format!("must be 12 or 16 bytes, got {}", sealed.iv.len()),
        ));
    }
    if sealed.tag.len() != 16 {
        return Err(InvalidInput::new(
            "tag",
            format!("must be 16 bytes, got {}", sealed.tag.len()),
        ));
    }
    if sealed.ciphertext.len() > MAX_VALUE_BYTES {
        return Err(InvalidInput::new(
            "ciphertext",
            format!("is larger than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn missing_key() -> SecretsError {
    SecretsError::Undecryptable(
        "the auth service granted a raw call without the project key".to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_secret_debug_omits_the_value() {
        let secret = PlainSecret {
            record: SecretRecord {
                key: SecretKey {
                    project_id: "p".into(),
                    environment: Environment::parse("dev").unwrap(),
                    path: SecretPath::parse("/").unwrap(),
                    name: SecretName::parse("DB_URL").unwrap(),
                },
                sealed: Sealed::default(),
                version: 1,
                updated_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            },
            value: "postgres://u:hunter2@db".into(),
        };
        let debug = format!("{secret:?}");
        assert!(
            debug.contains("DB_URL") && !debug.contains("hunter2"),
            "{debug}"
        );
    }
}
