//! `latchkey.audit.v1.AuditService`, served by both services over their own
//! audit table: listing (newest first, paged), streaming (per-replica
//! cursors, so a resumed stream misses and repeats nothing) and verifying
//! every chain. Who may read what is the auth service's answer
//! ([`AuditGate`]); reading the trail is itself recorded.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_domain::InvalidInput;
use latchkey_domain::audit::chain::{Break, ChainVerifier, Chained, Checkpoint, Start};
use latchkey_domain::audit::reach::{AuditReader, path_matches};
use latchkey_domain::audit::{AuditKey, Outcome};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::ports::BearerToken;
use latchkey_domain::scope::PathGlob;
use latchkey_proto::audit::v1 as pb;
use latchkey_proto::audit::v1::audit_service_server::AuditService;
use latchkey_proto::convert::time_of;
use latchkey_store::audit::{AuditQuery, AuditStore, StoredEvent};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{AuditLog, Trail};
use crate::request::{MAX_TOKEN_BYTES, bearer_token};
use crate::status;

/// A listing's page size when none is asked for, and the most.
const PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// Events read from one chain per round of a stream.
const STREAM_BATCH: u64 = 500;

/// How often a caught-up stream looks for new events.
const STREAM_POLL: Duration = Duration::from_millis(250);

/// How often a stream asks again whether its reader may still read.
const STREAM_RECHECK: Duration = Duration::from_secs(60);

/// Streams one replica serves at once; more are `RESOURCE_EXHAUSTED`.
pub const MAX_STREAMS: usize = 64;

/// Events read from the database per verification round.
const VERIFY_PAGE: u64 = 1000;

/// Who may read the trail, and the key that verifies it.
#[tonic::async_trait]
pub trait AuditGate: Send + Sync + std::fmt::Debug + 'static {
    /// The holder of `token`, calling from `client_ip`, and how far it
    /// reaches; refused as the auth service refuses.
    async fn reader(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<AuditReader, Status>;

    /// The audit key the chains are verified with.
    async fn key(&self) -> Result<AuditKey, Status>;
}

/// The service over one database's audit table.
#[derive(Debug, Clone)]
pub struct AuditApi {
    store: AuditStore,
    gate: Arc<dyn AuditGate>,
    audit: AuditLog,
    trusted_proxies: TrustedIps,
    streams: Arc<Semaphore>,
}

impl AuditApi {
    /// Serves `store`'s events to the readers `gate` admits, recording
    /// each read in `audit`.
    #[must_use]
    pub fn new(
        store: AuditStore,
        gate: Arc<dyn AuditGate>,
        audit: AuditLog,
        trusted_proxies: TrustedIps,
    ) -> Self {
        Self {
            store,
            gate,
            audit,
            trusted_proxies,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// The call's trail and its reader, once the gate admitted it.
    async fn admit<T>(
        &self,
        request: &Request<T>,
        trail: &Trail,
    ) -> Result<(AuditReader, BearerToken, Option<IpAddr>), Status> {
        let token =
            bearer_token(request.metadata().as_ref()).map_err(|e| status::access_denied(&e))?;
        trail.presented(&token);
        let reader = self.gate.reader(token.clone(), trail.ip()).await?;
        trail.verified(&reader.principal);
        Ok((reader, token, trail.ip()))
    }

    fn trail<T>(&self, request: &Request<T>, kind: &'static str) -> Trail {
        let trail = Trail::of_grpc(request, &self.trusted_proxies).watched_by(&self.audit);
        trail.kind(kind);
        trail
    }

    /// Records the call, then answers it (`AUDIT_UNAVAILABLE` instead when
    /// its event could not be recorded).
    async fn answer<T>(
        &self,
        trail: &Trail,
        result: Result<T, Status>,
    ) -> Result<Response<T>, Status> {
        let reason = result.as_ref().err().map(reason_of);
        self.audit
            .close(trail, reason.as_deref())
            .await
            .map_err(|e| status::access_denied(&e))?;
        result.map(Response::new)
    }
}

/// A refusal's reason as the audit records it.
fn reason_of(status: &Status) -> String {
    status::reason_of(status).unwrap_or_else(|| format!("{:?}", status.code()).to_uppercase())
}

/// A filter as a query and the path glob the database cannot apply.
fn query_of(
    filter: Option<&pb::AuditFilter>,
    reader: &AuditReader,
) -> Result<(AuditQuery, Option<PathGlob>), InvalidInput> {
    let empty = pb::AuditFilter::default();
    let f = filter.unwrap_or(&empty);
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let time = |t: &Option<prost_types::Timestamp>, field: &str| time_of(t.as_ref(), field);
    let outcome = match f.outcome.as_str() {
        "" => None,
        o => Some(Outcome::parse(o).ok_or_else(|| {
            InvalidInput::new("filter.outcome", "must be allowed, denied or failed")
        })?),
    };
    let projects = match (reader.reach.project_ids(), text(&f.project_id)) {
        (None, None) => None,
        (None, Some(one)) => Some(vec![one]),
        (Some(reach), None) => Some(reach),
        // Outside the reader's reach: nothing, as if it had no events.
        (Some(reach), Some(one)) => Some(reach.into_iter().filter(|p| *p == one).collect()),
    };
    let glob = text(&f.path_glob)
        .map(|g| PathGlob::parse(&g).map_err(|e| e.in_field("filter.path_glob")))
        .transpose()?;
    Ok((
        AuditQuery {
            from: time(&f.from, "filter.from")?,
            to: time(&f.to, "filter.to")?,
            event_type: text(&f.event_type),
            outcome,
            principal: text(&f.principal),
            projects,
            environment: text(&f.environment),
            secret_name: text(&f.secret_name),
            token_hmac: text(&f.token_hmac).map(|h| h.to_ascii_lowercase()),
            before_id: None,
            limit: u64::from(PAGE),
        },
        glob,
    ))
}

/// Whether the reader may see `link` and it passes what the database could not filter.
fn visible(reader: &AuditReader, glob: Option<&PathGlob>, link: &Chained) -> bool {
    reader.reach.allows(&link.event) && glob.is_none_or(|g| path_matches(g, &link.event))
}

fn event_pb(stored: &StoredEvent) -> pb::AuditEvent {
    latchkey_proto::convert::audit::event_pb(stored.id, &stored.link)
}

/// How far a stream has read each replica's chain: `replica=sequence`
/// pairs joined by `,` (replica names hold neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cursor(BTreeMap<String, u64>);

impl Cursor {
    fn parse(text: &str) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::new("cursor", "is not a cursor this service gave");
        text.split(',')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (replica, sequence) = pair.rsplit_once('=').ok_or_else(bad)?;
                Ok((replica.to_owned(), sequence.parse().map_err(|_| bad())?))
            })
            .collect::<Result<_, _>>()
            .map(Cursor)
    }

    fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(replica, sequence)| format!("{replica}={sequence}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

type Stream = ReceiverStream<Result<pb::StreamAuditEventsResponse, Status>>;

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let trail = self.trail(&request, "audit.list");
        let result = async {
            let (reader, _, _) = self.admit(&request, &trail).await?;
            let req = request.get_ref();
            let (mut query, glob) =
                query_of(req.filter.as_ref(), &reader).map_err(|e| status::invalid_argument(&e))?;
            query.limit = u64::from(match req.page_size {
                0 => PAGE,
                n => n.min(MAX_PAGE),
            });
            if !req.page_token.is_empty() {
                query.before_id = Some(req.page_token.parse().map_err(|_| {
                    status::invalid_argument(&InvalidInput::new(
                        "page_token",
                        "is not a page token this service gave",
                    ))
                })?);
            }
            let rows = self.store.list(&query).await.map_err(store_status)?;
            let next_page_token = if rows.len() as u64 == query.limit {
                rows.last().map(|r| r.id.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListAuditEventsResponse {
                events: rows
                    .iter()
                    .filter(|r| visible(&reader, glob.as_ref(), &r.link))
                    .map(event_pb)
                    .collect(),
                next_page_token,
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    type StreamAuditEventsStream = Stream;

    async fn stream_audit_events(
        &self,
        request: Request<pb::StreamAuditEventsRequest>,
    ) -> Result<Response<Stream>, Status> {
        let trail = self.trail(&request, "audit.stream");
        let result = async {
            let (reader, token, ip) = self.admit(&request, &trail).await?;
            let req = request.get_ref();
            let (query, glob) =
                query_of(req.filter.as_ref(), &reader).map_err(|e| status::invalid_argument(&e))?;
            let cursor = Cursor::parse(&req.cursor).map_err(|e| status::invalid_argument(&e))?;
            let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
                status::access_denied(&latchkey_domain::AccessError::new(
                    latchkey_domain::Reason::TooManyFailedAttempts,
                    format!("this replica already serves {MAX_STREAMS} audit streams; retry later or use another replica"),
                ))
            })?;
            let (tx, rx) = mpsc::channel(4);
            let follow = Follow {
                store: self.store.clone(),
                gate: self.gate.clone(),
                token,
                ip,
                reader,
                query,
                glob,
                cursor,
            };
            tokio::spawn(async move {
                follow.run(tx).await;
                drop(permit);
            });
            Ok(ReceiverStream::new(rx))
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn verify_audit_log(
        &self,
        request: Request<pb::VerifyAuditLogRequest>,
    ) -> Result<Response<pb::VerifyAuditLogResponse>, Status> {
        let trail = self.trail(&request, "audit.verify");
        let result = async {
            let (reader, _, _) = self.admit(&request, &trail).await?;
            if !reader.reach.is_all() {
                return Err(status::access_denied(&latchkey_domain::AccessError::new(
                    latchkey_domain::Reason::PermissionDenied,
                    "verifying the audit trail reads every project's events: it needs org role admin",
                )));
            }
            let key = self.gate.key().await?;
            let mut starts: BTreeMap<String, Result<Start, Checkpoint>> = BTreeMap::new();
            for (replica, _) in self.store.replicas().await.map_err(store_status)? {
                starts.insert(replica, Ok(Start::GENESIS));
            }
            // Chains retention reaped start after their checkpoint.
            for checkpoint in self.store.checkpoints().await.map_err(store_status)? {
                let start = checkpoint.start(&key).ok_or_else(|| checkpoint.clone());
                starts.insert(checkpoint.replica.clone(), start);
            }
            let mut chains = Vec::new();
            for (replica, start) in starts {
                chains.push(match start {
                    Ok(start) => self.verify_chain(&key, &replica, start).await?,
                    Err(checkpoint) => pb::ChainReport {
                        replica,
                        first_sequence: checkpoint.sequence + 1,
                        intact: false,
                        problem: "changed".to_owned(),
                        problem_sequence: checkpoint.sequence,
                        detail: format!(
                            "the checkpoint where retention left this chain (after event {}) was changed",
                            checkpoint.sequence
                        ),
                        ..pb::ChainReport::default()
                    },
                });
            }
            Ok(pb::VerifyAuditLogResponse {
                intact: chains.iter().all(|c| c.intact),
                chains,
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn hash_token(
        &self,
        request: Request<pb::HashTokenRequest>,
    ) -> Result<Response<pb::HashTokenResponse>, Status> {
        let trail = self.trail(&request, "audit.hash");
        let result = async {
            self.admit(&request, &trail).await?;
            let token = request.get_ref().token.trim();
            if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                return Err(status::invalid_argument(&InvalidInput::new(
                    "token",
                    format!("must be a token of 1 to {MAX_TOKEN_BYTES} bytes"),
                )));
            }
            let key = self.gate.key().await?;
            Ok(pb::HashTokenResponse {
                token_hmac: key.token_hmac(token),
            })
        }
        .await;
        self.answer(&trail, result).await
    }
}

impl AuditApi {
    /// Verifies one replica's chain, a page at a time.
    async fn verify_chain(
        &self,
        key: &AuditKey,
        replica: &str,
        start: Start,
    ) -> Result<pb::ChainReport, Status> {
        let mut verifier = ChainVerifier::new(key, replica, start);
        let mut report = pb::ChainReport {
            replica: replica.to_owned(),
            first_sequence: start.sequence,
            ..pb::ChainReport::default()
        };
        let mut after = start.sequence.saturating_sub(1);
        let broken = loop {
            let page = self
                .store
                .chain(replica, after, VERIFY_PAGE)
                .await
                .map_err(store_status)?;
            let Some(last) = page.last() else {
                break verifier.finish().err();
            };
            after = last.link.sequence;
            report.last_sequence = after;
            report.events += page.len() as u64;
            if let Some(b) = page
                .into_iter()
                .find_map(|row| verifier.push(row.link).err())
            {
                break Some(b);
            }
        };
        report.intact = broken.is_none();
        if let Some(b) = broken {
            let (problem, sequence) = match &b {
                Break::Changed { sequence, .. } => ("changed", *sequence),
                Break::Removed { sequence, .. } => ("removed", *sequence),
                Break::Reordered { sequence, .. } => ("reordered", *sequence),
            };
            problem.clone_into(&mut report.problem);
            report.problem_sequence = sequence;
            report.detail = b.to_string();
        }
        Ok(report)
    }
}

/// One stream's reading of the chains.
struct Follow {
    store: AuditStore,
    gate: Arc<dyn AuditGate>,
    token: BearerToken,
    ip: Option<IpAddr>,
    reader: AuditReader,
    query: AuditQuery,
    glob: Option<PathGlob>,
    cursor: Cursor,
}

impl Follow {
    /// Sends each new batch until the caller hangs up, the reader loses its
    /// reach, or the database fails.
    async fn run(mut self, tx: mpsc::Sender<Result<pb::StreamAuditEventsResponse, Status>>) {
        let mut checked = Instant::now();
        loop {
            if checked.elapsed() >= STREAM_RECHECK {
                match self.gate.reader(self.token.clone(), self.ip).await {
                    Ok(reader) => self.reader = reader,
                    Err(refused) => {
                        let _ = tx.send(Err(refused)).await;
                        return;
                    }
                }
                checked = Instant::now();
            }
            let batch = match self.round().await {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let caught_up = batch.is_none();
            if let Some(batch) = batch
                && tx.send(Ok(batch)).await.is_err()
            {
                return;
            }
            if caught_up {
                tokio::select! {
                    () = tokio::time::sleep(STREAM_POLL) => {}
                    () = tx.closed() => return,
                }
            }
        }
    }

    /// What every chain holds past the cursor (at most a batch of each);
    /// `None` when there is nothing new.
    async fn round(&mut self) -> Result<Option<pb::StreamAuditEventsResponse>, Status> {
        let mut events = Vec::new();
        let mut moved = false;
        for (replica, _) in self.store.replicas().await.map_err(store_status)? {
            let after = self.cursor.0.get(&replica).copied().unwrap_or(0);
            let rows = self
                .store
                .chain(&replica, after, STREAM_BATCH)
                .await
                .map_err(store_status)?;
            if let Some(last) = rows.last() {
                self.cursor.0.insert(replica, last.link.sequence);
                moved = true;
            }
            events.extend(
                rows.iter()
                    .filter(|r| self.query.matches(&r.link.event))
                    .filter(|r| visible(&self.reader, self.glob.as_ref(), &r.link))
                    .map(event_pb),
            );
        }
        Ok(moved.then(|| pb::StreamAuditEventsResponse {
            events,
            cursor: self.cursor.encode(),
        }))
    }
}

fn store_status(err: latchkey_store::StoreError) -> Status {
    tracing::warn!(error = %status::cause_chain(&err), "audit table unreadable");
    status::access_denied(&latchkey_domain::AccessError::store_unavailable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_it_was_written_and_nonsense_is_invalid() {
        let cursor = Cursor(BTreeMap::from([
            ("auth-pod-1-0a0b0c0d".to_owned(), 7),
            ("auth-pod-2-00000001".to_owned(), 12),
        ]));
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        assert_eq!(Cursor::parse("").unwrap(), Cursor::default());
        assert_eq!(Cursor::parse("no-sequence").unwrap_err().field, "cursor");
        assert!(Cursor::parse("r=minus1").is_err());
    }
}
