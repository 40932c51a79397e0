//! Whose events a reader of the audit trail may see: an org admin every
//! event; a project admin its projects' events, and where its membership is
//! narrowed by scopes, only those whose environment and path lie inside
//! them (events about the project as a whole are for unscoped admins).

use crate::model::Principal;
use crate::path::{Environment, SecretPath};
use crate::scope::{PathGlob, Scopes};

use super::AuditEvent;

/// Who reads the audit trail, and how far that reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditReader {
    /// The reader's identity.
    pub principal: Principal,
    /// Whose events it may see.
    pub reach: AuditReach,
}

/// How far a reader of the audit trail reaches.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditReach {
    /// An org admin: every event.
    All,
    /// A project admin of these projects.
    Projects(Vec<ProjectReach>),
}

/// One project an admin may read the events of.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectReach {
    /// The project.
    pub project_id: String,
    /// The membership's scopes; `None` is the whole project.
    pub scopes: Option<Scopes>,
}

impl AuditReach {
    /// The projects to ask the database for; `None` is every project.
    #[must_use]
    pub fn project_ids(&self) -> Option<Vec<String>> {
        match self {
            AuditReach::All => None,
            AuditReach::Projects(projects) => {
                Some(projects.iter().map(|p| p.project_id.clone()).collect())
            }
        }
    }

    /// Whether the reader may see `event`.
    #[must_use]
    pub fn allows(&self, event: &AuditEvent) -> bool {
        let AuditReach::Projects(projects) = self else {
            return true;
        };
        projects
            .iter()
            .filter(|p| p.project_id == event.project_id && !event.project_id.is_empty())
            .any(|p| match &p.scopes {
                None => true,
                Some(scopes) => match (
                    Environment::parse(&event.environment),
                    SecretPath::parse(&event.path),
                ) {
                    (Ok(environment), Ok(path)) => scopes.allows(&environment, &path),
                    _ => false,
                },
            })
    }

    /// Whether only org admins get this far (e.g. verifying every chain).
    #[must_use]
    pub fn is_all(&self) -> bool {
        matches!(self, AuditReach::All)
    }
}

/// Whether `event`'s path matches `glob` (a listing's path filter).
#[must_use]
pub fn path_matches(glob: &PathGlob, event: &AuditEvent) -> bool {
    SecretPath::parse(&event.path).is_ok_and(|path| glob.matches(&path))
}
