//! Identities' memberships of projects.

use latchkey_domain::identity::ProjectRole;
use latchkey_domain::model::{IdentityId, Membership, ProjectId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entity::membership;
use super::{AuthStore, cached_scopes, scopes_json};
use crate::{StoreError, corrupt};

impl AuthStore {
    /// An identity's membership of a project, or `None`.
    pub async fn membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
    ) -> Result<Option<Membership>, StoreError> {
        membership::Entity::find_by_id((
            project_id.as_str().to_owned(),
            identity_id.as_str().to_owned(),
        ))
        .one(&self.db)
        .await?
        .map(|m| self.membership_of_row(m))
        .transpose()
    }

    /// Every membership of an identity.
    pub async fn memberships_of(
        &self,
        identity_id: &IdentityId,
    ) -> Result<Vec<Membership>, StoreError> {
        membership::Entity::find()
            .filter(membership::Column::IdentityId.eq(identity_id.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| self.membership_of_row(m))
            .collect()
    }

    fn membership_of_row(&self, m: membership::Model) -> Result<Membership, StoreError> {
        Ok(Membership {
            role: ProjectRole::parse(&m.role).map_err(|e| corrupt("role", e))?,
            scopes: m
                .scopes
                .as_deref()
                .map(|text| cached_scopes(&self.compiled, text))
                .transpose()?,
            project_id: ProjectId::from_stored(m.project_id),
            identity_id: IdentityId::from_stored(m.identity_id),
            created_at: m.created_at,
        })
    }

    /// Adds a membership; [`StoreError::Conflict`] when the identity is already a member.
    pub async fn insert_membership(&self, record: &Membership) -> Result<(), StoreError> {
        membership::ActiveModel {
            project_id: Set(record.project_id.as_str().to_owned()),
            identity_id: Set(record.identity_id.as_str().to_owned()),
            role: Set(record.role.as_str().to_owned()),
            scopes: Set(record.scopes.as_ref().map(scopes_json)),
            created_at: Set(record.created_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Removes a membership; false when there was none.
    pub async fn delete_membership(
        &self,
        project_id: &ProjectId,
        identity_id: &IdentityId,
    ) -> Result<bool, StoreError> {
        let result = membership::Entity::delete_by_id((
            project_id.as_str().to_owned(),
            identity_id.as_str().to_owned(),
        ))
        .exec(&self.db)
        .await?;
        Ok(result.rows_affected == 1)
    }
}
