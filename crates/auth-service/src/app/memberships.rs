//! Project memberships: an identity's role in a project, optionally
//! narrowed by scopes.

use latchkey_domain::identity::ProjectRole;
use latchkey_domain::model::{IdentityId, Membership, ProjectId};
use latchkey_domain::scope::Scopes;

use super::{AuthApp, Caller, Freshness, admin::AdminScope};
use crate::error::AuthError;

impl AuthApp {
    /// Gives an identity a role in a project, optionally narrowed by scopes.
    pub async fn add_identity_to_project(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        identity_id: &IdentityId,
        role: ProjectRole,
        scopes: Option<Scopes>,
    ) -> Result<Membership, AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        match &scopes {
            None => admin.require_unscoped("an unscoped membership")?,
            Some(scopes) => admin.require_covers(scopes, "the membership's scopes")?,
        }
        let project = self.load_project(project_id, Freshness::Fresh).await?;
        self.load_identity(identity_id).await?;
        if let Some(scopes) = &scopes {
            project.check_environments_exist(scopes)?;
        }
        let record = Membership {
            project_id: project.id,
            identity_id: identity_id.to_owned(),
            role,
            scopes,
            created_at: self.clock.now(),
        };
        self.store.insert_membership(&record).await.map_err(|e| AuthError::conflict_or(e, || format!("identity {identity_id} is already a member of project {project_id}; remove it first to change its role")))?;
        Ok(record)
    }

    /// Removes an identity from a project.
    pub async fn remove_identity_from_project(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        identity_id: &IdentityId,
    ) -> Result<(), AuthError> {
        let admin = self
            .admin_of(caller, AdminScope::Project(project_id))
            .await?;
        if admin.scopes().is_some()
            && let Some(membership) = self
                .store
                .membership(project_id, identity_id, Freshness::Fresh)
                .await?
        {
            match &membership.scopes {
                None => admin.require_unscoped("removing an unscoped membership")?,
                Some(scopes) => admin.require_covers(scopes, "the membership's scopes")?,
            }
        }
        let removed = self
            .store
            .delete_membership(project_id, identity_id)
            .await?;
        if !removed {
            return Err(AuthError::NotFound(format!(
                "identity {identity_id:?} is not a member of project {project_id:?}"
            )));
        }
        Ok(())
    }
}
