//! Latchkey's gRPC contract, generated from `proto/` at build time.
//!
//! `auth::v1`, `secrets::v1` and `audit::v1` mirror the proto packages, and
//! [`FILE_DESCRIPTOR_SET`] feeds server reflection; [`convert`] is the one
//! hand-written part, translating them to and from the domain;
//! [`INTERNAL_KEY_HEADER`] is the one metadata header the services agree on.

pub mod convert;

/// The metadata header carrying the internal key: the secrets service
/// presents it on `Authorize`, vouching for the client IP it reports.
pub const INTERNAL_KEY_HEADER: &str = "x-latchkey-internal-key";

/// Package `latchkey.auth.v1`.
#[expect(
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason,
    reason = "prost and tonic emit #[allow]s without reasons"
)]
pub mod auth {
    /// Version 1 of the auth API.
    pub mod v1 {
        tonic::include_proto!("latchkey.auth.v1");
    }
}

/// Package `latchkey.secrets.v1`.
#[expect(
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason,
    reason = "prost and tonic emit #[allow]s without reasons"
)]
pub mod secrets {
    /// Version 1 of the secrets API.
    pub mod v1 {
        tonic::include_proto!("latchkey.secrets.v1");
    }
}

/// Package `latchkey.audit.v1`.
#[expect(
    clippy::allow_attributes,
    clippy::allow_attributes_without_reason,
    reason = "prost and tonic emit #[allow]s without reasons"
)]
pub mod audit {
    /// Version 1 of the audit API.
    pub mod v1 {
        tonic::include_proto!("latchkey.audit.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Latchkey proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/latchkey_descriptor.bin"));
