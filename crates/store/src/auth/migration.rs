//! Migrations of the auth database. Append new migrations; never edit one
//! that has shipped.

use sea_orm_migration::prelude::*;

use crate::schema::{blob, col, id, ts, ts_null};

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Init),
            Box::new(QueryIndexes),
            Box::new(crate::audit::migration::CreateAuditEvents),
            Box::new(crate::audit::migration::CreateAuditCheckpoints),
            Box::new(MachineLogins),
        ]
    }
}

struct Init;

impl MigrationName for Init {
    fn name(&self) -> &str {
        "m20261123_000001_auth_init"
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
                .table(Alias::new("projects"))
                .col(id("id"))
                .col(col("name").string().not_null())
                .col(col("e2ee").boolean().not_null())
                .col(blob("key_ciphertext"))
                .col(blob("key_iv"))
                .col(blob("key_tag"))
                .col(col("encryption_count").big_integer().not_null().default(0))
                .col(col("trusted_ips").text().not_null())
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("environments"))
                .col(col("project_id").string().not_null())
                .col(col("slug").string().not_null())
                .col(col("name").string().not_null())
                .col(col("position").integer().not_null())
                .col(ts("created_at"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("project_id"))
                        .col(Alias::new("slug")),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("service_tokens"))
                .col(id("id"))
                .col(col("project_id").string().not_null())
                .col(col("name").string().not_null())
                .col(col("secret_hash").string().not_null())
                .col(col("scopes").text().not_null())
                .col(col("permissions").string().not_null())
                .col(col("trusted_ips").text().not_null())
                .col(ts_null("expires_at"))
                .col(col("active").boolean().not_null())
                .col(ts_null("revoked_at"))
                .col(blob("key_ciphertext"))
                .col(blob("key_iv"))
                .col(blob("key_tag"))
                .col(col("use_count").big_integer().not_null().default(0))
                .col(ts_null("last_used_at"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_service_tokens_project")
                .table(Alias::new("service_tokens"))
                .col(Alias::new("project_id"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_service_tokens_expires_at")
                .table(Alias::new("service_tokens"))
                .col(Alias::new("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("identities"))
                .col(id("id"))
                .col(col("name").string().not_null())
                .col(col("org_role").string().not_null())
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("identity_access_tokens"))
                .col(id("id"))
                .col(col("identity_id").string().not_null())
                .col(col("name").string().not_null())
                .col(col("secret_hash").string().not_null())
                .col(ts_null("expires_at"))
                .col(ts_null("revoked_at"))
                .col(col("use_count").big_integer().not_null().default(0))
                .col(col("num_uses_limit").big_integer().not_null().default(0))
                .col(col("ttl_seconds").big_integer().not_null().default(0))
                .col(col("max_ttl_seconds").big_integer().not_null().default(0))
                .col(col("trusted_ips").text().not_null())
                .col(ts_null("last_used_at"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("token_auth_configs"))
                .col(id("identity_id"))
                .col(col("access_token_ttl").big_integer().not_null())
                .col(col("access_token_max_ttl").big_integer().not_null())
                .col(col("access_token_num_uses_limit").big_integer().not_null())
                .col(col("access_token_trusted_ips").text().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("project_memberships"))
                .col(col("project_id").string().not_null())
                .col(col("identity_id").string().not_null())
                .col(col("role").string().not_null())
                .col(col("scopes").text().null())
                .col(ts("created_at"))
                .primary_key(
                    Index::create()
                        .col(Alias::new("project_id"))
                        .col(Alias::new("identity_id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_identity_access_tokens_identity")
                .table(Alias::new("identity_access_tokens"))
                .col(Alias::new("identity_id"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "project_memberships",
            "token_auth_configs",
            "identity_access_tokens",
            "identities",
            "service_tokens",
            "environments",
            "projects",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Indexes for the queries that would otherwise scan a table: the reaper's
/// `expires_at < ? OR revoked_at < ?` on both token tables (a full scan
/// holds SQLite's write lock for a quarter second at a million tokens), and
/// deleting an identity's memberships.
struct QueryIndexes;

impl MigrationName for QueryIndexes {
    fn name(&self) -> &str {
        "m20261202_000001_auth_query_indexes"
    }
}

const QUERY_INDEXES: [(&str, &str, &str); 4] = [
    (
        "idx_service_tokens_revoked_at",
        "service_tokens",
        "revoked_at",
    ),
    (
        "idx_identity_access_tokens_expires_at",
        "identity_access_tokens",
        "expires_at",
    ),
    (
        "idx_identity_access_tokens_revoked_at",
        "identity_access_tokens",
        "revoked_at",
    ),
    (
        "idx_project_memberships_identity",
        "project_memberships",
        "identity_id",
    ),
];

#[async_trait::async_trait]
#[expect(
    elided_lifetimes_in_paths,
    reason = "async_trait expands the trait with an elided SchemaManager lifetime"
)]
impl MigrationTrait for QueryIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in QUERY_INDEXES {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Alias::new(table))
                    .col(Alias::new(column))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in QUERY_INDEXES {
            m.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The login methods: Universal Auth, one row per identity that has it
/// (its client ID unique), and its client secrets (their hashes), listed by
/// identity; Kubernetes Auth, one row per identity that has it.
struct MachineLogins;

impl MigrationName for MachineLogins {
    fn name(&self) -> &str {
        "m20261206_000003_machine_logins"
    }
}

#[async_trait::async_trait]
#[expect(
    elided_lifetimes_in_paths,
    reason = "async_trait expands the trait with an elided SchemaManager lifetime"
)]
impl MigrationTrait for MachineLogins {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("universal_auth_configs"))
                .col(id("identity_id"))
                .col(col("client_id").string().not_null().unique_key())
                .col(col("client_secret_trusted_ips").text().not_null())
                .col(col("access_token_ttl").big_integer().not_null())
                .col(col("access_token_max_ttl").big_integer().not_null())
                .col(col("access_token_num_uses_limit").big_integer().not_null())
                .col(col("access_token_trusted_ips").text().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("universal_auth_client_secrets"))
                .col(id("id"))
                .col(col("identity_id").string().not_null())
                .col(col("description").string().not_null())
                .col(col("prefix").string().not_null())
                .col(col("secret_hash").string().not_null())
                .col(col("ttl_seconds").big_integer().not_null())
                .col(col("num_uses_limit").big_integer().not_null())
                .col(col("use_count").big_integer().not_null().default(0))
                .col(ts_null("last_used_at"))
                .col(ts_null("revoked_at"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_ua_client_secrets_identity")
                .table(Alias::new("universal_auth_client_secrets"))
                .col(Alias::new("identity_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("kubernetes_auth_configs"))
                .col(id("identity_id"))
                .col(col("issuer").text().not_null())
                .col(col("keys").text().not_null())
                .col(col("allowed_audiences").text().not_null())
                .col(col("allowed_namespaces").text().not_null())
                .col(col("allowed_names").text().not_null())
                .col(col("access_token_ttl").big_integer().not_null())
                .col(col("access_token_max_ttl").big_integer().not_null())
                .col(col("access_token_num_uses_limit").big_integer().not_null())
                .col(col("access_token_trusted_ips").text().not_null())
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await
    }
}
