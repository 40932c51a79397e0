//! The audit trail's table, in each service's own database: appended in
//! batches (one transaction for all the events waiting), read newest first
//! with filters, and read back chain by chain to verify or stream.

mod entity;
pub(crate) mod migration;

use chrono::{DateTime, Utc};
use latchkey_domain::audit::chain::{Chained, Checkpoint};
use latchkey_domain::audit::{AuditEvent, AuditKey, Outcome, SecretRef, Transport};
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use self::entity::{audit_checkpoint, audit_event};
use crate::write::Writer;
use crate::{StoreError, corrupt, to_i64, to_u64};

/// A stored event: its chain link and the row id that orders a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The row id: newest first is highest first; the page cursor.
    pub id: i64,
    /// The event in its chain.
    pub link: Chained,
}

/// What a listing keeps; `None` and empty keep everything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// This event type.
    pub event_type: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// This principal (`identity:<id>`, `service-token:<id>`).
    pub principal: Option<String>,
    /// Only these projects (a project admin's reach); `None` is any.
    pub projects: Option<Vec<String>>,
    /// This environment.
    pub environment: Option<String>,
    /// Events naming this secret.
    pub secret_name: Option<String>,
    /// Calls made with the token of this HMAC.
    pub token_hmac: Option<String>,
    /// Rows older than this id (the previous page's last).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

impl AuditQuery {
    /// Whether `event` passes the filters (all but the page bounds), as
    /// [`AuditStore::list`] applies them in the database: for events read
    /// otherwise (a chain, a stream).
    #[must_use]
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.from.is_none_or(|from| event.time >= from)
            && self.to.is_none_or(|to| event.time < to)
            && is(&self.event_type, &event.event_type)
            && self.outcome.is_none_or(|o| o == event.outcome)
            && is(&self.principal, &event.principal)
            && self
                .projects
                .as_ref()
                .is_none_or(|p| p.contains(&event.project_id))
            && is(&self.environment, &event.environment)
            && self
                .secret_name
                .as_ref()
                .is_none_or(|n| event.secrets.iter().any(|s| &s.name == n))
            && is(&self.token_hmac, &event.token_hmac)
    }
}

/// The audit table of one database.
#[derive(Debug, Clone)]
pub struct AuditStore {
    db: DatabaseConnection,
    writer: Writer,
}

impl AuditStore {
    pub(crate) fn new(db: DatabaseConnection, writer: Writer) -> Self {
        Self { db, writer }
    }

    /// Appends `links` in one statement: all or none.
    pub async fn append(&self, links: &[Chained]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let rows = links.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        // One multi-row INSERT is atomic by itself on both databases: one
        // round trip to the database, no transaction around it.
        let _turn = self.writer.turn().await;
        audit_event::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Events matching `query`, newest first.
    pub async fn list(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>, StoreError> {
        use audit_event::Column as C;
        let mut cond = Condition::all();
        if let Some(from) = query.from {
            cond = cond.add(C::Time.gte(from));
        }
        if let Some(to) = query.to {
            cond = cond.add(C::Time.lt(to));
        }
        if let Some(t) = &query.event_type {
            cond = cond.add(C::EventType.eq(t.as_str()));
        }
        if let Some(o) = query.outcome {
            cond = cond.add(C::Outcome.eq(o.as_str()));
        }
        if let Some(p) = &query.principal {
            cond = cond.add(C::Principal.eq(p.as_str()));
        }
        if let Some(projects) = &query.projects {
            cond = cond.add(C::ProjectId.is_in(projects.iter().map(String::as_str)));
        }
        if let Some(e) = &query.environment {
            cond = cond.add(C::Environment.eq(e.as_str()));
        }
        if let Some(name) = &query.secret_name {
            // The names are stored as JSON strings: match one exactly, quotes included.
            let needle = json!({ "name": name }).to_string();
            let needle = needle.trim_start_matches('{').trim_end_matches('}');
            let pattern = format!("%{}%", escape_like(needle));
            cond = cond.add(Expr::col(C::Secrets).like(LikeExpr::new(pattern).escape('\\')));
        }
        if let Some(h) = &query.token_hmac {
            cond = cond.add(C::TokenHmac.eq(h.as_str()));
        }
        if let Some(before) = query.before_id {
            cond = cond.add(C::Id.lt(before));
        }
        audit_event::Entity::find()
            .filter(cond)
            .order_by_desc(C::Id)
            .limit(query.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored)
            .collect()
    }

    /// `replica`'s events after `after` (a sequence), in chain order, at
    /// most `limit`.
    pub async fn chain(
        &self,
        replica: &str,
        after: u64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        use audit_event::Column as C;
        audit_event::Entity::find()
            .filter(C::Replica.eq(replica))
            .filter(C::Sequence.gt(to_i64(after)))
            .order_by_asc(C::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored)
            .collect()
    }

    /// Every replica with events here, and its lowest sequence.
    pub async fn replicas(&self) -> Result<Vec<(String, u64)>, StoreError> {
        use audit_event::Column as C;
        let rows: Vec<(String, i64)> = audit_event::Entity::find()
            .select_only()
            .column(C::Replica)
            .column_as(C::Sequence.min(), "first")
            .group_by(C::Replica)
            .order_by_asc(C::Replica)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(replica, first)| Ok((replica, to_u64(first, "sequence")?)))
            .collect()
    }
}

impl AuditStore {
    /// Reaps events recorded before `before`: per chain, every event up to
    /// the newest such one (at most `limit` per chain per call), leaving a
    /// checkpoint sealed with `key` where the chain now starts, in the same
    /// transaction, so the rest still verifies. Returns how many went.
    pub async fn reap(
        &self,
        before: DateTime<Utc>,
        key: &AuditKey,
        limit: u64,
    ) -> Result<u64, StoreError> {
        use audit_event::Column as C;
        let txn = self.writer.begin(&self.db).await?;
        let cuts: Vec<(String, i64, i64)> = audit_event::Entity::find()
            .select_only()
            .column(C::Replica)
            .column_as(C::Sequence.min(), "first")
            .column_as(C::Sequence.max(), "last")
            .filter(C::Time.lt(before))
            .group_by(C::Replica)
            .into_tuple()
            .all(&*txn)
            .await?;
        let mut reaped = 0;
        for (replica, first, last) in cuts {
            let last = last.min(first.saturating_add(to_i64(limit.max(1)) - 1));
            let Some(row) = audit_event::Entity::find()
                .filter(C::Replica.eq(replica.as_str()))
                .filter(C::Sequence.eq(last))
                .one(&*txn)
                .await?
            else {
                continue;
            };
            let mac: [u8; 32] = row
                .mac
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("audit_events.mac", "is not 32 bytes".to_owned()))?;
            let checkpoint = Checkpoint::new(key, &replica, to_u64(last, "sequence")?, mac);
            let existing = audit_checkpoint::Entity::find_by_id(replica.clone())
                .one(&*txn)
                .await?;
            // Only forward: a later checkpoint another replica's reaper left stands.
            let cut = match existing {
                Some(e) if e.sequence >= last => e.sequence,
                other => {
                    let model = audit_checkpoint::ActiveModel {
                        replica: Set(replica.clone()),
                        sequence: Set(last),
                        mac: Set(checkpoint.mac.to_vec()),
                        seal: Set(checkpoint.seal.to_vec()),
                        reaped_at: Set(before),
                    };
                    if other.is_some() {
                        model.update(&*txn).await?;
                    } else {
                        model.insert(&*txn).await?;
                    }
                    last
                }
            };
            reaped += audit_event::Entity::delete_many()
                .filter(C::Replica.eq(replica.as_str()))
                .filter(C::Sequence.lte(cut))
                .exec(&*txn)
                .await?
                .rows_affected;
        }
        txn.commit().await?;
        Ok(reaped)
    }

    /// Every chain's checkpoint (the chains retention has reaped).
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        audit_checkpoint::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                let bytes = |v: Vec<u8>, field: &str| -> Result<[u8; 32], StoreError> {
                    v.as_slice()
                        .try_into()
                        .map_err(|_| corrupt(field, "is not 32 bytes".to_owned()))
                };
                Ok(Checkpoint {
                    sequence: to_u64(m.sequence, "audit_checkpoints.sequence")?,
                    mac: bytes(m.mac, "audit_checkpoints.mac")?,
                    seal: bytes(m.seal, "audit_checkpoints.seal")?,
                    replica: m.replica,
                })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl latchkey_domain::ports::AuditSink for AuditStore {
    async fn append(&self, links: &[Chained]) -> Result<(), String> {
        AuditStore::append(self, links)
            .await
            .map_err(|e| cause_chain(&e))
    }
}

/// A store error with its causes, for the recorder's warning.
fn cause_chain(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn row(link: &Chained) -> Result<audit_event::ActiveModel, StoreError> {
    let e = &link.event;
    let secrets: Vec<_> = e
        .secrets
        .iter()
        .map(|s| json!({ "name": s.name, "version": s.version }))
        .collect();
    Ok(audit_event::ActiveModel {
        id: sea_orm::NotSet,
        replica: Set(link.replica.clone()),
        sequence: Set(to_i64(link.sequence)),
        time: Set(e.time),
        event_type: Set(e.event_type.clone()),
        outcome: Set(e.outcome.as_str().to_owned()),
        reason: Set(e.reason.clone()),
        principal: Set(e.principal.clone()),
        token_hmac: Set(e.token_hmac.clone()),
        project_id: Set(e.project_id.clone()),
        environment: Set(e.environment.clone()),
        path: Set(e.path.clone()),
        secrets: Set(serde_json::Value::Array(secrets).to_string()),
        target: Set(e.target.clone()),
        client_ip: Set(e.client_ip.clone()),
        forwarded_for: Set(json!(e.forwarded_for).to_string()),
        user_agent: Set(e.user_agent.clone()),
        transport: Set(e.transport.as_str().to_owned()),
        method: Set(e.method.clone()),
        trace_id: Set(e.trace_id.clone()),
        count: Set(to_i64(e.count)),
        mac: Set(link.mac.to_vec()),
    })
}

fn stored(m: audit_event::Model) -> Result<StoredEvent, StoreError> {
    let secrets: Vec<serde_json::Value> = serde_json::from_str(&m.secrets)
        .map_err(|e| corrupt("audit_events.secrets", e.to_string()))?;
    let secrets = secrets
        .iter()
        .map(|s| {
            let name = s["name"].as_str().ok_or_else(|| {
                corrupt("audit_events.secrets", "an entry without a name".to_owned())
            })?;
            Ok(SecretRef {
                name: name.to_owned(),
                version: s["version"].as_u64(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let forwarded_for: Vec<String> = serde_json::from_str(&m.forwarded_for)
        .map_err(|e| corrupt("audit_events.forwarded_for", e.to_string()))?;
    let mac: [u8; 32] = m
        .mac
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("audit_events.mac", "is not 32 bytes".to_owned()))?;
    let event = AuditEvent {
        time: m.time,
        event_type: m.event_type,
        outcome: Outcome::parse(&m.outcome)
            .ok_or_else(|| corrupt("audit_events.outcome", m.outcome.clone()))?,
        reason: m.reason,
        principal: m.principal,
        token_hmac: m.token_hmac,
        project_id: m.project_id,
        environment: m.environment,
        path: m.path,
        secrets,
        target: m.target,
        client_ip: m.client_ip,
        forwarded_for,
        user_agent: m.user_agent,
        transport: Transport::parse(&m.transport)
            .ok_or_else(|| corrupt("audit_events.transport", m.transport.clone()))?,
        method: m.method,
        trace_id: m.trace_id,
        count: to_u64(m.count, "audit_events.count")?,
    };
    Ok(StoredEvent {
        id: m.id,
        link: Chained {
            replica: m.replica,
            sequence: to_u64(m.sequence, "audit_events.sequence")?,
            mac,
            event,
        },
    })
}
