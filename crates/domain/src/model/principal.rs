//! Who a grant was made to: a service token or an identity.

use std::fmt;

use super::{IdentityId, ServiceTokenId};
use crate::InvalidInput;

/// The holder of a token a call was authorised for. Its text form,
/// `service-token:<id>` or `identity:<id>`, is what `Authorize` and
/// `LookupToken` report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A service token, by token id.
    ServiceToken(ServiceTokenId),
    /// A machine identity, by identity id.
    Identity(IdentityId),
}

impl Principal {
    const SERVICE_TOKEN: &'static str = "service-token:";
    const IDENTITY: &'static str = "identity:";

    /// Reads the text form; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, InvalidInput> {
        // The text is a service's reply, never trimmed: a padded id is malformed.
        let malformed = |_| InvalidInput::new(field, "the principal's id is malformed");
        if let Some(id) = raw.strip_prefix(Self::SERVICE_TOKEN)
            && id.trim() == id
        {
            ServiceTokenId::parse(id, field)
                .map(Self::ServiceToken)
                .map_err(malformed)
        } else if let Some(id) = raw.strip_prefix(Self::IDENTITY)
            && id.trim() == id
        {
            IdentityId::parse(id, field)
                .map(Self::Identity)
                .map_err(malformed)
        } else if raw.starts_with(Self::SERVICE_TOKEN) || raw.starts_with(Self::IDENTITY) {
            Err(InvalidInput::new(field, "the principal's id is malformed"))
        } else {
            Err(InvalidInput::new(
                field,
                "a principal is service-token:<id> or identity:<id>",
            ))
        }
    }

    /// `"service"` or `"identity"`: the label token-use metrics carry.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::ServiceToken(_) => "service",
            Principal::Identity(_) => "identity",
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::ServiceToken(id) => write!(f, "{}{id}", Self::SERVICE_TOKEN),
            Principal::Identity(id) => write!(f, "{}{id}", Self::IDENTITY),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn principals_round_trip_through_their_text_form() {
        for p in [
            Principal::ServiceToken(ServiceTokenId::from_stored("0b0c".into())),
            Principal::Identity(IdentityId::from_stored("9f8e".into())),
        ] {
            assert_eq!(Principal::parse(&p.to_string(), "principal").unwrap(), p);
        }
        assert_eq!(
            Principal::Identity(IdentityId::from_stored("x".into())).to_string(),
            "identity:x"
        );
    }

    #[test]
    fn unknown_kinds_and_empty_ids_are_refused_naming_the_field() {
        for raw in [
            "",
            "user:1",
            "identity:",
            "service-token:",
            "identity:a b",
            "identity: a",
        ] {
            let err = Principal::parse(raw, "principal").unwrap_err();
            assert_eq!(err.field, "principal", "{raw:?}");
        }
    }

    #[test]
    fn kind_is_the_metric_label() {
        assert_eq!(
            Principal::ServiceToken(ServiceTokenId::from_stored("a".into())).kind(),
            "service"
        );
        assert_eq!(
            Principal::Identity(IdentityId::from_stored("a".into())).kind(),
            "identity"
        );
    }
}
