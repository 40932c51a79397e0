//! The Latchkey secrets service: secrets and their versions, stored only as
//! AES-256-GCM ciphertext, every call authorised by the auth service first.
//!
//! - [`config`]: the typed configuration.
//! - [`audit_gate`]: who may read this service's audit trail (the auth service says).
//! - [`auth_client`]: the tonic implementation of the domain's `Authorizer`;
//!   it fails closed with `AUTH_UNAVAILABLE`.
//! - [`app`]: the use cases: authorise, then touch the store.
//! - [`store`]: the database behind the per-replica ciphertext cache.
//! - [`grpc`]: the tonic service: parse, apply, encode.
//! - [`http`]: the Infisical-compatible HTTP API over the same use cases.
//! - [`error`]: the one mapping from use-case errors to gRPC statuses.
//! - [`startup`]: wiring: `start` (store migrated), `serve`, and `run` for both.

#![cfg_attr(
    test,
    expect(
        unused_crate_dependencies,
        reason = "the unit-test build links the dev-dependencies the integration tests use"
    )
)]

// The binary (main.rs) installs it as the global allocator; Cargo has no
// dependencies for a binary alone.
use mimalloc as _;

pub mod app;
pub mod audit_gate;
pub mod auth_client;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod startup;
pub mod store;

pub use config::Config;
