//! What an audit event says about how a call arrived: the transport and
//! method or route, the user agent, the forwarded chain a trusted proxy
//! gave, and the trace the call's span belongs to.

use std::net::IpAddr;

use http::HeaderMap;
use latchkey_domain::audit::{AuditEvent, MAX_USER_AGENT, Transport};
use latchkey_domain::ip::TrustedIps;
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The most forwarded addresses kept.
const MAX_FORWARDED: usize = 16;

/// How a call arrived, as its events record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallMeta {
    /// gRPC or HTTP.
    pub transport: Transport,
    /// The gRPC method or the HTTP route.
    pub method: String,
    /// The caller's `user-agent`, cut to its limit.
    pub user_agent: String,
    /// `x-forwarded-for`, when the peer is a trusted proxy.
    pub forwarded_for: Vec<String>,
    /// The trace id of the call's span, or of the caller's `traceparent`.
    pub trace_id: String,
}

impl CallMeta {
    /// A call on `transport` to `method`, read from its headers (gRPC
    /// metadata are HTTP/2 headers) as seen from `peer`.
    #[must_use]
    pub fn read(
        transport: Transport,
        method: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted_proxies: &TrustedIps,
    ) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded_for = match peer {
            Some(peer) if !trusted_proxies.is_empty() && trusted_proxies.allows(peer) => headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|hop| hop.trim().chars().take(64).collect::<String>())
                .filter(|hop| !hop.is_empty())
                .take(MAX_FORWARDED)
                .collect(),
            _ => Vec::new(),
        };
        Self {
            transport,
            method: method.chars().take(200).collect(),
            user_agent: header("user-agent")
                .unwrap_or_default()
                .chars()
                .take(MAX_USER_AGENT)
                .collect(),
            forwarded_for,
            trace_id: current_trace_id().unwrap_or_else(|| {
                header("traceparent")
                    .and_then(traceparent_id)
                    .unwrap_or_default()
            }),
        }
    }

    /// A call the service makes itself (the bootstrap, the reaper).
    #[must_use]
    pub fn internal(method: &str) -> Self {
        Self {
            transport: Transport::Internal,
            method: method.to_owned(),
            user_agent: String::new(),
            forwarded_for: Vec::new(),
            trace_id: current_trace_id().unwrap_or_default(),
        }
    }

    /// An event of `event_type` at `time` carrying this call's fields.
    #[must_use]
    pub fn event(&self, event_type: &str, time: chrono::DateTime<chrono::Utc>) -> AuditEvent {
        let mut event = AuditEvent::new(event_type, time, self.transport);
        event.method.clone_from(&self.method);
        event.user_agent.clone_from(&self.user_agent);
        event.forwarded_for.clone_from(&self.forwarded_for);
        event.trace_id.clone_from(&self.trace_id);
        event
    }
}

/// The trace id of the current span, when it is traced.
fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn traceparent_id(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (_version, id) = (parts.next()?, parts.next()?);
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.bytes().any(|b| b != b'0'))
        .then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_gives_its_trace_id_and_nonsense_gives_none() {
        assert_eq!(
            traceparent_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            traceparent_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(traceparent_id("garbage"), None);
    }

    #[test]
    fn the_forwarded_chain_is_kept_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 192.0.2.7".parse().unwrap(),
        );
        headers.insert("user-agent", "infisical-cli/0.41".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = TrustedIps::parse(&["10.0.0.0/8"], "proxies").unwrap();

        let via_proxy = CallMeta::read(Transport::Http, "GET /x", &headers, Some(proxy), &trusted);
        let direct = CallMeta::read(
            Transport::Http,
            "GET /x",
            &headers,
            Some("203.0.113.9".parse().unwrap()),
            &trusted,
        );

        assert_eq!(via_proxy.forwarded_for, ["198.51.100.1", "192.0.2.7"]);
        assert!(direct.forwarded_for.is_empty());
        assert_eq!(direct.user_agent, "infisical-cli/0.41");
    }
}
