//! Environments, folder paths and secret names, parsed at the edge.

use std::fmt;

use crate::InvalidInput;
use crate::error::excerpt;

/// The longest folder path (or scope glob), in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// The most folders a path (or scope glob) may hold.
pub const MAX_PATH_DEPTH: usize = 32;

/// An environment slug such as `dev`: lowercase ASCII letters, digits, `-` and
/// `_`, starting with a letter or digit, 1 to 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Environment(String);

impl Environment {
    /// The environments every new project gets, with their display names.
    pub const DEFAULTS: [(&'static str, &'static str); 3] = [
        ("dev", "Development"),
        ("staging", "Staging"),
        ("prod", "Production"),
    ];

    /// Parses a slug; the error names the field `environment`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok_first = raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if raw.is_empty() || raw.len() > 32 || !ok_first || !ok_rest {
            return Err(InvalidInput::new(
                "environment",
                format!(
                    "{} is not an environment slug: use 1 to 32 lowercase letters, digits, '-' or '_', e.g. \"dev\"",
                    excerpt(raw)
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The slug.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised absolute folder path: `/` or `/a/b`, no trailing slash, no
/// repeated slashes, no `.` or `..` segment, no NUL or control characters.
///
/// Paths are normalised, never resolved: `..` is refused, not followed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath(String);

impl SecretPath {
    /// The root folder `/`.
    #[must_use]
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// A caller's folder path: empty means the root `/`, anything else is
    /// [`SecretPath::parse`]d.
    pub fn parse_or_root(raw: &str) -> Result<Self, InvalidInput> {
        if raw.is_empty() {
            Ok(Self::root())
        } else {
            Self::parse(raw)
        }
    }

    /// Parses and normalises a folder path; the error names the field `secret_path`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let err = |message: String| InvalidInput::new("secret_path", message);
        if !raw.starts_with('/') {
            // Suggest the absolute form only where it is itself valid.
            let absolute = format!("/{}", raw.trim_start_matches("./"));
            let example = match Self::parse(&absolute) {
                Ok(path) => path.0,
                Err(_) => "/backend".to_owned(),
            };
            return Err(err(format!(
                "{} is relative: folder paths are absolute, e.g. {}",
                excerpt(raw),
                excerpt(&example)
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(err(
                "contains NUL or a control character; use printable characters only".to_owned(),
            ));
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(err(format!(
                "is {} bytes long; a folder path is at most {MAX_PATH_LEN}",
                raw.len()
            )));
        }
        let mut segments = Vec::new();
        for segment in raw.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." {
                return Err(err(format!(
                    "{} holds a {segment:?} segment; paths are not resolved, write the folder path without it",
                    excerpt(raw)
                )));
            }
            segments.push(segment);
        }
        if segments.len() > MAX_PATH_DEPTH {
            return Err(err(format!(
                "is {} folders deep; a folder path is at most {MAX_PATH_DEPTH} deep",
                segments.len()
            )));
        }
        Ok(Self(format!("/{}", segments.join("/"))))
    }

    /// The normalised path.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `base` or a folder below it.
    #[must_use]
    pub fn is_within(&self, base: &SecretPath) -> bool {
        base.0 == "/"
            || self.0 == base.0
            || (self.0.starts_with(&base.0) && self.0.as_bytes().get(base.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret's name such as `DATABASE_URL`: 1 to 256 ASCII letters, digits, `_`, `-` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

impl SecretName {
    /// Parses a name; the error names the field `name`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok = !raw.is_empty()
            && raw.len() <= 256
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(InvalidInput::new(
                "name",
                format!(
                    "{} is not a secret name: use 1 to 256 ASCII letters, digits, '_', '-' or '.'",
                    excerpt(raw)
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_path_means_the_root_and_a_blank_one_is_still_invalid() {
        assert_eq!(SecretPath::parse_or_root("").unwrap(), SecretPath::root());
        assert_eq!(SecretPath::parse_or_root("/a/").unwrap().as_str(), "/a");
        assert_eq!(
            SecretPath::parse_or_root(" ").unwrap_err().field,
            "secret_path"
        );
    }

    #[test]
    fn oversized_paths_are_refused_naming_the_limit_without_echoing_them() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        let err = SecretPath::parse(&long).unwrap_err();
        assert!(err.message.contains("at most 1024"), "{}", err.message);
        let deep = "/a".repeat(MAX_PATH_DEPTH + 1);
        assert!(
            SecretPath::parse(&deep)
                .unwrap_err()
                .message
                .contains("at most 32 deep")
        );
        assert!(SecretPath::parse(&"/a".repeat(MAX_PATH_DEPTH)).is_ok());
        let env = Environment::parse(&"x".repeat(1_000_000)).unwrap_err();
        assert!(
            env.message.len() < 300,
            "the message does not echo the input whole"
        );
    }

    #[test]
    fn paths_are_normalised_by_dropping_trailing_and_repeated_slashes() {
        let table = [
            ("/", "/"),
            ("//", "/"),
            ("/a", "/a"),
            ("/a/", "/a"),
            ("/a//b", "/a/b"),
            ("//a///b//", "/a/b"),
            ("/.config", "/.config"),
            ("/a.b/c..d", "/a.b/c..d"),
            ("/App/Ünïcode", "/App/Ünïcode"),
        ];
        for (raw, want) in table {
            assert_eq!(SecretPath::parse(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn relative_dot_and_control_paths_are_refused_with_a_hint() {
        let table = [
            ("api", "relative"),
            ("", "relative"),
            ("./api", "relative"),
            ("./api", "e.g. \"/api\""),
            ("../x", "e.g. \"/backend\""),
            ("/a/./b", "\".\" segment"),
            ("/a/..", "\"..\" segment"),
            ("/../etc", "\"..\" segment"),
            ("/a\0b", "control"),
            ("/a\nb", "control"),
            ("/a\u{7f}", "control"),
        ];
        for (raw, hint) in table {
            let err = SecretPath::parse(raw).unwrap_err();
            assert_eq!(err.field, "secret_path");
            assert!(err.message.contains(hint), "{raw:?}: {}", err.message);
        }
    }

    #[test]
    fn is_within_respects_segment_boundaries() {
        let p = |s| SecretPath::parse(s).unwrap();
        assert!(p("/a/b").is_within(&p("/a")));
        assert!(p("/a").is_within(&p("/a")));
        assert!(p("/a").is_within(&p("/")));
        assert!(!p("/ab").is_within(&p("/a")));
        assert!(!p("/a").is_within(&p("/a/b")));
    }

    #[test]
    fn environment_slugs_are_validated() {
        for ok in ["dev", "prod-eu", "stage_2", "0"] {
            assert!(Environment::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Dev", "-dev", "dev env", "dev/x", &"x".repeat(33)] {
            let err = Environment::parse(bad).unwrap_err();
            assert_eq!(err.field, "environment", "{bad}");
        }
    }

    #[test]
    fn secret_names_are_validated() {
        for ok in ["DATABASE_URL", "api.key", "a-b", "X"] {
            assert!(SecretName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A B", "a/b", "a=b", "é"] {
            assert_eq!(SecretName::parse(bad).unwrap_err().field, "name", "{bad}");
        }
    }
}
