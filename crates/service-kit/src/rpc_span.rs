//! [`RpcLayer`]: the one span per RPC, child of the caller's W3C
//! `traceparent`, with low-cardinality attributes (method, status, reason,
//! token type and token id; never the token itself), and the call counted.

use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use tonic_types::StatusExt;
use tracing::Instrument;

use crate::telemetry::{continue_trace, metrics, record_token};

/// Makes one span per call to a `latchkey.*` service (health and
/// reflection pass through untraced) and counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcLayer;

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner }
    }
}

/// The service [`RpcLayer`] wraps around a server.
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for RpcService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        if !service.starts_with("latchkey.") {
            return Box::pin(inner.call(request));
        }
        let full = rpc_name(path);
        let split = service.len();
        let span = tracing::info_span!(
            "rpc",
            otel.name = %full,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
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
            record_token(&span, token);
        }
        let started = Instant::now();
        Box::pin(async move {
            let mut result = inner.call(request).instrument(span.clone()).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            // Unary calls fail with a trailers-only response: the status is
            // in the headers; without one the call succeeded.
            let mut status = result
                .as_ref()
                .ok()
                .and_then(|response| tonic::Status::from_header_map(response.headers()));
            if let (Ok(response), Some(refused)) = (result.as_mut(), status.as_ref())
                && let Some(clear) =
                    crate::status::clarify_oversized(refused, response.headers_mut())
            {
                status = Some(clear);
            }
            let code = status.as_ref().map_or(tonic::Code::Ok, tonic::Status::code);
            let reason = status
                .as_ref()
                .and_then(|s| s.get_error_details().error_info().map(|i| i.reason.clone()));
            span.record("rpc.grpc.status_code", code as i32);
            if code != tonic::Code::Ok {
                span.record("otel.status_code", "ERROR");
            }
            let m = metrics();
            let method = full.get(split + 1..).unwrap_or_default();
            let method_attr = KeyValue::new("rpc.method", full.clone());
            if let Some(reason) = &reason {
                span.record("latchkey.reason", reason.as_str());
                if code != tonic::Code::InvalidArgument {
                    m.denials.add(1, &[KeyValue::new("reason", reason.clone())]);
                }
            }
            m.calls.add(
                1,
                &[
                    method_attr.clone(),
                    KeyValue::new("rpc.grpc.status_code", code as i64),
                ],
            );
            m.duration.record(elapsed, &[method_attr]);
            if method == "Authorize" {
                m.authorize_duration.record(elapsed, &[]);
            }
            result
        })
    }
}

/// Longest distinct `service/method` names kept shared: the services have
/// about thirty, so a caller inventing paths cannot grow it.
const RPC_NAMES: usize = 256;

/// The shared `service/method` names, at most [`RPC_NAMES`].
static RPC_NAME_TABLE: RpcNameTable = OnceLock::new();

type RpcNameTable =
    OnceLock<std::sync::Mutex<std::collections::HashMap<Box<str>, std::sync::Arc<str>>>>;

/// `service/method` of a call as a shared string: one atomic increment per
/// call instead of formatting it twice.
fn rpc_name(path: &str) -> std::sync::Arc<str> {
    let names = RPC_NAME_TABLE.get_or_init(Default::default);
    let Ok(mut names) = names.lock() else {
        return path.into();
    };
    if let Some(name) = names.get(path) {
        return name.clone();
    }
    let name: std::sync::Arc<str> = path.into();
    if names.len() < RPC_NAMES {
        names.insert(path.into(), name.clone());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_name_is_shared_between_calls_and_invented_paths_cannot_grow_the_table() {
        let first = rpc_name("latchkey.auth.v1.AuthService/Authorize");
        let again = rpc_name("latchkey.auth.v1.AuthService/Authorize");
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        for i in 0..(RPC_NAMES * 2) {
            let name = rpc_name(&format!("latchkey.x.v1.X/M{i}"));
            assert_eq!(&*name, format!("latchkey.x.v1.X/M{i}"));
        }
        let kept = RPC_NAME_TABLE
            .get()
            .map_or(0, |t| t.lock().map_or(0, |t| t.len()));
        assert!(kept <= RPC_NAMES, "{kept}");
    }
}
