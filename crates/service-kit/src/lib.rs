//! What both Latchkey services share at their edges, so each rule has one home:
//!
//! - [`accept`]: the size limits, the accepted socket's options and the
//!   shutdown signal every listener and server shares (a leaf module).
//! - [`audit`]: the audit recorder: batched, chained, required or best effort.
//! - [`cache`]: per-replica TTL caches bounded in size and staleness, with
//!   single-flight loads and race-free invalidation.
//! - [`config`]: environment variables (and `*_FILE` variants) read once at
//!   start-up, with errors that name the variable; key files generated for development.
//! - [`status`]: domain errors to `tonic::Status` with a `google.rpc.ErrorInfo`
//!   reason, and back; tonic's own oversized-message refusal made one of them.
//! - [`guard`]: a gRPC request's bearer token checked before its message
//!   is read, and its message capped at its method's maximum.
//! - [`listen`]: the one listener layer of every port: connection caps in
//!   all and per client address, first-byte, header and idle deadlines,
//!   HTTP/2 stream caps and keepalive, request timeouts.
//! - [`request`]: the bearer token and the client IP of a request.
//! - [`rpc_span`]: the one span per RPC, and the call counted.
//! - [`serve`]: reflection (v1 and v1alpha) and health, listening (TLS, the
//!   health port, the bounded drain on shutdown), and tracing set-up.
//! - [`tls`]: server TLS and mTLS from files, reloaded when they change.
//! - [`telemetry`]: logs, OTLP traces and metrics, and W3C trace context
//!   propagation.

pub mod accept;
pub mod audit;
pub mod cache;
pub mod config;
pub mod guard;
pub mod listen;
pub mod request;
pub mod rpc_span;
pub mod serve;
pub mod status;
pub mod telemetry;
pub mod tls;
