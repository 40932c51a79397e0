//! Projects, their environments and wrapped keys.

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::Sealed;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{NewProject, Project, ProjectId};
use latchkey_domain::path::Environment;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::entity::{environment, project};
use super::{AuthStore, parse_ips};
use crate::{StoreError, corrupt, to_i64, to_u64};

impl AuthStore {
    /// Inserts a project and its environments in one transaction.
    pub async fn insert_project(&self, new: NewProject) -> Result<(), StoreError> {
        let txn = self.writer.begin(&self.db).await?;
        project::ActiveModel {
            id: Set(new.id.as_str().to_owned()),
            name: Set(new.name),
            e2ee: Set(new.e2ee),
            key_ciphertext: Set(new.wrapped_key.ciphertext),
            key_iv: Set(new.wrapped_key.iv),
            key_tag: Set(new.wrapped_key.tag),
            encryption_count: Set(0),
            trusted_ips: Set("[]".to_owned()),
            created_at: Set(new.created_at),
        }
        .insert(&*txn)
        .await?;
        for (position, (slug, name)) in new.environments.iter().enumerate() {
            insert_environment(&*txn, &new.id, slug, name, position, new.created_at).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// One project, or `None`.
    pub async fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError> {
        let Some(model) = project::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let envs = environment::Entity::find()
            .filter(environment::Column::ProjectId.eq(id.as_str()))
            .order_by_asc(environment::Column::Position)
            .all(&self.db)
            .await?;
        project_record(model, envs).map(Some)
    }

    /// Every project, oldest first.
    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        let models = project::Entity::find()
            .order_by_asc(project::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut envs = environment::Entity::find()
            .order_by_asc(environment::Column::Position)
            .all(&self.db)
            .await?;
        models
            .into_iter()
            .map(|m| {
                let mine: Vec<_> = envs
                    .iter()
                    .filter(|e| e.project_id == m.id)
                    .cloned()
                    .collect();
                envs.retain(|e| e.project_id != m.id);
                project_record(m, mine)
            })
            .collect()
    }

    /// Adds an environment after the existing ones; [`StoreError::Conflict`] if the slug exists.
    pub async fn insert_environment(
        &self,
        project_id: &ProjectId,
        slug: &Environment,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let position = environment::Entity::find()
            .filter(environment::Column::ProjectId.eq(project_id.as_str()))
            .count(&self.db)
            .await?;
        insert_environment(
            &self.db,
            project_id,
            slug,
            name,
            usize::try_from(position).unwrap_or(usize::MAX),
            now,
        )
        .await
    }

    /// Replaces a project's wrapped key (root key rotation); false when the
    /// project does not exist.
    pub async fn set_project_wrapped_key(
        &self,
        project_id: &ProjectId,
        wrapped: &Sealed,
    ) -> Result<bool, StoreError> {
        let result = project::Entity::update_many()
            .col_expr(
                project::Column::KeyCiphertext,
                Expr::value(wrapped.ciphertext.clone()),
            )
            .col_expr(project::Column::KeyIv, Expr::value(wrapped.iv.clone()))
            .col_expr(project::Column::KeyTag, Expr::value(wrapped.tag.clone()))
            .filter(project::Column::Id.eq(project_id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Replaces a project's allowlist; false when the project does not exist.
    pub async fn set_project_trusted_ips(
        &self,
        project_id: &ProjectId,
        ips: &TrustedIps,
    ) -> Result<bool, StoreError> {
        let result = project::Entity::update_many()
            .col_expr(
                project::Column::TrustedIps,
                Expr::value(json!(ips.to_strings()).to_string()),
            )
            .filter(project::Column::Id.eq(project_id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Adds `count` encryptions under a project's key; returns the new total.
    pub async fn count_encryptions(
        &self,
        project_id: &ProjectId,
        count: u64,
    ) -> Result<u64, StoreError> {
        project::Entity::update_many()
            .col_expr(
                project::Column::EncryptionCount,
                Expr::col(project::Column::EncryptionCount).add(to_i64(count)),
            )
            .filter(project::Column::Id.eq(project_id.as_str()))
            .exec(&self.db)
            .await?;
        let count = project::Entity::find_by_id(project_id.as_str())
            .one(&self.db)
            .await?
            .map_or(Ok(0), |p| to_u64(p.encryption_count, "encryption_count"))?;
        Ok(count)
    }
}

async fn insert_environment<C: sea_orm::ConnectionTrait>(
    db: &C,
    project_id: &ProjectId,
    slug: &Environment,
    name: &str,
    position: usize,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    environment::ActiveModel {
        project_id: Set(project_id.as_str().to_owned()),
        slug: Set(slug.as_str().to_owned()),
        name: Set(name.to_owned()),
        position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

fn project_record(m: project::Model, envs: Vec<environment::Model>) -> Result<Project, StoreError> {
    let environments = envs
        .into_iter()
        .map(|e| {
            Environment::parse(&e.slug)
                .map(|slug| (slug, e.name))
                .map_err(|err| corrupt("environment slug", err))
        })
        .collect::<Result<_, _>>()?;
    Ok(Project {
        trusted_ips: parse_ips(&m.trusted_ips)?,
        id: ProjectId::from_stored(m.id),
        name: m.name,
        e2ee: m.e2ee,
        wrapped_key: Sealed {
            ciphertext: m.key_ciphertext,
            iv: m.key_iv,
            tag: m.key_tag,
        },
        encryption_count: to_u64(m.encryption_count, "encryption_count")?,
        environments,
        created_at: m.created_at,
    })
}
