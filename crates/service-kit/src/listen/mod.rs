//! The one listener layer of every port (gRPC, HTTP, health) of both
//! services: no caller can hold the process's connections or descriptors.
//!
//! - [`ConnectionLimits`]: the caps and deadlines, from `LATCHKEY_*`
//!   variables, defaulted from the descriptor limit.
//! - [`Connections`]: the process-wide registry every listener admits
//!   through. A new connection over a cap (in all, or for its client
//!   address) is taken in by closing the oldest connection that has not
//!   started a request, or else the longest idle one, of the address that
//!   holds the most; a connection is refused only when every one is busy.
//!   So a flood of half-open connections never keeps a real client out.
//! - `guarded`: the accepted stream, which closes itself when its first
//!   bytes, its first request's headers or its next request are late.
//! - `activity`: the tower layer that tells a connection when a request is
//!   in flight (an idle connection is one with none).
//! - `http`: serving a tower service over HTTP/1.1 and HTTP/2 on these
//!   connections (the HTTP API's port; tonic serves the gRPC ports).

mod activity;
mod guarded;
mod http;
mod registry;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::ip::{DEFAULT_IPV6_PREFIX, TrustedIps};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::Stream;

pub(crate) use activity::tcp_info;
pub use activity::{ActivityLayer, ActivityService};
pub use guarded::{Accepted, Guarded};
pub use http::{PeerAddr, serve_http};

use crate::config::{ConfigError, Vars};
use registry::Registry;

/// The variables of [`ConnectionLimits`].
pub mod var {
    /// Open connections in all, over every port of the process.
    pub const MAX_CONNECTIONS: &str = "LATCHKEY_MAX_CONNECTIONS";
    /// Open connections per client address (IPv6 by prefix); trusted
    /// proxies are exempt.
    pub const MAX_CONNECTIONS_PER_ADDRESS: &str = "LATCHKEY_MAX_CONNECTIONS_PER_ADDRESS";
    /// How long a new connection may take to send its first bytes.
    pub const FIRST_BYTE_TIMEOUT_MILLIS: &str = "LATCHKEY_FIRST_BYTE_TIMEOUT_MILLIS";
    /// How long a new connection may take to send its first request's
    /// headers (HTTP/1.1: every request's).
    pub const HEADER_TIMEOUT_MILLIS: &str = "LATCHKEY_HEADER_TIMEOUT_MILLIS";
    /// How long a connection may stay open with no request in flight.
    pub const IDLE_TIMEOUT_SECONDS: &str = "LATCHKEY_IDLE_TIMEOUT_SECONDS";
    /// How often an HTTP/2 connection with nothing to read is pinged.
    pub const HTTP2_KEEPALIVE_SECONDS: &str = "LATCHKEY_HTTP2_KEEPALIVE_SECONDS";
    /// How long a ping may go unanswered before the connection is closed.
    pub const HTTP2_KEEPALIVE_TIMEOUT_SECONDS: &str = "LATCHKEY_HTTP2_KEEPALIVE_TIMEOUT_SECONDS";
    /// Concurrent HTTP/2 streams per connection.
    pub const MAX_STREAMS_PER_CONNECTION: &str = "LATCHKEY_MAX_STREAMS_PER_CONNECTION";
    /// How long one request may take, body included.
    pub const REQUEST_TIMEOUT_SECONDS: &str = "LATCHKEY_REQUEST_TIMEOUT_SECONDS";
    /// The prefix by which IPv6 clients are counted (connections and failure budgets).
    pub const IPV6_PREFIX_BITS: &str = "LATCHKEY_IPV6_PREFIX_BITS";
}

/// The caps and deadlines of every listener of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all (every port of the process together).
    pub max_connections: usize,
    /// Open connections per client address.
    pub max_per_address: usize,
    /// First bytes (TLS `ClientHello`, HTTP/2 preface, request line) due after accept.
    pub first_byte_timeout: Duration,
    /// The first request's headers due after accept; on HTTP/1.1 each request's.
    pub header_timeout: Duration,
    /// An open connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// HTTP/2 keepalive ping interval.
    pub keepalive_interval: Duration,
    /// HTTP/2 keepalive ping timeout.
    pub keepalive_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub max_streams: u32,
    /// One request's bound, body included.
    pub request_timeout: Duration,
    /// IPv6 clients are counted by this many leading bits.
    pub ipv6_prefix: u8,
}

/// Descriptors kept for what is not a client connection (database pools,
/// the auth channel, files), at least this many.
const MIN_RESERVED_DESCRIPTORS: u64 = 64;

impl ConnectionLimits {
    /// The defaults for a process allowed `descriptors` open files: an
    /// eighth (at least 64) is kept for everything else, a quarter of the
    /// rest is one address's share.
    #[must_use]
    pub fn for_descriptors(descriptors: u64) -> Self {
        let reserved = (descriptors / 8).max(MIN_RESERVED_DESCRIPTORS);
        let max_connections =
            usize::try_from(descriptors.saturating_sub(reserved).max(16)).unwrap_or(usize::MAX);
        Self {
            max_connections,
            max_per_address: (max_connections / 4).max(8),
            first_byte_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
            max_streams: 256,
            request_timeout: Duration::from_secs(30),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Reads the variables over the defaults for this process's descriptor limit.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let d = Self::for_descriptors(descriptor_limit());
        let millis = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            let ms: u64 = vars.parse_or(name, u64::try_from(default.as_millis()).unwrap_or(0))?;
            positive(name, Duration::from_millis(ms))
        };
        let seconds = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            positive(
                name,
                Duration::from_secs(vars.parse_or(name, default.as_secs())?),
            )
        };
        let header_timeout = millis(var::HEADER_TIMEOUT_MILLIS, d.header_timeout)?;
        let limits = Self {
            max_connections: vars.parse_or(var::MAX_CONNECTIONS, d.max_connections)?,
            max_per_address: vars.parse_or(var::MAX_CONNECTIONS_PER_ADDRESS, d.max_per_address)?,
            first_byte_timeout: millis(
                var::FIRST_BYTE_TIMEOUT_MILLIS,
                d.first_byte_timeout.min(header_timeout),
            )?,
            header_timeout,
            idle_timeout: seconds(var::IDLE_TIMEOUT_SECONDS, d.idle_timeout)?,
            keepalive_interval: seconds(var::HTTP2_KEEPALIVE_SECONDS, d.keepalive_interval)?,
            keepalive_timeout: seconds(var::HTTP2_KEEPALIVE_TIMEOUT_SECONDS, d.keepalive_timeout)?,
            max_streams: vars.parse_or(var::MAX_STREAMS_PER_CONNECTION, d.max_streams)?,
            request_timeout: seconds(var::REQUEST_TIMEOUT_SECONDS, d.request_timeout)?,
            ipv6_prefix: vars.parse_or(var::IPV6_PREFIX_BITS, d.ipv6_prefix)?,
        };
        for (name, value) in [
            (var::MAX_CONNECTIONS, limits.max_connections),
            (var::MAX_CONNECTIONS_PER_ADDRESS, limits.max_per_address),
            (
                var::MAX_STREAMS_PER_CONNECTION,
                usize::try_from(limits.max_streams).unwrap_or(usize::MAX),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        if limits.ipv6_prefix > 128 {
            return Err(ConfigError::new(
                var::IPV6_PREFIX_BITS,
                "an IPv6 prefix is at most 128 bits",
            ));
        }
        if limits.first_byte_timeout > limits.header_timeout {
            return Err(ConfigError::new(
                var::FIRST_BYTE_TIMEOUT_MILLIS,
                format!(
                    "is longer than {} ({} ms): the first bytes are part of the headers",
                    var::HEADER_TIMEOUT_MILLIS,
                    limits.header_timeout.as_millis()
                ),
            ));
        }
        Ok(limits)
    }
}

fn positive(name: &str, value: Duration) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(name, "must be greater than 0"));
    }
    Ok(value)
}

/// The soft limit on open files (`/proc/self/limits`), or 1024 where it
/// cannot be read.
#[must_use]
pub fn descriptor_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| {
            if soft == "unlimited" {
                Some(1 << 20)
            } else {
                soft.parse().ok()
            }
        })
        .unwrap_or(1024)
}

/// Every connection of a process, admitted under one set of
/// [`ConnectionLimits`]; cloned into each listener.
#[derive(Debug, Clone)]
pub struct Connections {
    registry: Arc<Registry>,
}

impl Connections {
    /// Connections under `limits`; peers in `exempt` (trusted proxies, behind
    /// which every client shares one address) have no per-address cap.
    #[must_use]
    pub fn new(limits: ConnectionLimits, exempt: TrustedIps) -> Self {
        Self {
            registry: Arc::new(Registry::new(limits, exempt)),
        }
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> &ConnectionLimits {
        self.registry.limits()
    }

    /// How many connections are open.
    #[must_use]
    pub fn open(&self) -> usize {
        self.registry.open()
    }

    /// The connections `listener` accepts, each admitted (or refused) and
    /// guarded, with `TCP_NODELAY`.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> impl Stream<Item = io::Result<Guarded<TcpStream>>> + Send + 'static {
        let registry = self.registry.clone();
        async_stream(listener, registry)
    }

    /// The layer that marks requests in flight on their connection.
    #[must_use]
    pub fn activity(&self) -> ActivityLayer {
        ActivityLayer::new(self.registry.clone())
    }
}

/// Accepts until the stream is dropped; accept errors (out of descriptors,
/// most likely) back off instead of spinning.
fn async_stream(
    listener: TcpListener,
    registry: Arc<Registry>,
) -> impl Stream<Item = io::Result<Guarded<TcpStream>>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    crate::accept::prepare_accepted(&stream);
                    if let Some(guarded) = registry.admit(stream, peer)
                        && tx.send(Ok(guarded)).await.is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests;
