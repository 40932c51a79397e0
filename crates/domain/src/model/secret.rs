//! Secrets: ciphertexts at a location.

use chrono::{DateTime, Utc};

use super::ProjectId;
use crate::InvalidInput;
use crate::crypto::Sealed;
use crate::path::{Environment, SecretName, SecretPath};

/// The largest secret value accepted, in bytes (plaintext or ciphertext).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Checks a plaintext value a caller asks the server to encrypt.
pub fn check_value(value: &str) -> Result<(), InvalidInput> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(InvalidInput::new(
            "value",
            format!("is larger than {MAX_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Checks the shape of a client-sealed value: a 12- or 16-byte IV, a
/// 16-byte tag and at most [`MAX_VALUE_BYTES`] of ciphertext. Whether it
/// opens is for the key holder to find out.
pub fn check_envelope(sealed: &Sealed) -> Result<(), InvalidInput> {
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

/// When a write may happen: Infisical's create refuses an existing secret
/// and its update a missing one; Latchkey's own set writes either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or write the next version.
    Upsert,
    /// Only if the secret does not exist.
    CreateOnly,
    /// Only if the secret exists.
    UpdateOnly,
}

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    /// Its project.
    pub project_id: ProjectId,
    /// Its environment.
    pub environment: Environment,
    /// Its folder.
    pub path: SecretPath,
    /// Its name.
    pub name: SecretName,
}

/// A stored secret: the server holds only its ciphertext.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Its row id: opaque, fixed for the secret's life.
    pub id: String,
    /// Where it lives.
    pub key: SecretKey,
    /// The value under the project key.
    pub sealed: Sealed,
    /// Version, from 1.
    pub version: u64,
    /// First write.
    pub created_at: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
}

/// A folder in a project's environment, as a caller names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The project; `None` means the service token's own.
    pub project_id: Option<ProjectId>,
    /// The environment.
    pub environment: Environment,
    /// The folder path; a caller's empty path means `/`.
    pub path: SecretPath,
}

impl Folder {
    /// The folder a request names, as the caller wrote it: a blank project
    /// is the service token's own (errors name it `project_field`), a blank
    /// path is `/`.
    pub fn parse(
        project_id: &str,
        project_field: &str,
        environment: &str,
        path: &str,
    ) -> Result<Folder, InvalidInput> {
        Ok(Folder {
            project_id: ProjectId::parse_optional_uuid(project_id, project_field)?,
            environment: Environment::parse(environment)?,
            path: SecretPath::parse_or_root(path)?,
        })
    }
}

/// A secret the server decrypted; its `Debug` omits the value.
#[derive(Clone)]
pub struct PlainSecret {
    /// The stored secret.
    pub secret: Secret,
    /// The plaintext.
    pub value: String,
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSecret")
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(iv: usize, tag: usize, ciphertext: usize) -> Sealed {
        Sealed {
            ciphertext: vec![0; ciphertext],
            iv: vec![0; iv],
            tag: vec![0; tag],
        }
    }

    #[test]
    fn an_envelope_names_its_bad_part() {
        assert!(check_envelope(&sealed(12, 16, 10)).is_ok());
        assert!(check_envelope(&sealed(16, 16, MAX_VALUE_BYTES)).is_ok());
        assert_eq!(check_envelope(&sealed(8, 16, 1)).unwrap_err().field, "iv");
        assert_eq!(check_envelope(&sealed(12, 15, 1)).unwrap_err().field, "tag");
        let big = check_envelope(&sealed(12, 16, MAX_VALUE_BYTES + 1)).unwrap_err();
        assert_eq!(big.field, "ciphertext");
    }

    #[test]
    fn a_value_over_the_limit_is_refused() {
        assert!(check_value(&"a".repeat(MAX_VALUE_BYTES)).is_ok());
        assert_eq!(
            check_value(&"a".repeat(MAX_VALUE_BYTES + 1))
                .unwrap_err()
                .field,
            "value"
        );
    }

    #[test]
    fn plain_secret_debug_omits_the_value() {
        let secret = PlainSecret {
            secret: Secret {
                id: "s".into(),
                key: SecretKey {
                    project_id: ProjectId::from_stored("p".into()),
                    environment: Environment::parse("dev").unwrap(),
                    path: SecretPath::root(),
                    name: SecretName::parse("DB_URL").unwrap(),
                },
                sealed: Sealed::default(),
                version: 1,
                created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
                updated_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
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
