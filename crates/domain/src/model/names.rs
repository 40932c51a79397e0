//! Names people give things: projects, environments, identities and tokens.

use std::fmt;

use crate::InvalidInput;

/// A display name: 1 to 64 printable characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Parses a required name; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_CHARS || has_control(name) {
            return Err(InvalidInput::new(
                field,
                "a name is 1 to 64 printable characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Parses an optional name: blank means `default`.
    pub fn parse_or(raw: &str, field: &str, default: &str) -> Result<Self, InvalidInput> {
        if raw.trim().is_empty() {
            Self::parse(default, field)
        } else {
            Self::parse(raw, field)
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service token's name: at most 256 printable characters, trimmed;
/// blank is `Service token`, as in Infisical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 256;

    /// What a token created without a name is called.
    pub const DEFAULT: &'static str = "Service token";

    /// Parses the `name` field of a new token.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        if name.chars().count() > Self::MAX_CHARS || has_control(name) {
            return Err(InvalidInput::new(
                "name",
                "a token name is at most 256 printable characters",
            ));
        }
        Ok(Self(if name.is_empty() {
            Self::DEFAULT.to_owned()
        } else {
            name.to_owned()
        }))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

fn has_control(name: &str) -> bool {
    name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded_naming_the_field() {
        assert_eq!(
            DisplayName::parse("  web  ", "name").unwrap().as_str(),
            "web"
        );
        assert_eq!(
            DisplayName::parse(&"é".repeat(64), "name")
                .unwrap()
                .as_str()
                .chars()
                .count(),
            64,
            "the bound is in characters, not bytes"
        );
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(65)] {
            let err = DisplayName::parse(bad, "identity.name").unwrap_err();
            assert_eq!(err.field, "identity.name", "{bad:?}");
        }
    }

    #[test]
    fn a_blank_optional_display_name_takes_the_default() {
        assert_eq!(
            DisplayName::parse_or(" ", "name", "Access token")
                .unwrap()
                .as_str(),
            "Access token"
        );
        assert_eq!(
            DisplayName::parse_or("ci", "name", "Access token")
                .unwrap()
                .as_str(),
            "ci"
        );
        assert!(DisplayName::parse_or("a\u{7}", "name", "x").is_err());
    }

    #[test]
    fn token_names_default_to_service_token_and_refuse_control_characters() {
        assert_eq!(TokenName::parse("").unwrap().as_str(), "Service token");
        assert_eq!(TokenName::parse(" deploy ").unwrap().as_str(), "deploy");
        assert!(TokenName::parse(&"x".repeat(256)).is_ok());
        let err = TokenName::parse(&"x".repeat(257)).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(TokenName::parse("a\u{0}b").is_err());
    }
}
