//! The audit tables, migrations shared by both databases' migrators.

use sea_orm_migration::prelude::*;

use crate::schema::{blob, col, ts};

/// Creates `audit_events` and its indexes.
pub(crate) struct CreateAuditEvents;

impl MigrationName for CreateAuditEvents {
    fn name(&self) -> &str {
        "m20261206_000001_audit_events"
    }
}

const TABLE: &str = "audit_events";

#[async_trait::async_trait]
#[expect(
    elided_lifetimes_in_paths,
    reason = "async_trait expands the trait with an elided SchemaManager lifetime"
)]
impl MigrationTrait for CreateAuditEvents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let text = |name: &str| col(name).string().not_null().default("").to_owned();
        m.create_table(
            Table::create()
                .table(Alias::new(TABLE))
                .col(
                    col("id")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(col("replica").string().not_null())
                .col(col("sequence").big_integer().not_null())
                .col(ts("time"))
                .col(col("event_type").string().not_null())
                .col(col("outcome").string().not_null())
                .col(text("reason"))
                .col(text("principal"))
                .col(text("token_hmac"))
                .col(text("project_id"))
                .col(text("environment"))
                .col(text("path"))
                .col(col("secrets").text().not_null())
                .col(text("target"))
                .col(text("client_ip"))
                .col(col("forwarded_for").text().not_null())
                .col(text("user_agent"))
                .col(col("transport").string().not_null())
                .col(text("method"))
                .col(text("trace_id"))
                .col(col("count").big_integer().not_null())
                .col(blob("mac"))
                .to_owned(),
        )
        .await?;
        // One place per link of a chain; newest-first listings by time, and
        // by project or principal within it; searches by token HMAC.
        for (name, cols, unique) in [
            ("uq_audit_chain", &["replica", "sequence"][..], true),
            ("ix_audit_time", &["time"][..], false),
            ("ix_audit_project_time", &["project_id", "time"][..], false),
            ("ix_audit_principal_time", &["principal", "time"][..], false),
            ("ix_audit_token", &["token_hmac"][..], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Alias::new(TABLE));
            for c in cols {
                index.col(Alias::new(*c));
            }
            if unique {
                index.unique();
            }
            m.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}

/// Creates `audit_checkpoints`: where each chain resumes after retention.
pub(crate) struct CreateAuditCheckpoints;

impl MigrationName for CreateAuditCheckpoints {
    fn name(&self) -> &str {
        "m20261206_000002_audit_checkpoints"
    }
}

#[async_trait::async_trait]
#[expect(
    elided_lifetimes_in_paths,
    reason = "async_trait expands the trait with an elided SchemaManager lifetime"
)]
impl MigrationTrait for CreateAuditCheckpoints {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("audit_checkpoints"))
                .col(col("replica").string().not_null().primary_key())
                .col(col("sequence").big_integer().not_null())
                .col(blob("mac"))
                .col(blob("seal"))
                .col(ts("reaped_at"))
                .to_owned(),
        )
        .await
    }
}
