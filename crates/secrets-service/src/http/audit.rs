//! Each request to a route is one audit event: this layer opens the call's
//! [`Trail`] (how it arrived, from where), the handler's use case fills it
//! in, and once the answer is known the layer records it, answering
//! `AUDIT_UNAVAILABLE` instead when `LATCHKEY_AUDIT=required` and the event
//! could not be committed.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_domain::audit::Transport;
use latchkey_service_kit::audit::{CallMeta, Trail};
use latchkey_service_kit::listen::PeerAddr;
use latchkey_service_kit::request::client_ip;

use super::Http;
use super::error::HttpError;
use super::trace::Refused;
use crate::error::SecretsError;

/// The middleware (a route layer: unknown routes touch no token or secret).
pub(super) async fn audit(
    State(http): State<Arc<Http>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let method = format!("{} {route}", request.method());
    // Every request served by `serve` carries it: without it no client-IP
    // rule could be applied, so nothing is served.
    let Some(&PeerAddr(peer)) = request.extensions().get::<PeerAddr>() else {
        return HttpError(SecretsError::Internal(
            "a request without its connection's peer address".to_owned(),
        ))
        .into_response();
    };
    let peer = Some(peer.ip());
    let headers = request.headers();
    let meta = CallMeta::read(
        Transport::Http,
        &method,
        headers,
        peer,
        &http.trusted_proxies,
    );
    let trail = Arc::new(
        Trail::new(meta, client_ip(peer, headers, &http.trusted_proxies))
            .watched_by(http.app.audit()),
    );
    request.extensions_mut().insert(CallTrail(trail.clone()));
    let response = next.run(request).await;
    let status = response.status();
    let refused = (!status.is_success()).then(|| {
        response
            .extensions()
            .get::<Refused>()
            .map_or_else(|| reason_of_status(status), |Refused(reason)| *reason)
    });
    match http.app.audit().close(&trail, refused).await {
        Ok(()) => response,
        Err(unrecorded) => HttpError(SecretsError::Denied(unrecorded)).into_response(),
    }
}

/// The reason of an answer axum gave itself (a path or query it could not
/// decode), which carries none of ours.
fn reason_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        s if s.is_server_error() => "INTERNAL",
        _ => latchkey_service_kit::status::INVALID_ARGUMENT_REASON,
    }
}

/// The call's trail, for the handler's use case to fill in.
#[derive(Debug, Clone)]
pub(super) struct CallTrail(pub(super) Arc<Trail>);

impl<S: Send + Sync> FromRequestParts<S> for CallTrail {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Every route runs under the audit layer: without its trail the
        // call could not be recorded, so it is not served.
        parts.extensions.get::<CallTrail>().cloned().ok_or_else(|| {
            HttpError(SecretsError::Internal(
                "a request without its audit trail".to_owned(),
            ))
        })
    }
}
