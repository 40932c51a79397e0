//! The ids of Latchkey's entities: opaque strings, one type per entity so
//! a project id can never be passed where a token id is expected.

use std::fmt;

use uuid::Uuid;

use crate::InvalidInput;

/// The longest id a caller may send, in bytes. Latchkey's own ids are
/// 36-character UUIDs; the margin keeps ids from other systems usable.
pub const MAX_ID_BYTES: usize = 64;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            #[must_use]
            pub fn generate() -> Self {
                Self(Uuid::new_v4().to_string())
            }

            /// Parses a caller's id, trimmed; `field` names it in the error.
            /// Otherwise opaque: an id that names nothing is not found, not invalid.
            pub fn parse(raw: &str, field: &str) -> Result<Self, InvalidInput> {
                parse_id(raw, field).map(Self)
            }

            /// An id read back from storage, which only ever holds valid ids.
            #[must_use]
            pub fn from_stored(id: String) -> Self {
                Self(id)
            }

            /// The id's text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            #[must_use]
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id.to_string())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A project's id.
    ProjectId
);
id_type!(
    /// A service token's id: the `<id>` of `st.<id>.<secret>`.
    ServiceTokenId
);
id_type!(
    /// A machine identity's id.
    IdentityId
);
id_type!(
    /// An identity access token's id.
    AccessTokenId
);

impl ProjectId {
    /// Parses a project id that must be one of Latchkey's (a UUID), as the
    /// secrets API requires; blank is `None`, the token's own project.
    pub fn parse_optional_uuid(raw: &str, field: &str) -> Result<Option<Self>, InvalidInput> {
        let id = raw.trim();
        if id.is_empty() {
            return Ok(None);
        }
        match Uuid::parse_str(id) {
            Ok(_) => Ok(Some(Self(id.to_owned()))),
            Err(_) => Err(InvalidInput::new(
                field,
                format!("{} is not a project id (a UUID)", crate::error::excerpt(id)),
            )),
        }
    }
}

fn parse_id(raw: &str, field: &str) -> Result<String, InvalidInput> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(InvalidInput::new(field, "is required"));
    }
    if id.len() > MAX_ID_BYTES || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(InvalidInput::new(
            field,
            format!("an id is at most {MAX_ID_BYTES} bytes, without spaces or control characters"),
        ));
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_trimmed_and_otherwise_kept_as_sent() {
        let id = ProjectId::parse("  not-a-uuid  ", "project_id").unwrap();
        assert_eq!(id.as_str(), "not-a-uuid");
    }

    #[test]
    fn a_blank_id_is_required_in_its_field() {
        for raw in ["", "   "] {
            let err = IdentityId::parse(raw, "identity_id").unwrap_err();
            assert_eq!(err.field, "identity_id");
            assert_eq!(err.message, "is required");
        }
    }

    #[test]
    fn an_oversized_or_spaced_id_is_invalid_without_being_echoed() {
        let long = "a".repeat(MAX_ID_BYTES + 1);
        for raw in [long.as_str(), "a b", "a\u{0}b"] {
            let err = ServiceTokenId::parse(raw, "token_id").unwrap_err();
            assert_eq!(err.field, "token_id");
            assert!(!err.message.contains(raw), "{}", err.message);
        }
        assert!(ServiceTokenId::parse(&"a".repeat(MAX_ID_BYTES), "token_id").is_ok());
    }

    #[test]
    fn a_secrets_api_project_id_is_blank_or_a_uuid() {
        assert_eq!(ProjectId::parse_optional_uuid(" ", "project_id"), Ok(None));
        let id = Uuid::new_v4().to_string();
        assert_eq!(
            ProjectId::parse_optional_uuid(&id, "project_id")
                .unwrap()
                .unwrap()
                .as_str(),
            id
        );
        let err = ProjectId::parse_optional_uuid("p1", "project_id").unwrap_err();
        assert_eq!(err.field, "project_id");
        assert!(err.message.contains("UUID"), "{}", err.message);
    }

    #[test]
    fn generated_ids_are_distinct_uuids() {
        let (a, b) = (AccessTokenId::generate(), AccessTokenId::generate());
        assert_ne!(a, b);
        assert!(Uuid::parse_str(a.as_str()).is_ok());
    }
}
