//! The one translation between the wire and the domain: `TryFrom` for
//! requests (the error names the offending field), `From` for replies. The
//! handlers of both services are `try_into()?`, the use case, `into()`.

pub mod auth;
pub mod secrets;

use chrono::{DateTime, Utc};

/// A time as a protobuf timestamp.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
