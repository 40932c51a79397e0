//! The secrets service's use cases. Each authorises **before** touching the
//! store, so `NOT_FOUND` never tells an unauthorised caller that a secret exists.

use std::net::IpAddr;
use std::sync::Arc;

use crate::error::SecretsError;
use crate::store::CachedSecretStore;
use latchkey_domain::access::Form;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{
    Folder, PlainSecret, Principal, Secret, SecretKey, WriteMode, check_envelope, check_value,
};
use latchkey_domain::path::SecretName;
use latchkey_domain::ports::{
    AuthorizationRequest, AuthorizeError, Authorizer, BearerToken, Grant, LoginCredentials,
    Renewed, ServiceTokenDetails,
};
use latchkey_domain::scope::Action;

mod keys;

pub use keys::raw_project_key;
use keys::{aad, decrypt, secret_key};
use latchkey_domain::audit::SecretRef;
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_service_kit::audit::{AuditLog, Trail};

/// Who is calling: their token, and the call's audit trail (which knows
/// their address).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The bearer token.
    pub token: BearerToken,
    /// The call's event in the making; the use cases say what it is about.
    pub trail: Arc<Trail>,
}

impl Caller {
    /// `token` presented on the call `trail` records.
    #[must_use]
    pub fn new(token: BearerToken, trail: Arc<Trail>) -> Self {
        trail.presented(&token);
        Self { token, trail }
    }

    /// The client address, when known.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.trail.ip()
    }
}

/// The secrets service's use cases over an [`Authorizer`].
#[derive(Debug)]
pub struct SecretsApp {
    store: CachedSecretStore,
    authorizer: Arc<dyn Authorizer>,
    audit: AuditLog,
}

impl SecretsApp {
    /// Wires the use cases.
    #[must_use]
    pub fn new(store: CachedSecretStore, authorizer: Arc<dyn Authorizer>, audit: AuditLog) -> Self {
        Self {
            store,
            authorizer,
            audit,
        }
    }

    /// Where the transports record each call once it is answered.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Lists a folder (and the folders below it that the token may read,
    /// when `recursive`), as ciphertext for the key holder to open.
    pub async fn list(
        &self,
        caller: &Caller,
        folder: &Folder,
        recursive: bool,
    ) -> Result<(Grant, Arc<[Secret]>), SecretsError> {
        let (grant, secrets) = self
            .authorized_list(caller, folder, recursive, Form::Sealed)
            .await?;
        caller.trail.secrets(secrets.iter().map(listed));
        Ok((grant, secrets))
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
            .collect::<Vec<_>>();
        caller
            .trail
            .secrets(plain.iter().map(|p| listed(&p.secret)));
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
        caller.trail.kind("secret.list");
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
        caller.trail.kind("secret.read");
        caller.trail.secrets([named(name)]);
        let grant = self.authorize(caller, folder, Intent::read(form)).await?;
        let key = secret_key(&grant, folder, name);
        let secret = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| not_found(folder, name))?;
        caller.trail.secrets([written(&secret)]);
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
        caller.trail.kind("secret.write");
        caller.trail.secrets([named(name)]);
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
        self.write(caller, &key, sealed, WriteMode::Upsert, folder)
            .await
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
        caller.trail.kind("secret.write");
        caller.trail.secrets([named(name)]);
        check_value(value)?;
        let grant = self
            .authorize(caller, folder, Intent::write(Form::Raw))
            .await?;
        let project_key = raw_project_key(&grant)?;
        let key = secret_key(&grant, folder, name);
        let sealed = project_key
            .seal(value.as_bytes(), &aad(&key), &mut rand::rngs::OsRng)
            .map_err(|e| SecretsError::Encryption(format!("encrypting {}: {e}", key.name)))?;
        self.write(caller, &key, sealed, mode, folder).await
    }

    async fn write(
        &self,
        caller: &Caller,
        key: &SecretKey,
        sealed: Sealed,
        mode: WriteMode,
        folder: &Folder,
    ) -> Result<Secret, SecretsError> {
        match self.store.put(key, sealed, mode).await? {
            Some(secret) => {
                caller.trail.secrets([written(&secret)]);
                Ok(secret)
            }
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
        caller.trail.kind("secret.delete");
        caller.trail.secrets([named(name)]);
        let grant = self
            .authorize(caller, folder, Intent::write(Form::Sealed))
            .await?;
        let key = secret_key(&grant, folder, name);
        let deleted = self
            .store
            .delete(&key)
            .await?
            .ok_or_else(|| not_found(folder, name))?;
        caller.trail.secrets([written(&deleted)]);
        Ok(deleted)
    }

    /// Describes the caller's own service token, checked as any call is
    /// (Infisical's `GET /api/v2/service-token`); uses none of its uses.
    pub async fn describe_token(
        &self,
        caller: &Caller,
    ) -> Result<ServiceTokenDetails, SecretsError> {
        caller.trail.kind("service_token.describe");
        let details = self
            .authorizer
            .describe(caller.token.clone(), caller.ip())
            .await?
            .ok_or_else(|| {
                AccessError::new(
                    Reason::PermissionDenied,
                    "this describes service tokens; a machine identity's access token has none to describe",
                )
            })?;
        caller.trail.place(details.project_id.as_str(), "", "");
        caller
            .trail
            .verified(&latchkey_domain::model::Principal::ServiceToken(
                latchkey_domain::model::ServiceTokenId::from_stored(details.id.clone()),
            ));
        Ok(details)
    }

    /// Renews a machine identity access token on its holder's behalf
    /// (Infisical's Token Auth renew): the auth service's own rules apply.
    pub async fn renew_access_token(&self, caller: &Caller) -> Result<Renewed, SecretsError> {
        caller.trail.kind("access_token.renew");
        Ok(self
            .authorizer
            .renew(caller.token.clone(), caller.ip())
            .await?)
    }

    /// Trades a machine identity's login credentials for an access token
    /// on the client's behalf (Infisical's logins): the auth service's
    /// rules apply.
    pub async fn login(
        &self,
        trail: &Trail,
        credentials: LoginCredentials,
    ) -> Result<Renewed, SecretsError> {
        trail.kind("identity.login");
        let logged_in = self.authorizer.login(credentials, trail.ip()).await?;
        trail.verified(&Principal::Identity(logged_in.identity_id));
        Ok(logged_in.token)
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
    pub async fn revoke_access_token(&self, caller: &Caller) -> Result<(), SecretsError> {
        caller.trail.kind("access_token.revoke");
        Ok(self
            .authorizer
            .revoke(caller.token.clone(), caller.ip())
            .await?)
    }

    async fn authorize(
        &self,
        caller: &Caller,
        folder: &Folder,
        intent: Intent,
    ) -> Result<Grant, SecretsError> {
        let project = folder.project_id.as_ref().map_or("", |p| p.as_str());
        caller
            .trail
            .place(project, folder.environment.as_str(), folder.path.as_str());
        let decided = self
            .authorizer
            .authorize(AuthorizationRequest {
                token: caller.token.clone(),
                client_ip: caller.ip(),
                project_id: folder.project_id.clone(),
                environment: folder.environment.clone(),
                path: folder.path.clone(),
                action: intent.action,
                form: intent.form,
                recursive: intent.recursive,
            })
            .await;
        if let Err(AuthorizeError::Denied(denial)) = &decided
            && let Some(principal) = &denial.principal
        {
            // Denied past verification: the trail names whose token it was.
            caller.trail.verified(principal);
            if let Some(project) = &denial.project_id {
                caller.trail.place(
                    project.as_str(),
                    folder.environment.as_str(),
                    folder.path.as_str(),
                );
            }
        }
        let grant = decided?;
        caller.trail.place(
            grant.project_id.as_str(),
            folder.environment.as_str(),
            folder.path.as_str(),
        );
        caller.trail.verified(&grant.principal);
        Ok(grant)
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

/// A secret named in a call, before anything about it is known.
fn named(name: &SecretName) -> SecretRef {
    SecretRef {
        name: name.as_str().to_owned(),
        version: None,
    }
}

/// A secret in a listing: its name only.
fn listed(secret: &Secret) -> SecretRef {
    named(&secret.key.name)
}

/// A secret read, written or deleted, at its version.
fn written(secret: &Secret) -> SecretRef {
    SecretRef {
        name: secret.key.name.as_str().to_owned(),
        version: Some(secret.version),
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
