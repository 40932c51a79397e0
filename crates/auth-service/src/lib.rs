//! The Latchkey auth service: projects, project keys, service tokens, the
//! bootstrap admin identity, and the `Authorize` decision the secrets service
//! asks for on every call.
//!
//! - [`config`]: the typed configuration, read once at start-up.
//! - [`app`]: the use cases, thin over `latchkey-domain` and `latchkey-store`.
//! - [`verifier`]: argon2id verification, bounded in concurrency and cached.
//! - [`limiter`]: per-address and per-token failure budgets for verification.
//! - [`store`]: the database behind the per-replica row caches and the
//!   batched use counts.
//! - [`grpc`]: the tonic service: parse, apply, encode.
//! - [`error`]: the one mapping from use-case errors to gRPC statuses.
//! - [`startup`]: wiring, the bootstrap admin, the expired-token reaper, `run`.

// The binary (main.rs) installs it as the global allocator; Cargo has no
// dependencies for a binary alone.
use mimalloc as _;

pub mod app;
pub mod config;
pub mod error;
pub mod grpc;
pub mod limiter;
pub mod startup;
pub mod store;
pub mod verifier;

pub use config::Config;
pub use startup::{Running, run};
