//! What a gRPC request must show before its message is read: a
//! well-formed bearer token in its metadata (for the methods that take
//! one), and a message no larger than its method's real maximum. tonic
//! buffers a whole message before a handler sees it, so a handler's own
//! checks come too late to protect memory: this layer runs first, refuses
//! a missing or malformed token without reading the body, and cuts a body
//! off at its method's limit.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http_body::{Frame, SizeHint};
use latchkey_domain::InvalidInput;
use latchkey_domain::token::AnyToken;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Bytes;

use latchkey_domain::audit::Transport;
use latchkey_domain::audit::tally::unverified_reason;
use latchkey_domain::ip::TrustedIps;

use crate::audit::AuditLog;
use crate::listen::tcp_info;
use crate::request::{bearer_token, client_ip};
use crate::status;

/// The bytes of a gRPC message's length prefix.
const FRAME_HEADER: usize = 5;

/// The rules of one service's methods (full paths such as
/// `/latchkey.secrets.v1.SecretsService/SetSecret`).
#[derive(Debug, Clone)]
pub struct MethodRules {
    /// Paths under this prefix take a bearer token, but for `no_bearer`.
    service_prefix: &'static str,
    no_bearer: &'static [&'static str],
    /// The largest message of a method not in `limits`.
    default_limit: usize,
    limits: HashMap<&'static str, usize>,
    /// Where refusals are counted, and whose `x-forwarded-for` is believed.
    audit: AuditLog,
    trusted_proxies: TrustedIps,
}

impl MethodRules {
    /// Methods under `service_prefix` (e.g. `/latchkey.auth.v1.AuthService/`)
    /// take a bearer token except those in `no_bearer` (their credentials
    /// travel in the message); every message is at most `default_limit`
    /// bytes but for the methods in `limits`.
    #[must_use]
    pub fn new(
        service_prefix: &'static str,
        no_bearer: &'static [&'static str],
        default_limit: usize,
        limits: &[(&'static str, usize)],
    ) -> Self {
        Self {
            service_prefix,
            no_bearer,
            default_limit,
            limits: limits.iter().copied().collect(),
            audit: AuditLog::off(),
            trusted_proxies: TrustedIps::default(),
        }
    }

    /// Counts the calls refused here (no token was verified) in `audit`'s
    /// tally, by client address as `trusted_proxies` decide it.
    #[must_use]
    pub fn audited(mut self, audit: AuditLog, trusted_proxies: TrustedIps) -> Self {
        self.audit = audit;
        self.trusted_proxies = trusted_proxies;
        self
    }

    fn limit(&self, path: &str) -> usize {
        self.limits.get(path).copied().unwrap_or(self.default_limit)
    }

    fn needs_bearer(&self, path: &str) -> bool {
        path.strip_prefix(self.service_prefix)
            .is_some_and(|method| !self.no_bearer.contains(&method))
    }
}

/// The method a gRPC request called (`latchkey.auth.v1.AuthService/CreateProject`),
/// left on the request for its handler: tonic hands handlers no URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcMethod(pub String);

impl RpcMethod {
    /// The method `extensions` name, or empty outside a guarded server.
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> &str {
        extensions.get::<RpcMethod>().map_or("", |m| m.0.as_str())
    }
}

/// The layer of [`GuardService`].
#[derive(Debug, Clone)]
pub struct GuardLayer(Arc<MethodRules>);

impl GuardLayer {
    /// Guards with `rules`.
    #[must_use]
    pub fn new(rules: MethodRules) -> Self {
        Self(Arc::new(rules))
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            rules: self.0.clone(),
        }
    }
}

/// Refuses before the body, and caps it.
#[derive(Debug, Clone)]
pub struct GuardService<S> {
    inner: S,
    rules: Arc<MethodRules>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for GuardService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let method = RpcMethod(request.uri().path().trim_start_matches('/').to_owned());
        request.extensions_mut().insert(method);
        let path = request.uri().path();
        if self.rules.needs_bearer(path) {
            let checked = bearer_token(request.headers())
                .and_then(|token| AnyToken::parse(token.expose()).map(drop));
            if let Err(denied) = checked {
                let peer = tcp_info(request.extensions())
                    .and_then(|info| info.remote_addr)
                    .map(|addr| addr.ip());
                let ip = client_ip(peer, request.headers(), &self.rules.trusted_proxies);
                self.rules.audit.refused_unverified(
                    ip,
                    unverified_reason(denied.reason.as_str()).unwrap_or("TOKEN_MALFORMED"),
                    path.trim_start_matches('/'),
                    Transport::Grpc,
                );
                let response = status::access_denied(&denied).into_http();
                return Box::pin(async move { Ok(response) });
            }
        }
        let limit = self.rules.limit(path);
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let request = request.map(|body| {
            Body::new(Capped {
                inner: body,
                left: limit + FRAME_HEADER,
                limit,
                method,
            })
        });
        Box::pin(self.inner.call(request))
    }
}

/// A request body that fails once more than its method's limit arrived.
struct Capped {
    inner: Body,
    left: usize,
    limit: usize,
    method: String,
}

impl http_body::Body for Capped {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            if data.len() > self.left {
                let message = format!(
                    "the request is larger than {} bytes, the most {} accepts",
                    self.limit, self.method
                );
                return Poll::Ready(Some(Err(status::invalid_argument(&InvalidInput::new(
                    "request", message,
                )))));
            }
            self.left -= data.len();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicBool, Ordering};

    use http_body_util::BodyExt;
    use tonic::Code;
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    const PREFIX: &str = "/latchkey.test.v1.Test/";

    fn rules() -> MethodRules {
        MethodRules::new(
            PREFIX,
            &["Open"],
            100,
            &[("/latchkey.test.v1.Test/Big", 1000)],
        )
    }

    /// A service that reads the whole body, as tonic does before a handler
    /// runs, and says whether it got there and what the body gave.
    fn reading(
        reached: Arc<AtomicBool>,
    ) -> impl Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone {
        tower::service_fn(move |request: http::Request<Body>| {
            let reached = reached.clone();
            async move {
                reached.store(true, Ordering::SeqCst);
                let response = match request.into_body().collect().await {
                    Ok(_) => http::Response::new(Body::empty()),
                    Err(status) => status.into_http(),
                };
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn request(path: &str, token: Option<&str>, bytes: usize) -> http::Request<Body> {
        let mut builder = http::Request::post(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder
            .body(Body::new(http_body_util::Full::new(Bytes::from(vec![
                0u8;
                bytes
            ]))))
            .unwrap()
    }

    fn status_of(response: &http::Response<Body>) -> Status {
        Status::from_header_map(response.headers()).unwrap()
    }

    const TOKEN: &str = "st.1b7c3f0e-1f2a-4c3b-9d4e-5f6a7b8c9d0e.0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_missing_or_malformed_token_is_refused_before_the_message_is_read() {
        for token in [None, Some("not-a-token")] {
            let reached = Arc::new(AtomicBool::new(false));
            let service = GuardLayer::new(rules()).layer(reading(reached.clone()));
            // Far over the limit too: the token is looked at first.
            let response = service
                .oneshot(request("/latchkey.test.v1.Test/Write", token, 1 << 20))
                .await
                .unwrap();
            let status = status_of(&response);
            assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
            assert_eq!(
                status::reason_of(&status).as_deref(),
                Some("TOKEN_MALFORMED")
            );
            assert!(
                !reached.load(Ordering::SeqCst),
                "{token:?}: the body was read"
            );
        }
    }

    #[tokio::test]
    async fn a_message_over_its_methods_limit_is_invalid_naming_the_limit() {
        let reached = Arc::new(AtomicBool::new(false));
        let service = GuardLayer::new(rules()).layer(reading(reached));
        let over = service
            .clone()
            .oneshot(request("/latchkey.test.v1.Test/Write", Some(TOKEN), 106))
            .await
            .unwrap();
        let status = status_of(&over);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("larger than 100 bytes"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("Write"), "{}", status.message());
        for (path, bytes) in [
            ("/latchkey.test.v1.Test/Write", 105),
            ("/latchkey.test.v1.Test/Big", 1005),
        ] {
            let within = service
                .clone()
                .oneshot(request(path, Some(TOKEN), bytes))
                .await
                .unwrap();
            assert!(
                Status::from_header_map(within.headers()).is_none(),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn exempt_methods_and_other_services_need_no_bearer_but_keep_the_limit() {
        for path in [
            "/latchkey.test.v1.Test/Open",
            "/grpc.health.v1.Health/Check",
        ] {
            let reached = Arc::new(AtomicBool::new(false));
            let service = GuardLayer::new(rules()).layer(reading(reached.clone()));
            let response = service.oneshot(request(path, None, 10)).await.unwrap();
            assert!(
                Status::from_header_map(response.headers()).is_none(),
                "{path}"
            );
            assert!(reached.load(Ordering::SeqCst));
        }
    }
}
