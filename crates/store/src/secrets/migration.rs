//! Migrations of the secrets database. Append new migrations; never edit one
//! that has shipped.

use sea_orm_migration::prelude::*;

use crate::schema::{blob, col, id, ts};

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Init),
            Box::new(crate::audit::migration::CreateAuditEvents),
            Box::new(crate::audit::migration::CreateAuditCheckpoints),
        ]
    }
}

struct Init;

impl MigrationName for Init {
    fn name(&self) -> &str {
        "m20261123_000001_secrets_init"
    }
}

#[async_trait::async_trait]
#[expect(
    elided_lifetimes_in_paths,
    reason = "async_trait expands the trait with an elided SchemaManager lifetime"
)]
impl MigrationTrait for Init {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("secrets"))
                .col(id("id"))
                .col(col("project_id").string().not_null())
                .col(col("environment").string().not_null())
                .col(col("path").string().not_null())
                .col(col("name").string().not_null())
                .col(blob("ciphertext"))
                .col(blob("iv"))
                .col(blob("tag"))
                .col(col("version").big_integer().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_secrets_location")
                .table(Alias::new("secrets"))
                .col(Alias::new("project_id"))
                .col(Alias::new("environment"))
                .col(Alias::new("path"))
                .col(Alias::new("name"))
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("secret_versions"))
                .col(col("secret_id").string().not_null())
                .col(col("version").big_integer().not_null())
                .col(blob("ciphertext"))
                .col(blob("iv"))
                .col(blob("tag"))
                .col(ts("created_at"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("secret_id"))
                        .col(Alias::new("version")),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(Alias::new("secret_versions"))
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Alias::new("secrets")).to_owned())
            .await
    }
}
