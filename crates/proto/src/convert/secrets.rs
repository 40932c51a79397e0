//! `latchkey.secrets.v1` to and from the domain.

use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::model::{Folder, PlainSecret, Secret};
use latchkey_domain::path::SecretName;

use crate::secrets::v1 as pb;

/// The folder every secrets request names; a blank project is the token's own.
fn folder(project_id: &str, environment: &str, path: &str) -> Result<Folder, InvalidInput> {
    Folder::parse(project_id, "project_id", environment, path)
}

/// A listing: the folder and whether it descends into subfolders.
impl TryFrom<&pb::ListSecretsRequest> for (Folder, bool) {
    type Error = InvalidInput;
    fn try_from(req: &pb::ListSecretsRequest) -> Result<Self, InvalidInput> {
        Ok((
            folder(&req.project_id, &req.environment, &req.secret_path)?,
            req.recursive,
        ))
    }
}

/// Requests naming one secret in a folder.
macro_rules! secret_request {
    ($($request:ident),*) => {$(
        impl TryFrom<&pb::$request> for (Folder, SecretName) {
            type Error = InvalidInput;
            fn try_from(req: &pb::$request) -> Result<Self, InvalidInput> {
                Ok((
                    folder(&req.project_id, &req.environment, &req.secret_path)?,
                    SecretName::parse(&req.name)?,
                ))
            }
        }
    )*};
}

secret_request!(
    GetSecretRequest,
    SetSecretRequest,
    SetSecretRawRequest,
    DeleteSecretRequest
);

/// The client-sealed value of a write, checked by the use case.
impl From<pb::SetSecretRequest> for Sealed {
    fn from(req: pb::SetSecretRequest) -> Self {
        Sealed {
            ciphertext: req.ciphertext,
            iv: req.iv,
            tag: req.tag,
        }
    }
}

impl From<&Secret> for pb::Secret {
    fn from(secret: &Secret) -> Self {
        pb::Secret {
            name: secret.key.name.as_str().to_owned(),
            environment: secret.key.environment.as_str().to_owned(),
            secret_path: secret.key.path.as_str().to_owned(),
            ciphertext: secret.sealed.ciphertext.clone(),
            iv: secret.sealed.iv.clone(),
            tag: secret.sealed.tag.clone(),
            version: secret.version,
        }
    }
}

impl From<&PlainSecret> for pb::SecretRaw {
    fn from(plain: &PlainSecret) -> Self {
        pb::SecretRaw {
            name: plain.secret.key.name.as_str().to_owned(),
            environment: plain.secret.key.environment.as_str().to_owned(),
            secret_path: plain.secret.key.path.as_str().to_owned(),
            value: plain.value.clone(),
            version: plain.secret.version,
        }
    }
}
