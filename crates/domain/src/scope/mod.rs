//! Scopes: an environment plus a folder path glob, and read/write permissions.
//!
//! Glob semantics follow Infisical's picomatch-based matcher, on the whole
//! normalised path, case-sensitively, folder by folder (see `domain/src/glob.rs`):
//! `*` matches one non-empty folder name and never crosses `/`; `**` matches
//! any number of folders; `?`, `[...]` and `{a,b}` are as in shell globs and
//! never match `/`. Two deliberate differences from picomatch, checked by a
//! differential test against picomatch itself: a glob ending in `/**` also
//! matches the folder itself (`/*/**` matches `/x`), and hidden folders
//! (`/.config`) are ordinary folders.

mod cache;

use std::fmt;

use crate::InvalidInput;
use crate::error::excerpt;
use crate::glob::Compiled;
use crate::path::{MAX_PATH_DEPTH, MAX_PATH_LEN};

/// The most scopes one token or membership may have.
pub const MAX_SCOPES: usize = 64;
use crate::path::{Environment, SecretPath};

/// A compiled folder path glob such as `/backend/**`.
#[derive(Clone)]
pub struct PathGlob {
    source: String,
    /// Shared: a cloned glob (every cached row) costs no recompilation.
    compiled: std::sync::Arc<Compiled>,
}

impl PathGlob {
    /// Parses a glob; it must be absolute. The error names the field `secret_path`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let err = |message: String| InvalidInput::new("secret_path", message);
        if !raw.starts_with('/') {
            return Err(err(format!(
                "glob {} is relative: scope globs are absolute, e.g. \"/backend/**\"",
                excerpt(raw)
            )));
        }
        if raw.chars().any(char::is_control) {
            return Err(err("glob contains NUL or a control character".to_owned()));
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(err(format!(
                "glob is {} bytes long; a scope glob is at most {MAX_PATH_LEN}",
                raw.len()
            )));
        }
        let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        if segments.len() > MAX_PATH_DEPTH {
            return Err(err(format!(
                "glob is {} folders deep; a scope glob is at most {MAX_PATH_DEPTH} deep",
                segments.len()
            )));
        }
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(err(format!(
                "glob {} holds a \".\" or \"..\" segment, which can never match a normalised path",
                excerpt(raw)
            )));
        }
        let compiled = Compiled::new(&segments)
            .map_err(|e| err(format!("glob {} is not valid: it {e}", excerpt(raw))))?;
        Ok(Self {
            source: format!("/{}", segments.join("/")),
            compiled: std::sync::Arc::new(compiled),
        })
    }

    /// True when the glob matches the whole normalised path.
    #[must_use]
    pub fn matches(&self, path: &SecretPath) -> bool {
        // As picomatch, a path that is the glob's own text matches it.
        if path.as_str() == self.source {
            return true;
        }
        let segments: Vec<&str> = path.as_str().split('/').filter(|s| !s.is_empty()).collect();
        self.compiled.matches(&segments)
    }

    /// The glob as written, with repeated and trailing slashes removed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when every path this glob matches is matched by `outer` too,
    /// as far as can be shown segment by segment; false when it cannot be
    /// shown (so a delegation it guards is refused, never widened). `**`
    /// covers any run of folders, `*` any one folder, a pattern the literal
    /// folder names it matches or the same pattern; everything else only
    /// itself.
    #[must_use]
    pub fn is_within(&self, outer: &PathGlob) -> bool {
        covers(&outer.segments(), &self.segments())
    }

    fn segments(&self) -> Vec<&str> {
        let written: Vec<&str> = self.source.split('/').filter(|s| !s.is_empty()).collect();
        crate::glob::effective_segments(&written)
    }
}

/// Whether the segment sequence `outer` covers every path `inner` matches.
fn covers(outer: &[&str], inner: &[&str]) -> bool {
    match (outer.split_first(), inner.split_first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some((&"**", rest)), _) => {
            // `**` absorbs nothing, or one more of inner's segments (itself
            // a `**` included).
            covers(rest, inner) || (!inner.is_empty() && covers(outer, &inner[1..]))
        }
        (Some(_), None) => false,
        (Some(_), Some((&"**", _))) => false,
        (Some((o, o_rest)), Some((i, i_rest))) => segment_covers(o, i) && covers(o_rest, i_rest),
    }
}

/// Whether the one-folder pattern `outer` matches every name `inner` does.
fn segment_covers(outer: &str, inner: &str) -> bool {
    if outer == inner || outer == "*" {
        return true;
    }
    // Only a literal inner name can be tested against a pattern.
    is_literal_segment(inner)
        && PathGlob::parse(&format!("/{outer}")).is_ok_and(|glob| {
            SecretPath::parse(&format!("/{inner}")).is_ok_and(|path| glob.matches(&path))
        })
}

/// No character any glob dialect (picomatch's extglobs included) treats specially.
fn is_literal_segment(segment: &str) -> bool {
    !segment.contains(['*', '?', '[', ']', '{', '}', '(', ')', '!', '+', '@', '\\'])
}

impl fmt::Debug for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PathGlob").field(&self.source).finish()
    }
}

impl PartialEq for PathGlob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for PathGlob {}

/// One scope: an exact environment and a folder path glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The environment, matched exactly.
    pub environment: Environment,
    /// The folder path glob.
    pub glob: PathGlob,
}

impl Scope {
    /// Builds a scope from its two parts.
    pub fn new(environment: &str, glob: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            environment: Environment::parse(environment)?,
            glob: PathGlob::parse(glob)?,
        })
    }

    /// Parses the CLI form `<env>:<glob>`, e.g. `dev:/backend/**`.
    pub fn parse_cli(raw: &str) -> Result<Self, InvalidInput> {
        let (env, glob) = raw.split_once(':').ok_or_else(|| {
            InvalidInput::new(
                "scope",
                format!(
                    "{} is not <environment>:<path glob>, e.g. \"dev:/backend/**\"",
                    excerpt(raw)
                ),
            )
        })?;
        Self::new(env, glob)
    }

    /// True when this scope covers `path` in `environment`.
    #[must_use]
    pub fn allows(&self, environment: &Environment, path: &SecretPath) -> bool {
        self.environment == *environment && self.glob.matches(path)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.environment, self.glob.as_str())
    }
}

/// The scopes of one token, OR-ed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Wraps a list of scopes.
    #[must_use]
    pub fn new(scopes: Vec<Scope>) -> Self {
        Self(scopes)
    }

    /// The scopes of a new token or membership: 1 to [`MAX_SCOPES`].
    pub fn limited(scopes: Vec<Scope>) -> Result<Self, InvalidInput> {
        Self::check_count(scopes.len())?;
        Ok(Self(scopes))
    }

    /// Refuses a count of scopes outside 1 to [`MAX_SCOPES`], naming `scopes`.
    pub fn check_count(count: usize) -> Result<(), InvalidInput> {
        if count == 0 {
            return Err(InvalidInput::new(
                "scopes",
                "at least one scope is required, e.g. environment \"dev\" and secret_path \"/**\"",
            ));
        }
        if count > MAX_SCOPES {
            return Err(InvalidInput::new(
                "scopes",
                format!("{count} scopes given; at most {MAX_SCOPES} are allowed"),
            ));
        }
        Ok(())
    }

    /// Every folder of `environment`: `<environment>:/**`.
    #[must_use]
    pub fn everything_in(environment: &Environment) -> Self {
        Self(vec![Scope {
            environment: environment.clone(),
            glob: PathGlob::parse("/**").unwrap_or_else(|_| unreachable!("/** is a valid glob")),
        }])
    }

    /// True when any scope covers `path` in `environment`.
    #[must_use]
    pub fn allows(&self, environment: &Environment, path: &SecretPath) -> bool {
        self.0.iter().any(|s| s.allows(environment, path))
    }

    /// True when some scope of these, in the same environment, covers every
    /// folder `scope` does ([`PathGlob::is_within`]).
    #[must_use]
    pub fn covers(&self, scope: &Scope) -> bool {
        self.0
            .iter()
            .any(|s| s.environment == scope.environment && scope.glob.is_within(&s.glob))
    }

    /// The first of `inner`'s scopes these do not cover, if any.
    #[must_use]
    pub fn first_uncovered<'a>(&self, inner: &'a Scopes) -> Option<&'a Scope> {
        inner.0.iter().find(|s| !self.covers(s))
    }

    /// True when any scope is for `environment`.
    #[must_use]
    pub fn has_environment(&self, environment: &Environment) -> bool {
        self.0.iter().any(|s| s.environment == *environment)
    }

    /// The scopes.
    #[must_use]
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// `dev:/a/**, prod:/` for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Read and/or write permission over a token's scopes.
///
/// `write` allows set and delete but not read, as in Infisical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// May read secrets.
    pub read: bool,
    /// May create, update and delete secrets.
    pub write: bool,
}

impl Permissions {
    /// True when `action` is granted.
    #[must_use]
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => self.read,
            Action::Write => self.write,
        }
    }

    /// Parses the stored form [`Self::describe`] writes. Anything else (an
    /// unknown word, or no permission at all) is refused, never dropped.
    pub fn from_stored(text: &str) -> Result<Self, InvalidInput> {
        let mut permissions = Permissions::default();
        for word in text.split(',') {
            match word {
                "read" => permissions.read = true,
                "write" => permissions.write = true,
                other => {
                    return Err(InvalidInput::new(
                        "permissions",
                        format!("{other:?} is neither \"read\" nor \"write\""),
                    ));
                }
            }
        }
        Ok(permissions)
    }

    /// `self` if it grants anything: a token or grant without a permission
    /// is refused, naming `permissions`.
    pub fn require_any(self) -> Result<Self, InvalidInput> {
        if self.read || self.write {
            Ok(self)
        } else {
            Err(InvalidInput::new(
                "permissions",
                "at least one of read (PERMISSION_READ) and write (PERMISSION_WRITE) is required",
            ))
        }
    }

    /// `read`, `write` or `read,write`, as stored and shown.
    #[must_use]
    pub fn describe(self) -> String {
        let mut parts = Vec::new();
        if self.read {
            parts.push("read");
        }
        if self.write {
            parts.push("write");
        }
        parts.join(",")
    }
}

/// What a call wants to do with secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read secrets.
    Read,
    /// Create, update or delete secrets.
    Write,
}

impl Action {
    /// `read` or `write`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

pub use cache::ScopeCache;

#[cfg(test)]
mod tests;
