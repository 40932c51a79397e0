//! The one translation between the wire and the domain: `TryFrom` for
//! requests (the error names the offending field), `From` for replies. The
//! handlers of both services are `try_into()?`, the use case, `into()`.

pub mod audit;
pub mod auth;
pub mod secrets;

use latchkey_domain::crypto::Sealed;

/// Both APIs carry the project key's envelope in a message of their own.
macro_rules! envelope {
    ($($pb:path),*) => {$(
        impl From<&Sealed> for $pb {
            fn from(sealed: &Sealed) -> Self {
                Self {
                    ciphertext: sealed.ciphertext.clone(),
                    iv: sealed.iv.clone(),
                    tag: sealed.tag.clone(),
                }
            }
        }

        impl From<$pb> for Sealed {
            fn from(key: $pb) -> Self {
                Sealed {
                    ciphertext: key.ciphertext,
                    iv: key.iv,
                    tag: key.tag,
                }
            }
        }
    )*};
}

envelope!(
    crate::auth::v1::EncryptedProjectKey,
    crate::secrets::v1::EncryptedProjectKey
);

use chrono::{DateTime, Utc};

/// A time as a protobuf timestamp.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as a time, when given; the error names `field`.
pub fn time_of(
    at: Option<&prost_types::Timestamp>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, latchkey_domain::InvalidInput> {
    at.map(|t| {
        DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(u32::MAX))
            .ok_or_else(|| latchkey_domain::InvalidInput::new(field, "is not a time"))
    })
    .transpose()
}

#[cfg(test)]
mod tests;
