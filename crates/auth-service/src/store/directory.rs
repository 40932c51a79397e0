//! Projects, identities and memberships: what admins change and `Authorize` reads.

use latchkey_domain::crypto::Sealed;
use latchkey_domain::identity::TokenAuthConfig;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{
    AccessToken, Identity, IdentityId, Membership, NewProject, Project, ProjectId,
};
use latchkey_domain::path::Environment;
use latchkey_store::StoreError;

use super::{CachedAuthStore, Freshness};

impl CachedAuthStore {
    // --- projects ---------------------------------------------------------

    /// Inserts a project with its environments.
    pub async fn insert_project(&self, new: NewProject) -> Result<(), StoreError> {
        let id = new.id.clone();
        let result = self.store.insert_project(new).await;
        self.projects.remove(&id);
        result
    }

    /// One project, or `None`.
    pub async fn project(
        &self,
        id: &ProjectId,
        freshness: Freshness,
    ) -> Result<Option<Project>, StoreError> {
        let cached = freshness == Freshness::Cached;
        if cached {
            let project = self
                .projects
                .get_or_load(id.clone(), self.now(), cached, || self.store.project(id))
                .await?;
            return Ok(project.map(|p| self.with_pending_encryptions(p)));
        }
        // As a flush moves counts to the database, a fresh read sees each once.
        let _flush = self.flushing.read().await;
        let project = self
            .projects
            .get_or_load(id.clone(), self.now(), cached, || self.store.project(id))
            .await?;
        Ok(project.map(|p| self.with_pending_encryptions(p)))
    }

    fn with_pending_encryptions(&self, mut project: Project) -> Project {
        if let Some((n, _)) = self.project_encryptions.pending(&project.id) {
            project.encryption_count += n;
        }
        project
    }

    /// Every project, oldest first.
    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.store.projects().await
    }

    /// Adds an environment; [`StoreError::Conflict`] when the slug exists.
    pub async fn insert_environment(
        &self,
        project_id: &ProjectId,
        slug: &Environment,
        name: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .store
            .insert_environment(project_id, slug, name, self.now())
            .await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Replaces a project's wrapped key; false when there is no such project.
    pub async fn set_project_wrapped_key(
        &self,
        project_id: &ProjectId,
        wrapped: &Sealed,
    ) -> Result<bool, StoreError> {
        let result = self
            .store
            .set_project_wrapped_key(project_id, wrapped)
            .await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Replaces a project's IP allowlist; false when there is no such project.
    pub async fn set_project_trusted_ips(
        &self,
        project_id: &ProjectId,
        ips: &TrustedIps,
    ) -> Result<bool, StoreError> {
        let result = self.store.set_project_trusted_ips(project_id, ips).await;
        self.projects.remove(&project_id.clone());
        result
    }

    /// Counts `count` encryptions under the key of `project` (as read
    /// through this store, so its count includes what is still in memory),
    /// in memory until the next flush; returns the total this replica knows of.
    pub fn count_encryptions(&self, project: &Project, count: u64) -> u64 {
        self.project_encryptions
            .add_many(&project.id, count, self.now());
        project.encryption_count + count
    }

    // --- identities -------------------------------------------------------

    /// How many identities exist.
    pub async fn identity_count(&self) -> Result<u64, StoreError> {
        self.store.identity_count().await
    }

    /// Inserts an identity.
    pub async fn insert_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.store.insert_identity(identity).await
    }

    /// Inserts an identity together with one access token, atomically.
    pub async fn insert_identity_with_token(
        &self,
        identity: &Identity,
        token: &AccessToken,
    ) -> Result<(), StoreError> {
        self.store.insert_identity_with_token(identity, token).await
    }

    /// One identity, or `None`.
    pub async fn identity(
        &self,
        id: &IdentityId,
        freshness: Freshness,
    ) -> Result<Option<Identity>, StoreError> {
        let cached = freshness == Freshness::Cached;
        self.identities
            .get_or_load(id.clone(), self.now(), cached, || self.store.identity(id))
            .await
    }

    /// Every identity, oldest first.
    pub async fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.store.identities().await
    }

    /// Deletes an identity, revoking its tokens and dropping its
    /// memberships; false when there was none.
    pub async fn delete_identity(&self, id: &IdentityId) -> Result<bool, StoreError> {
        let result = self.store.delete_identity(id, self.now()).await;
        self.identities.remove(&id.clone());
        // Which cached tokens and memberships are its is not indexed.
        self.identity_tokens.clear();
        self.memberships.clear();
        result
    }

    /// An identity's Token Auth, or `None`.
    pub async fn token_auth_config(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Option<TokenAuthConfig>, StoreError> {
        self.store.token_auth_config(identity_id).await
    }

    /// Attaches Token Auth; [`StoreError::Conflict`] when it is attached.
    pub async fn insert_token_auth_config(
        &self,
        identity_id: &IdentityId,
        config: &TokenAuthConfig,
    ) -> Result<(), StoreError> {
        self.store
            .insert_token_auth_config(identity_id, config, self.now())
            .await
    }

    /// Replaces Token Auth; false when none is attached.
    pub async fn update_token_auth_config(
        &self,
        identity_id: &IdentityId,
        config: &TokenAuthConfig,
    ) -> Result<bool, StoreError> {
        self.store
            .update_token_auth_config(identity_id, config, self.now())
            .await
    }

    // --- memberships ------------------------------------------------------

    /// An identity's membership of a project, or `None`.
    pub async fn membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
        freshness: Freshness,
    ) -> Result<Option<Membership>, StoreError> {
        let key = (project_id.clone(), identity_id.clone());
        let cached = freshness == Freshness::Cached;
        self.memberships
            .get_or_load(key, self.now(), cached, || {
                self.store.membership(project_id, identity_id)
            })
            .await
    }

    /// Every membership of an identity, from the database.
    pub async fn memberships_of(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<Membership>, StoreError> {
        self.store.memberships_of(identity_id).await
    }

    /// Adds a membership; [`StoreError::Conflict`] when it exists.
    pub async fn insert_membership(&self, record: &Membership) -> Result<(), StoreError> {
        let result = self.store.insert_membership(record).await;
        self.memberships
            .remove(&(record.project_id.clone(), record.identity_id.clone()));
        result
    }

    /// Removes a membership; false when there was none.
    pub async fn delete_membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
    ) -> Result<bool, StoreError> {
        let result = self.store.delete_membership(project_id, identity_id).await;
        self.memberships
            .remove(&(project_id.clone(), identity_id.clone()));
        result
    }
}
