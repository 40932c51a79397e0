//! One call's event in the making. The transport opens it with how the call
//! arrived, the use case says what the call is about and whom its token
//! verified as, and [`AuditLog::close`] records it once the answer is known:
//! as its own event, or, refused before any principal was known, counted in
//! the tally.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use latchkey_domain::AccessError;
use latchkey_domain::audit::tally::unverified_reason;
use latchkey_domain::audit::{Outcome, SecretRef};
use latchkey_domain::model::Principal;
use latchkey_domain::ports::BearerToken;

use latchkey_domain::audit::Transport;
use latchkey_domain::ip::TrustedIps;

use super::{AuditLog, CallMeta};
use crate::guard::RpcMethod;
use crate::request::client_ip;

/// A call's event while the call runs; shared by the transport and the
/// use case (cheap: one uncontended lock per step). One watched by a log
/// and dropped unclosed (the call timed out, or its caller hung up) is
/// recorded as `CANCELLED`.
#[derive(Debug)]
pub struct Trail {
    meta: CallMeta,
    ip: Option<IpAddr>,
    draft: Mutex<Draft>,
    watcher: Option<AuditLog>,
    closed: AtomicBool,
}

/// The reason of a call abandoned before it was answered.
pub const CANCELLED: &str = "CANCELLED";

/// What the use case has said so far.
#[derive(Debug, Default)]
struct Draft {
    event_type: Option<&'static str>,
    token: Option<BearerToken>,
    principal: Option<String>,
    project_id: String,
    environment: String,
    path: String,
    secrets: Vec<SecretRef>,
    target: String,
}

impl Trail {
    /// A call that arrived as `meta` from `ip` (as the client-IP rules
    /// decided it).
    #[must_use]
    pub fn new(meta: CallMeta, ip: Option<IpAddr>) -> Self {
        Self {
            meta,
            ip,
            draft: Mutex::new(Draft::default()),
            watcher: None,
            closed: AtomicBool::new(false),
        }
    }

    /// Recorded in `log` as `CANCELLED` if dropped before it is closed.
    #[must_use]
    pub fn watched_by(mut self, log: &AuditLog) -> Self {
        // With audit off there is nothing to record a drop in.
        self.watcher = log.inner.is_some().then(|| log.clone());
        self
    }

    /// A gRPC call's trail: its method, metadata and peer, the client
    /// address by the client-IP rules (`x-forwarded-for` only from
    /// `trusted_proxies`).
    #[must_use]
    pub fn of_grpc<T>(request: &tonic::Request<T>, trusted_proxies: &TrustedIps) -> Self {
        let headers = request.metadata().as_ref();
        let peer = request.remote_addr().map(|a| a.ip());
        let meta = CallMeta::read(
            Transport::Grpc,
            RpcMethod::of(request.extensions()),
            headers,
            peer,
            trusted_proxies,
        );
        Self::new(meta, client_ip(peer, headers, trusted_proxies))
    }

    /// The call is recorded by another service (the secrets service, for
    /// the calls it makes on a client's behalf): nothing to record here.
    pub fn recorded_elsewhere(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// The client address.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// How the call arrived.
    #[must_use]
    pub fn meta(&self) -> &CallMeta {
        &self.meta
    }

    fn edit(&self, change: impl FnOnce(&mut Draft)) {
        // A poisoned lock only means another step panicked; the draft is
        // plain data and stays usable.
        let mut draft = self
            .draft
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut draft);
    }

    /// The token the call presented (recorded as its HMAC only).
    pub fn presented(&self, token: &BearerToken) {
        self.edit(|d| d.token = Some(token.clone()));
    }

    /// What the call is: its event type (`secret.read`, `token.create`...).
    pub fn kind(&self, event_type: &'static str) {
        self.edit(|d| d.event_type = Some(event_type));
    }

    /// Where it acts: project, environment and folder path (any may be empty).
    pub fn place(&self, project_id: &str, environment: &str, path: &str) {
        self.edit(|d| {
            project_id.clone_into(&mut d.project_id);
            environment.clone_into(&mut d.environment);
            path.clone_into(&mut d.path);
        });
    }

    /// Whom the token verified as: from here on the call is recorded as its
    /// own event, whatever its answer.
    pub fn verified(&self, principal: &Principal) {
        self.edit(|d| d.principal = Some(principal.to_string()));
    }

    /// The secrets the call read, listed, wrote or deleted (replacing
    /// what an earlier step said, e.g. a name by the name and its version).
    pub fn secrets(&self, secrets: impl IntoIterator<Item = SecretRef>) {
        let secrets = secrets.into_iter().collect();
        self.edit(|d| d.secrets = secrets);
    }

    /// What else the call acted on (a token id, an identity id).
    pub fn target(&self, target: impl Into<String>) {
        let target = target.into();
        self.edit(|d| d.target = target);
    }

    fn take(&self) -> Draft {
        let mut draft = self
            .draft
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *draft)
    }
}

impl Drop for Trail {
    fn drop(&mut self) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let Some(log) = self.watcher.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let abandoned = Trail {
            meta: self.meta.clone(),
            ip: self.ip,
            draft: Mutex::new(self.take()),
            watcher: None,
            closed: AtomicBool::new(false),
        };
        runtime.spawn(async move {
            let _ = log.close(&abandoned, Some(CANCELLED)).await;
        });
    }
}

impl AuditLog {
    /// Records `trail`'s call, answered OK (`refused` is `None`) or refused
    /// with a reason. A refusal of a call whose token named no principal,
    /// for a reason of [`UNVERIFIED_REASONS`], is counted in the tally
    /// instead. In `required` mode an event not committed within
    /// [`super::REQUIRED_WITHIN`] is `AUDIT_UNAVAILABLE`, which the caller
    /// answers instead.
    ///
    /// [`UNVERIFIED_REASONS`]: latchkey_domain::audit::tally::UNVERIFIED_REASONS
    pub async fn close(&self, trail: &Trail, refused: Option<&str>) -> Result<(), AccessError> {
        trail.closed.store(true, Ordering::Relaxed);
        if self.inner.is_none() {
            return Ok(());
        }
        let draft = trail.take();
        if let Some(reason) = refused
            && draft.principal.is_none()
            && let Some(reason) = unverified_reason(reason)
        {
            self.refused_unverified(trail.ip, reason, &trail.meta.method, trail.meta.transport);
            return Ok(());
        }
        let mut event = trail
            .meta
            .event(draft.event_type.unwrap_or("call"), self.now());
        if let Some(reason) = refused {
            event.outcome = Outcome::of_refusal(reason);
            reason.clone_into(&mut event.reason);
        }
        event.principal = draft.principal.unwrap_or_default();
        event.project_id = draft.project_id;
        event.environment = draft.environment;
        event.path = draft.path;
        event.secrets = draft.secrets;
        event.target = draft.target;
        event.client_ip = trail.ip.map(|ip| ip.to_string()).unwrap_or_default();
        self.record(event, draft.token.as_ref()).await
    }
}
