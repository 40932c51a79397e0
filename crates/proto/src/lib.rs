//! Latchkey's gRPC contract, generated from `proto/` at build time.
//!
//! Nothing but generated code lives here: `auth::v1` and `secrets::v1` mirror
//! the proto packages, and [`FILE_DESCRIPTOR_SET`] feeds server reflection.

#![allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    reason = "generated code is not held to the workspace lints"
)]

/// Package `latchkey.auth.v1`.
pub mod auth {
    /// Version 1 of the auth API.
    pub mod v1 {
        tonic::include_proto!("latchkey.auth.v1");
    }
}

/// Package `latchkey.secrets.v1`.
pub mod secrets {
    /// Version 1 of the secrets API.
    pub mod v1 {
        tonic::include_proto!("latchkey.secrets.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Latchkey proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/latchkey_descriptor.bin"));
