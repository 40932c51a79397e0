//! Client-side crypto for service tokens: the project key is opened with
//! the token's key part, and every secret is sealed and opened with the
//! associated data of the location the caller *asked* for, so a server
//! cannot pass off a ciphertext from another folder, environment, name or
//! project as the one requested.

use latchkey_domain::crypto::{Sealed, WireKey, secret_aad};
use latchkey_domain::token::ServiceTokenSecret;
use latchkey_proto::secrets::v1 as pb;

use crate::error::ClientError;

/// The project key, opened with the service token's key part.
pub fn open_project_key(
    token: &ServiceTokenSecret,
    encrypted: Option<Sealed>,
) -> Result<WireKey, ClientError> {
    let sealed = encrypted.ok_or_else(|| {
        ClientError::Crypto("the server sent no encrypted project key".to_owned())
    })?;
    let bytes = token
        .key()
        .open(&sealed, b"")
        .map_err(|_| ClientError::DamagedKeyPart)?;
    WireKey::from_bytes(&bytes).map_err(|e| ClientError::Crypto(e.to_string()))
}

/// A secret's value sealed for `project_id`, `environment`, `path`, `name`.
pub fn seal(
    key: &WireKey,
    project_id: &str,
    environment: &str,
    path: &str,
    name: &str,
    value: &str,
) -> Result<Sealed, ClientError> {
    let aad = secret_aad(project_id, environment, path, name);
    key.seal(value.as_bytes(), &aad, &mut rand::rngs::OsRng)
        .map_err(|e| ClientError::Crypto(format!("encrypting {name}: {e}")))
}

/// A decrypted secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Its environment.
    pub environment: String,
    /// Its folder.
    pub path: String,
    /// Its version, from 1.
    pub version: u64,
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSecret")
            .field("name", &self.name)
            .field("environment", &self.environment)
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl From<pb::SecretRaw> for PlainSecret {
    fn from(raw: pb::SecretRaw) -> Self {
        Self {
            name: raw.name,
            value: raw.value,
            environment: raw.environment,
            path: raw.secret_path,
            version: raw.version,
        }
    }
}

/// What a read asked for, which each returned secret must match before its
/// labels become associated data.
#[derive(Debug, Clone, Copy)]
pub struct Requested<'a> {
    /// The project the answer must be for.
    pub project_id: &'a str,
    /// The environment asked for.
    pub environment: &'a str,
    /// The folder asked for, normalised as the server stores it.
    pub path: &'a str,
    /// The one secret asked for, or `None` for a listing.
    pub name: Option<&'a str>,
    /// Whether folders below `path` were asked for too.
    pub recursive: bool,
}

impl Requested<'_> {
    /// Checks that the server answered for the project asked for (when one
    /// was named).
    pub fn check_project(asked: Option<&str>, answered: &str) -> Result<(), ClientError> {
        match asked {
            Some(asked) if !asked.is_empty() && asked != answered => Err(refused(&format!(
                "the server answered for project {answered}, not {asked}"
            ))),
            _ => Ok(()),
        }
    }

    /// Opens `secret` with `key`, if it is what was asked for.
    pub fn open(&self, key: &WireKey, secret: &pb::Secret) -> Result<PlainSecret, ClientError> {
        let inside = secret.secret_path == self.path
            || (self.recursive
                && secret
                    .secret_path
                    .strip_prefix(self.path)
                    .is_some_and(|rest| self.path == "/" || rest.starts_with('/')));
        if secret.environment != self.environment
            || !inside
            || self.name.is_some_and(|n| n != secret.name)
        {
            return Err(refused(&format!(
                "the server returned {}:{} {} for a read of {}:{}",
                secret.environment, secret.secret_path, secret.name, self.environment, self.path
            )));
        }
        let aad = secret_aad(
            self.project_id,
            self.environment,
            &secret.secret_path,
            &secret.name,
        );
        let sealed = Sealed {
            ciphertext: secret.ciphertext.clone(),
            iv: secret.iv.clone(),
            tag: secret.tag.clone(),
        };
        let bytes = key.open(&sealed, &aad).map_err(|_| {
            ClientError::Crypto(format!(
                "secret {} does not decrypt with the project key",
                secret.name
            ))
        })?;
        let value = String::from_utf8(bytes).map_err(|_| {
            ClientError::Crypto(format!("secret {} is not UTF-8 text", secret.name))
        })?;
        Ok(PlainSecret {
            name: secret.name.clone(),
            value,
            environment: secret.environment.clone(),
            path: secret.secret_path.clone(),
            version: secret.version,
        })
    }
}

fn refused(what: &str) -> ClientError {
    ClientError::Crypto(format!("{what}: refusing the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "7a3e5c1e-0d2b-4c5e-9a3f-2f1d0c9b8a7e";

    fn stored(key: &WireKey, env: &str, path: &str, name: &str, value: &str) -> pb::Secret {
        let sealed = seal(key, PROJECT, env, path, name, value).unwrap();
        pb::Secret {
            name: name.to_owned(),
            environment: env.to_owned(),
            secret_path: path.to_owned(),
            ciphertext: sealed.ciphertext,
            iv: sealed.iv,
            tag: sealed.tag,
            version: 1,
        }
    }

    fn listing(path: &str, recursive: bool) -> Requested<'_> {
        Requested {
            project_id: PROJECT,
            environment: "dev",
            path,
            name: None,
            recursive,
        }
    }

    #[test]
    fn a_secret_sealed_for_a_location_opens_when_read_there() {
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        let secret = stored(&key, "dev", "/app", "DB", "postgres://x");
        let plain = listing("/app", false).open(&key, &secret).unwrap();
        assert_eq!(
            (plain.name.as_str(), plain.value.as_str()),
            ("DB", "postgres://x")
        );
        let below = listing("/", true).open(&key, &secret).unwrap();
        assert_eq!(below.path, "/app");
        let deeper = stored(&key, "dev", "/app/sub", "X", "v");
        assert!(listing("/app", true).open(&key, &deeper).is_ok());
        assert!(
            listing("/app", false).open(&key, &deeper).is_err(),
            "a subfolder only answers a recursive read"
        );
    }

    #[test]
    fn an_answer_from_elsewhere_than_asked_is_refused() {
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        let elsewhere = [
            stored(&key, "prod", "/app", "DB", "v"),
            stored(&key, "dev", "/other", "DB", "v"),
            stored(&key, "dev", "/appx", "DB", "v"),
        ];
        for secret in &elsewhere {
            let err = listing("/app", true).open(&key, secret).unwrap_err();
            assert!(matches!(err, ClientError::Crypto(m) if m.contains("refusing")));
        }
        let one = Requested {
            name: Some("OTHER"),
            ..listing("/app", false)
        };
        assert!(
            one.open(&key, &stored(&key, "dev", "/app", "DB", "v"))
                .is_err()
        );
    }

    #[test]
    fn a_ciphertext_relabelled_by_the_server_does_not_open() {
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        // Sealed for /a, served as if it lived in /b.
        let mut moved = stored(&key, "dev", "/a", "DB", "v");
        moved.secret_path = "/b".to_owned();
        let err = listing("/b", false).open(&key, &moved).unwrap_err();
        assert!(matches!(err, ClientError::Crypto(m) if m.contains("does not decrypt")));
    }

    #[test]
    fn an_answer_for_another_project_is_refused() {
        assert!(Requested::check_project(Some(PROJECT), PROJECT).is_ok());
        assert!(Requested::check_project(None, "any").is_ok());
        assert!(Requested::check_project(Some(PROJECT), "other").is_err());
    }

    #[test]
    fn a_project_key_under_another_tokens_key_part_is_a_damaged_key_part() {
        let token = ServiceTokenSecret::generate(&mut rand::rngs::OsRng);
        let other = ServiceTokenSecret::generate(&mut rand::rngs::OsRng);
        let project_key = WireKey::generate(&mut rand::rngs::OsRng);
        let sealed = other
            .key()
            .seal(project_key.expose().as_bytes(), b"", &mut rand::rngs::OsRng)
            .unwrap();
        assert!(matches!(
            open_project_key(&token, Some(sealed)),
            Err(ClientError::DamagedKeyPart)
        ));
        assert!(matches!(
            open_project_key(&token, None),
            Err(ClientError::Crypto(_))
        ));
    }

    #[test]
    fn plain_secret_debug_omits_the_value() {
        let plain = PlainSecret {
            name: "DB".to_owned(),
            value: "hunter2".to_owned(),
            environment: "dev".to_owned(),
            path: "/".to_owned(),
            version: 1,
        };
        assert!(!format!("{plain:?}").contains("hunter2"));
    }
}
