//! Where a secret lives and the project key that opens it: the key of a
//! secret in a granted folder, the associated data binding its ciphertext
//! there, and opening it with a raw grant's project key.

use latchkey_domain::crypto::{WireKey, secret_aad};
use latchkey_domain::model::{Folder, PlainSecret, Secret, SecretKey};
use latchkey_domain::path::SecretName;
use latchkey_domain::ports::Grant;

use crate::error::SecretsError;

pub(super) fn secret_key(grant: &Grant, folder: &Folder, name: &SecretName) -> SecretKey {
    SecretKey {
        project_id: grant.project_id.clone(),
        environment: folder.environment.clone(),
        path: folder.path.clone(),
        name: name.clone(),
    }
}

pub(super) fn aad(key: &SecretKey) -> Vec<u8> {
    secret_aad(
        key.project_id.as_str(),
        key.environment.as_str(),
        key.path.as_str(),
        key.name.as_str(),
    )
}

/// Opens a secret with the project key a raw grant carries.
pub(super) fn decrypt(grant: &Grant, secret: Secret) -> Result<PlainSecret, SecretsError> {
    let project_key = raw_project_key(grant)?;
    let undecryptable = || {
        SecretsError::Undecryptable(format!(
            "secret {} in {}:{} of project {} does not decrypt under the project key",
            secret.key.name, secret.key.environment, secret.key.path, secret.key.project_id
        ))
    };
    let bytes = project_key
        .open(&secret.sealed, &aad(&secret.key))
        .map_err(|_| undecryptable())?;
    let value = String::from_utf8(bytes).map_err(|_| undecryptable())?;
    Ok(PlainSecret { secret, value })
}

/// The project key a raw grant carries; the auth service always sends it
/// with one, so its absence is [`SecretsError::NoProjectKey`].
pub fn raw_project_key(grant: &Grant) -> Result<&WireKey, SecretsError> {
    grant.project_key.as_ref().ok_or(SecretsError::NoProjectKey)
}
