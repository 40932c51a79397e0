//! Who a grant was made to: a service token or an identity.

use std::fmt;

use crate::InvalidInput;

/// The holder of a token a call was authorised for. Its text form,
/// `service-token:<id>` or `identity:<id>`, is what `Authorize` and
/// `LookupToken` report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A service token, by token id.
    ServiceToken(String),
    /// A machine identity, by identity id.
    Identity(String),
}

impl Principal {
    const SERVICE_TOKEN: &'static str = "service-token:";
    const IDENTITY: &'static str = "identity:";

    /// Reads the text form; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, InvalidInput> {
        let (kind, id) = if let Some(id) = raw.strip_prefix(Self::SERVICE_TOKEN) {
            (Principal::ServiceToken as fn(String) -> Self, id)
        } else if let Some(id) = raw.strip_prefix(Self::IDENTITY) {
            (Principal::Identity as fn(String) -> Self, id)
        } else {
            return Err(InvalidInput::new(
                field,
                "a principal is service-token:<id> or identity:<id>",
            ));
        };
        if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_control() || c == ' ') {
            return Err(InvalidInput::new(field, "the principal's id is malformed"));
        }
        Ok(kind(id.to_owned()))
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
            Principal::ServiceToken("0b0c".into()),
            Principal::Identity("9f8e".into()),
        ] {
            assert_eq!(Principal::parse(&p.to_string(), "principal").unwrap(), p);
        }
        assert_eq!(Principal::Identity("x".into()).to_string(), "identity:x");
    }

    #[test]
    fn unknown_kinds_and_empty_ids_are_refused_naming_the_field() {
        for raw in ["", "user:1", "identity:", "service-token:", "identity:a b"] {
            let err = Principal::parse(raw, "principal").unwrap_err();
            assert_eq!(err.field, "principal", "{raw:?}");
        }
    }

    #[test]
    fn kind_is_the_metric_label() {
        assert_eq!(Principal::ServiceToken("a".into()).kind(), "service");
        assert_eq!(Principal::Identity("a".into()).kind(), "identity");
    }
}
