//! One span per HTTP request, as the gRPC layer makes per RPC: child of the
//! caller's W3C `traceparent` (and the parent of the `Authorize` call, so
//! one trace crosses both services), with low-cardinality attributes (route
//! template, status, reason, token type and id; never the token), the
//! trace context written back on the response, and counted in the metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use latchkey_service_kit::telemetry::{
    continue_trace, inject_trace_headers, metrics, record_token,
};
use opentelemetry::KeyValue;
use tracing::Instrument;

/// The reason of a refused request, left on the response by the error
/// mapping for this layer to record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refused(pub(super) &'static str);

/// The middleware.
pub(super) async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        latchkey.reason = tracing::field::Empty,
        latchkey.token.type = tracing::field::Empty,
        latchkey.token.id = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
    if let Some(token) = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        record_token(&span, token.trim());
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 400 {
        span.record("otel.status_code", "ERROR");
    }
    let m = metrics();
    if let Some(Refused(reason)) = response.extensions().get::<Refused>().copied() {
        span.record("latchkey.reason", reason);
        if reason != latchkey_service_kit::status::INVALID_ARGUMENT_REASON {
            m.denials.add(1, &[KeyValue::new("reason", reason)]);
        }
    }
    let route_attr = KeyValue::new("http.route", route);
    m.http_requests.add(
        1,
        &[
            route_attr.clone(),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ],
    );
    m.http_duration.record(elapsed, &[route_attr]);
    inject_trace_headers(&span, response.headers_mut());
    response
}
