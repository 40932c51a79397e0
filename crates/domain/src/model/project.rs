//! Projects: the unit secrets, keys and allowlists belong to.

use chrono::{DateTime, Utc};

use super::ProjectId;
use crate::InvalidInput;
use crate::crypto::Sealed;
use crate::ip::TrustedIps;
use crate::path::Environment;
use crate::scope::Scopes;

/// A project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// Its display name.
    pub name: String,
    /// End-to-end encrypted: the server never decrypts.
    pub e2ee: bool,
    /// The project key wrapped under the root key.
    pub wrapped_key: Sealed,
    /// Encryptions performed under the project key.
    pub encryption_count: u64,
    /// The project's IP allowlist.
    pub trusted_ips: TrustedIps,
    /// Environments, oldest first: (slug, name).
    pub environments: Vec<(Environment, String)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl Project {
    /// Checks that every scope names one of the project's environments; the
    /// error names the first scope that does not, and lists those that exist.
    pub fn check_environments_exist(&self, scopes: &Scopes) -> Result<(), InvalidInput> {
        let Some((i, scope)) = scopes.as_slice().iter().enumerate().find(|(_, scope)| {
            !self
                .environments
                .iter()
                .any(|(e, _)| *e == scope.environment)
        }) else {
            return Ok(());
        };
        let have: Vec<_> = self.environments.iter().map(|(e, _)| e.as_str()).collect();
        Err(InvalidInput::new(
            format!("scopes[{i}].environment"),
            format!(
                "environment {:?} does not exist in project {}; it has {}",
                scope.environment.as_str(),
                self.id,
                have.join(", ")
            ),
        ))
    }
}

/// A project about to be created.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Its id.
    pub id: ProjectId,
    /// Its display name.
    pub name: String,
    /// End-to-end encrypted.
    pub e2ee: bool,
    /// The project key wrapped under the root key.
    pub wrapped_key: Sealed,
    /// Initial environments: (slug, name).
    pub environments: Vec<(Environment, String)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;

    fn project(envs: &[&str]) -> Project {
        Project {
            id: ProjectId::from_stored("p1".to_owned()),
            name: "p".to_owned(),
            e2ee: false,
            wrapped_key: Sealed {
                ciphertext: vec![],
                iv: vec![],
                tag: vec![],
            },
            encryption_count: 0,
            trusted_ips: TrustedIps::default(),
            environments: envs
                .iter()
                .map(|e| (Environment::parse(e).unwrap(), (*e).to_owned()))
                .collect(),
            created_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    #[test]
    fn scopes_in_existing_environments_pass() {
        let scopes = Scopes::new(vec![
            Scope::new("dev", "/**").unwrap(),
            Scope::new("prod", "/a").unwrap(),
        ]);
        assert!(
            project(&["dev", "prod"])
                .check_environments_exist(&scopes)
                .is_ok()
        );
    }

    #[test]
    fn a_scope_in_a_missing_environment_is_named_with_the_ones_that_exist() {
        let scopes = Scopes::new(vec![
            Scope::new("dev", "/**").unwrap(),
            Scope::new("staging", "/**").unwrap(),
        ]);
        let err = project(&["dev", "prod"])
            .check_environments_exist(&scopes)
            .unwrap_err();
        assert_eq!(err.field, "scopes[1].environment");
        assert_eq!(
            err.message,
            "environment \"staging\" does not exist in project p1; it has dev, prod"
        );
    }
}
