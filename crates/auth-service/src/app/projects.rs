//! Projects: their environments and IP allowlist.

use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::WireKey;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::path::Environment;
use latchkey_domain::scope::Scopes;
use latchkey_store::StoreError;
use latchkey_store::auth::{NewProject, ProjectRecord};

use super::{AuthApp, Caller, Freshness, admin::AdminScope};
use crate::error::AuthError;
use latchkey_domain::model::DisplayName;

impl AuthApp {
    /// Creates a project with the default environments and a fresh wrapped key.
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: &str,
        e2ee: bool,
    ) -> Result<ProjectRecord, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let name = DisplayName::parse(name, "name")?.into_string();
        let id = uuid::Uuid::new_v4().to_string();
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        let environments = Environment::DEFAULTS
            .iter()
            .map(|(slug, display)| Environment::parse(slug).map(|e| (e, (*display).to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .insert_project(NewProject {
                wrapped_key: self
                    .root_key
                    .wrap(&id, &key, &mut rand::rngs::OsRng)
                    .map_err(|e| AuthError::internal("wrapping a project key", e))?,
                id: id.clone(),
                name,
                e2ee,
                environments,
                created_at: self.clock.now(),
            })
            .await?;
        let project = self.load_project(&id, Freshness::Fresh).await?;
        tracing::info!(project.id = %project.id, e2ee = project.e2ee, "project created");
        Ok(project)
    }

    /// One project, to its admins; or `NOT_FOUND`.
    pub async fn project(&self, caller: &Caller, id: &str) -> Result<ProjectRecord, AuthError> {
        self.admin_of(caller, AdminScope::Project(id)).await?;
        self.load_project(id, Freshness::Fresh).await
    }

    /// One project, or `NOT_FOUND`, deciding nothing.
    pub(super) async fn load_project(
        &self,
        id: &str,
        freshness: Freshness,
    ) -> Result<ProjectRecord, AuthError> {
        self.store
            .project(id, freshness)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project {id:?} not found")))
    }

    /// Every project.
    pub async fn projects(&self, caller: &Caller) -> Result<Vec<ProjectRecord>, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        Ok(self.store.projects().await?)
    }

    /// Adds an environment to a project.
    pub async fn create_environment(
        &self,
        caller: &Caller,
        project_id: &str,
        slug: &Environment,
        name: &str,
    ) -> Result<ProjectRecord, AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        admin.require_unscoped("adding an environment")?;
        let project = self.load_project(project_id, Freshness::Fresh).await?;
        let exists = || {
            AuthError::Conflict(format!(
                "environment {:?} already exists in project {project_id}",
                slug.as_str()
            ))
        };
        if project.environments.iter().any(|(e, _)| e == slug) {
            return Err(exists());
        }
        let name = DisplayName::parse_or(name, "name", slug.as_str())?.into_string();
        self.store
            .insert_environment(project_id, slug, &name)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => exists(),
                other => other.into(),
            })?;
        self.load_project(project_id, Freshness::Fresh).await
    }

    /// Replaces a project's IP allowlist.
    pub async fn set_project_trusted_ips(
        &self,
        caller: &Caller,
        project_id: &str,
        ips: &TrustedIps,
    ) -> Result<ProjectRecord, AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        admin.require_unscoped("changing the project's IP allowlist")?;
        let changed = self.store.set_project_trusted_ips(project_id, ips).await?;
        if !changed {
            return Err(AuthError::NotFound(format!(
                "project {project_id:?} not found"
            )));
        }
        self.load_project(project_id, Freshness::Fresh).await
    }
}

pub(super) fn check_environments_exist(
    project: &ProjectRecord,
    scopes: &Scopes,
) -> Result<(), InvalidInput> {
    for (i, scope) in scopes.as_slice().iter().enumerate() {
        if !project
            .environments
            .iter()
            .any(|(e, _)| *e == scope.environment)
        {
            let have: Vec<_> = project
                .environments
                .iter()
                .map(|(e, _)| e.as_str())
                .collect();
            return Err(InvalidInput::new(
                format!("scopes[{i}].environment"),
                format!(
                    "environment {:?} does not exist in project {}; it has {}",
                    scope.environment.as_str(),
                    project.id,
                    have.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
