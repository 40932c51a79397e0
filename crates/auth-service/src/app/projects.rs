//! Projects: their environments and IP allowlist.

use latchkey_domain::crypto::WireKey;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{NewProject, Project, ProjectId};
use latchkey_domain::path::Environment;
use latchkey_store::StoreError;

use super::{AuthApp, Caller, Freshness, admin::AdminScope};
use crate::error::AuthError;
use latchkey_domain::model::DisplayName;

impl AuthApp {
    /// Creates a project with the default environments and a fresh wrapped key.
    pub async fn create_project(
        &self,
        caller: &Caller,
        name: DisplayName,
        e2ee: bool,
    ) -> Result<Project, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        let id = ProjectId::generate();
        let key = WireKey::generate(&mut rand::rngs::OsRng);
        let environments = Environment::DEFAULTS
            .iter()
            .map(|(slug, display)| Environment::parse(slug).map(|e| (e, (*display).to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        self.store
            .insert_project(NewProject {
                wrapped_key: self
                    .root_key
                    .wrap(id.as_str(), &key, &mut rand::rngs::OsRng)
                    .map_err(|e| AuthError::internal("wrapping a project key", e))?,
                id: id.clone(),
                name: name.into_string(),
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
    pub async fn project(&self, caller: &Caller, id: &ProjectId) -> Result<Project, AuthError> {
        self.admin_of(caller, AdminScope::Project(id)).await?;
        self.load_project(id, Freshness::Fresh).await
    }

    /// One project, or `NOT_FOUND`, deciding nothing.
    pub(super) async fn load_project(
        &self,
        id: &ProjectId,
        freshness: Freshness,
    ) -> Result<Project, AuthError> {
        self.store
            .project(id, freshness)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("project \"{id}\" not found")))
    }

    /// Every project.
    pub async fn projects(&self, caller: &Caller) -> Result<Vec<Project>, AuthError> {
        self.admin_of(caller, AdminScope::Org).await?;
        Ok(self.store.projects().await?)
    }

    /// Adds an environment to a project.
    pub async fn create_environment(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        slug: &Environment,
        name: DisplayName,
    ) -> Result<Project, AuthError> {
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
        self.store
            .insert_environment(project_id, slug, name.as_str())
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
        project_id: &ProjectId,
        ips: &TrustedIps,
    ) -> Result<Project, AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        admin.require_unscoped("changing the project's IP allowlist")?;
        let changed = self.store.set_project_trusted_ips(project_id, ips).await?;
        if !changed {
            return Err(AuthError::NotFound(format!(
                "project \"{project_id}\" not found"
            )));
        }
        self.load_project(project_id, Freshness::Fresh).await
    }
}
