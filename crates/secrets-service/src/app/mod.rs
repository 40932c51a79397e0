//! The secrets service's use cases. Each authorises **before** touching the
//! store, so `NOT_FOUND` never tells an unauthorised caller that a secret exists.

use std::net::IpAddr;
use std::sync::Arc;

use crate::error::SecretsError;
use crate::store::CachedSecretStore;
use latchkey_domain::access::Form;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{
    Folder, PlainSecret, Secret, SecretKey, WriteMode, check_envelope, check_value,
};
use latchkey_domain::path::SecretName;
use latchkey_domain::ports::{
    AuthorizationRequest, Authorizer, BearerToken, Grant, Renewed, ServiceTokenDetails,
};
use latchkey_domain::scope::Action;

mod keys;

pub use keys::raw_project_key;
use keys::{aad, decrypt, secret_key};
use latchkey_domain::{AccessError, InvalidInput, Reason};

/// Who is calling: their token and address.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The bearer token.
    pub token: BearerToken,
    /// The client address, when known.
    pub ip: Option<IpAddr>,
}

/// The secrets service's use cases over an [`Authorizer`].
#[derive(Debug)]
pub struct SecretsApp {
    store: CachedSecretStore,
    authorizer: Arc<dyn Authorizer>,
}

impl SecretsApp {
    /// Wires the use cases.
    #[must_use]
    pub fn new(store: CachedSecretStore, authorizer: Arc<dyn Authorizer>) -> Self {
        Self { store, authorizer }
    }

    /// Lists a folder (and the folders below it that the token may read,
    /// when `recursive`), as ciphertext for the key holder to open.
    pub async fn list(
        &self,
        caller: &Caller,
        folder: &Folder,
        recursive: bool,
    ) -> Result<(Grant, Arc<[Secret]>), SecretsError> {
        self.authorized_list(caller, folder, recursive, Form::Sealed)
            .await
    }

    /// The same listing decrypted by the server (projects without e2ee).
    pub async fn list_raw(
        &self,
        caller: &Caller,
        folder: &Folder,
        recursive: bool,
    ) -> Result<(Grant, Vec<PlainSecret>), SecretsError> {
        let (grant, secrets) = self
            .authorized_list(caller, folder, recursive, Form::Raw)
            .await?;
        raw_project_key(&grant)?;
        // A row that does not decrypt (written before envelopes were
        // checked, or damaged) is left out and reported: one bad row must
        // never fail every reader of the environment.
        let plain = secrets
            .iter()
            .filter_map(|secret| {
                decrypt(&grant, secret.clone())
                    .inspect_err(|_| {
                        tracing::error!(
                            project.id = %secret.key.project_id,
                            secret.environment = %secret.key.environment,
                            secret.path = %secret.key.path,
                            secret.name = %secret.key.name,
                            secret.version = secret.version,
                            "stored secret does not decrypt under the project key; left out of the listing"
                        );
                        latchkey_service_kit::telemetry::record_undecryptable();
                    })
                    .ok()
            })
            .collect();
        Ok((grant, plain))
    }

    /// One secret as ciphertext.
    pub async fn get(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
    ) -> Result<(Grant, Secret), SecretsError> {
        self.authorized_get(caller, folder, name, Form::Sealed)
            .await
    }

    /// One secret decrypted by the server (projects without e2ee).
    pub async fn get_raw(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
    ) -> Result<(Grant, PlainSecret), SecretsError> {
        let (grant, secret) = self.authorized_get(caller, folder, name, Form::Raw).await?;
        let plain = decrypt(&grant, secret)?;
        Ok((grant, plain))
    }

    async fn authorized_list(
        &self,
        caller: &Caller,
        folder: &Folder,
        recursive: bool,
        form: Form,
    ) -> Result<(Grant, Arc<[Secret]>), SecretsError> {
        let intent = Intent {
            recursive,
            ..Intent::read(form)
        };
        let grant = self.authorize(caller, folder, intent).await?;
        let rows = self
            .store
            .list(
                &grant.project_id,
                &folder.environment,
                &folder.path,
                recursive,
            )
            .await?;
        // Sub-folders outside the scopes are left out, never an error; the
        // cached rows are shared as they are when all of them may be read.
        let allowed = |r: &Secret| grant.scopes.allows(&r.key.environment, &r.key.path);
        let secrets = if rows.iter().all(allowed) {
            rows
        } else {
            rows.iter().filter(|r| allowed(r)).cloned().collect()
        };
        Ok((grant, secrets))
    }

    async fn authorized_get(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        form: Form,
    ) -> Result<(Grant, Secret), SecretsError> {
        let grant = self.authorize(caller, folder, Intent::read(form)).await?;
        let key = secret_key(&grant, folder, name);
        let secret = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| not_found(folder, name))?;
        Ok((grant, secret))
    }

    /// Stores client-side ciphertext as the secret's next version.
    pub async fn set(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        sealed: Sealed,
    ) -> Result<Secret, SecretsError> {
        check_envelope(&sealed)?;
        // Where the server may hold the project key (no e2ee), it asks for
        // it and checks what it stores: an envelope that does not open at
        // its own location would fail every later raw read of it.
        let grant = match self
            .authorize(caller, folder, Intent::write(Form::Raw))
            .await
        {
            Err(SecretsError::Denied(e)) if e.reason == Reason::E2eeEnabled => {
                self.authorize(caller, folder, Intent::write(Form::Sealed))
                    .await?
            }
            other => other?,
        };
        let key = secret_key(&grant, folder, name);
        if let Some(project_key) = &grant.project_key {
            project_key.open(&sealed, &aad(&key)).map_err(|_| {
                InvalidInput::new(
                    "ciphertext",
                    "does not open under the project key with this secret's project, environment, \
                     path and name as associated data; encrypt it so (the CLI and latchkey-client do)",
                )
            })?;
        }
        self.write(&key, sealed, WriteMode::Upsert, folder).await
    }

    /// Encrypts a plaintext value under the project key and stores it.
    pub async fn set_raw(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        value: &str,
    ) -> Result<Secret, SecretsError> {
        self.set_raw_as(caller, folder, name, value, WriteMode::Upsert)
            .await
    }

    /// [`SecretsApp::set_raw`] under `mode`: Infisical's create refuses an
    /// existing secret (`AlreadyExists`) and its update a missing one
    /// (`NotFound`), both decided after authorisation.
    pub async fn set_raw_as(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
        value: &str,
        mode: WriteMode,
    ) -> Result<Secret, SecretsError> {
        check_value(value)?;
        let grant = self
            .authorize(caller, folder, Intent::write(Form::Raw))
            .await?;
        let project_key = raw_project_key(&grant)?;
        let key = secret_key(&grant, folder, name);
        let sealed = project_key
            .seal(value.as_bytes(), &aad(&key), &mut rand::rngs::OsRng)
            .map_err(|e| SecretsError::Encryption(format!("encrypting {}: {e}", key.name)))?;
        self.write(&key, sealed, mode, folder).await
    }

    async fn write(
        &self,
        key: &SecretKey,
        sealed: Sealed,
        mode: WriteMode,
        folder: &Folder,
    ) -> Result<Secret, SecretsError> {
        match self.store.put(key, sealed, mode).await? {
            Some(secret) => Ok(secret),
            None if mode == WriteMode::CreateOnly => Err(SecretsError::AlreadyExists(format!(
                "secret {:?} already exists in {}:{}; update it instead",
                key.name.as_str(),
                folder.environment,
                folder.path
            ))),
            None => Err(not_found(folder, &key.name)),
        }
    }

    /// Deletes a secret; returns it as it was (its ciphertext, which a
    /// write-only caller cannot open).
    pub async fn delete(
        &self,
        caller: &Caller,
        folder: &Folder,
        name: &SecretName,
    ) -> Result<Secret, SecretsError> {
        let grant = self
            .authorize(caller, folder, Intent::write(Form::Sealed))
            .await?;
        let key = secret_key(&grant, folder, name);
        self.store
            .delete(&key)
            .await?
            .ok_or_else(|| not_found(folder, name))
    }

    /// Describes the caller's own service token, checked as any call is
    /// (Infisical's `GET /api/v2/service-token`); uses none of its uses.
    pub async fn describe_token(
        &self,
        caller: &Caller,
    ) -> Result<ServiceTokenDetails, SecretsError> {
        self.authorizer
            .describe(caller.token.clone(), caller.ip)
            .await?
            .ok_or_else(|| {
                AccessError::new(
                    Reason::PermissionDenied,
                    "this describes service tokens; a machine identity's access token has none to describe",
                )
                .into()
            })
    }

    /// Renews a machine identity access token on its holder's behalf
    /// (Infisical's Token Auth renew): the auth service's own rules apply.
    pub async fn renew_access_token(
        &self,
        token: BearerToken,
        ip: Option<IpAddr>,
    ) -> Result<Renewed, SecretsError> {
        Ok(self.authorizer.renew(token, ip).await?)
    }

    /// Counts `count` encryptions made under `project_id`'s key outside a
    /// write, with the auth service that keeps each key's budget.
    pub async fn count_encryptions(
        &self,
        project_id: &latchkey_domain::model::ProjectId,
        count: u64,
    ) -> Result<(), SecretsError> {
        Ok(self.authorizer.count_encryptions(project_id, count).await?)
    }

    /// Revokes a machine identity access token by the token itself.
    pub async fn revoke_access_token(
        &self,
        token: BearerToken,
        ip: Option<IpAddr>,
    ) -> Result<(), SecretsError> {
        Ok(self.authorizer.revoke(token, ip).await?)
    }

    async fn authorize(
        &self,
        caller: &Caller,
        folder: &Folder,
        intent: Intent,
    ) -> Result<Grant, SecretsError> {
        Ok(self
            .authorizer
            .authorize(AuthorizationRequest {
                token: caller.token.clone(),
                client_ip: caller.ip,
                project_id: folder.project_id.clone(),
                environment: folder.environment.clone(),
                path: folder.path.clone(),
                action: intent.action,
                form: intent.form,
                recursive: intent.recursive,
            })
            .await?)
    }
}

/// What a use case asks the auth service to allow in a folder.
#[derive(Debug, Clone, Copy)]
struct Intent {
    action: Action,
    form: Form,
    /// A listing of the folders below too.
    recursive: bool,
}

impl Intent {
    fn read(form: Form) -> Self {
        Self {
            action: Action::Read,
            form,
            recursive: false,
        }
    }

    fn write(form: Form) -> Self {
        Self {
            action: Action::Write,
            form,
            recursive: false,
        }
    }
}

fn not_found(folder: &Folder, name: &SecretName) -> SecretsError {
    SecretsError::NotFound(format!(
        "secret {:?} not found in {}:{}",
        name.as_str(),
        folder.environment,
        folder.path
    ))
}
