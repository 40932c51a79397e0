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

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(g: &str) -> PathGlob {
        PathGlob::parse(g).unwrap()
    }

    fn path(p: &str) -> SecretPath {
        SecretPath::parse(p).unwrap()
    }

    /// DESIGN.md's required glob table, row by row.
    #[test]
    fn design_glob_table_matches_exactly_as_specified() {
        let table: &[(&str, &[&str], &[&str])] = &[
            ("/", &["/"], &["/a"]),
            (
                "/**",
                &["/", "/folder1", "/folder1/subfolder", "/.config"],
                &[],
            ),
            (
                "/*",
                &["/folder1", "/folder2"],
                &["/", "/folder1/subfolder"],
            ),
            (
                "/*/*",
                &["/folder1/subfolder"],
                &["/folder1", "/folder1/a/b"],
            ),
            (
                "/folder1/*",
                &["/folder1/subfolder1", "/folder1/subfolder2/"],
                &["/folder1", "/folder2/subfolder", "/folder1/a/b"],
            ),
            (
                "/common/**",
                &["/common", "/common/", "/common/a", "/common/a/b"],
                &["/commons", "/"],
            ),
            ("/apps/**/*", &["/apps/x/y", "/apps/x"], &["/apps"]),
            (
                "/global",
                &["/global", "/global/"],
                &["/global/x", "/Global"],
            ),
            ("/app?/{x,y}", &["/app1/x", "/apps/y"], &["/app1/z"]),
        ];
        for (g, matches, misses) in table {
            let compiled = glob(g);
            for p in *matches {
                assert!(compiled.matches(&path(p)), "{g} should match {p}");
            }
            for p in *misses {
                assert!(!compiled.matches(&path(p)), "{g} should not match {p}");
            }
        }
    }

    /// The cases where the previous matcher broke the contract.
    #[test]
    fn nothing_matches_a_slash_and_the_root_rule_reads_the_parsed_glob() {
        let table: &[(&str, &[&str], &[&str])] = &[
            ("/a[^x]*", &["/ab", "/aby"], &["/a/b", "/a", "/ax"]),
            (
                "/{api,web}/**",
                &["/api", "/web", "/api/v1"],
                &["/{api,web}", "/"],
            ),
            (
                "/team[12]/**",
                &["/team1", "/team2/x"],
                &["/team3", "/team"],
            ),
            ("/*/**", &["/x", "/x/y/z"], &["/"]),
            ("/a\\*/**", &["/a*", "/a*/b"], &["/ab", "/a"]),
            ("/{x*,y}", &["/x", "/xyz", "/y"], &["/", "/x/y"]),
            ("/?", &["/a"], &["/", "/a/b"]),
            ("/[^a]/b", &["/c/b"], &["/a/b", "/c/d/b"]),
        ];
        for (g, matches, misses) in table {
            let compiled = glob(g);
            for p in *matches {
                assert!(compiled.matches(&path(p)), "{g} should match {p}");
            }
            for p in *misses {
                assert!(!compiled.matches(&path(p)), "{g} should not match {p}");
            }
        }
        for refused in ["/{*}", "/a[!x]*"] {
            assert_eq!(PathGlob::parse(refused).unwrap_err().field, "secret_path");
        }
    }

    #[test]
    fn hidden_folders_are_matched_by_wildcards() {
        assert!(glob("/*").matches(&path("/.env")));
        assert!(glob("/a/**").matches(&path("/a/.hidden/x")));
    }

    #[test]
    fn character_classes_work_and_matching_is_case_sensitive() {
        let g = glob("/svc-[0-9]");
        assert!(g.matches(&path("/svc-7")));
        assert!(!g.matches(&path("/svc-x")));
        assert!(!glob("/backend").matches(&path("/Backend")));
    }

    #[test]
    fn glob_source_is_normalised() {
        assert_eq!(glob("//backend//**/").as_str(), "/backend/**");
        assert_eq!(glob("/").as_str(), "/");
    }

    #[test]
    fn bad_globs_are_refused_naming_the_field() {
        for bad in [
            "backend/**",
            "",
            "/a/../b",
            "/a/./b",
            "/[unclosed",
            "/{a,b",
            "/a\0",
        ] {
            let err = PathGlob::parse(bad).unwrap_err();
            assert_eq!(err.field, "secret_path", "{bad}");
        }
    }

    #[test]
    fn cli_scope_form_splits_environment_and_glob() {
        let s = Scope::parse_cli("dev:/backend/**").unwrap();
        assert_eq!(s.environment.as_str(), "dev");
        assert_eq!(s.glob.as_str(), "/backend/**");
        assert_eq!(s.to_string(), "dev:/backend/**");
        assert_eq!(Scope::parse_cli("dev").unwrap_err().field, "scope");
        assert_eq!(Scope::parse_cli("Dev:/").unwrap_err().field, "environment");
        assert_eq!(Scope::parse_cli("dev:x").unwrap_err().field, "secret_path");
    }

    #[test]
    fn scopes_are_ored_and_environment_must_match_exactly() {
        let scopes = Scopes::new(vec![
            Scope::new("dev", "/backend/**").unwrap(),
            Scope::new("prod", "/public").unwrap(),
        ]);
        let dev = Environment::parse("dev").unwrap();
        let prod = Environment::parse("prod").unwrap();
        let staging = Environment::parse("staging").unwrap();
        assert!(scopes.allows(&dev, &path("/backend/db")));
        assert!(scopes.allows(&prod, &path("/public")));
        assert!(!scopes.allows(&prod, &path("/backend")));
        assert!(!scopes.allows(&staging, &path("/backend")));
        assert!(scopes.has_environment(&prod));
        assert!(!scopes.has_environment(&staging));
        assert_eq!(scopes.describe(), "dev:/backend/**, prod:/public");
    }

    #[test]
    fn a_glob_is_within_another_only_when_that_can_be_shown() {
        let within: &[(&str, &str)] = &[
            ("/team-a/**", "/team-a/**"),
            ("/team-a/x", "/team-a/**"),
            ("/team-a", "/team-a/**"),
            ("/team-a/**/db", "/team-a/**"),
            ("/team-a/*/db", "/team-a/**"),
            ("/team-a/x/**", "/team-a/**"),
            ("/a/b", "/a/*"),
            ("/a/*", "/a/*"),
            ("/a/svc-1", "/a/svc-[0-9]"),
            ("/app1/x", "/app?/{x,y}"),
            ("/", "/**"),
            ("/x/y/z", "/**"),
            ("/x/**", "/**"),
            ("/a/b/c", "/*/**"),
        ];
        let not_within: &[(&str, &str)] = &[
            ("/**", "/team-a/**"),
            ("/team-b/x", "/team-a/**"),
            ("/team-ab", "/team-a/**"),
            ("/team-a/**", "/team-a/*"),
            ("/team-a/x/y", "/team-a/*"),
            ("/team-a", "/team-a/*"),
            ("/a/*", "/a/svc-[0-9]"),
            ("/a/svc-x", "/a/svc-[0-9]"),
            ("/a/[0-9]", "/a/[0-5]"),
            ("/{a,b}", "/a"),
            ("/a*", "/a"),
            ("/", "/*"),
            ("/**", "/*/**"),
        ];
        for (inner, outer) in within {
            assert!(
                glob(inner).is_within(&glob(outer)),
                "{inner} within {outer}"
            );
        }
        for (inner, outer) in not_within {
            assert!(
                !glob(inner).is_within(&glob(outer)),
                "{inner} not within {outer}"
            );
        }
    }

    #[test]
    fn scopes_cover_only_in_the_same_environment() {
        let admin = Scopes::new(vec![Scope::new("dev", "/team-a/**").unwrap()]);
        let inside = Scopes::new(vec![Scope::new("dev", "/team-a/api").unwrap()]);
        let other_env = Scopes::new(vec![
            Scope::new("dev", "/team-a/api").unwrap(),
            Scope::new("prod", "/team-a/api").unwrap(),
        ]);
        assert_eq!(admin.first_uncovered(&inside), None);
        assert_eq!(
            admin.first_uncovered(&other_env).map(ToString::to_string),
            Some("prod:/team-a/api".to_owned())
        );
    }

    #[test]
    fn stored_permissions_round_trip_and_unknown_words_are_refused() {
        for p in ["read", "write", "read,write"] {
            assert_eq!(Permissions::from_stored(p).unwrap().describe(), p);
        }
        for bad in ["", "read,admin", "Read", "read,"] {
            assert!(Permissions::from_stored(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_has_one_to_sixty_four_scopes() {
        let one = || Scope::new("dev", "/").unwrap();
        assert!(Scopes::limited(vec![one(); MAX_SCOPES]).is_ok());
        let over = Scopes::limited(vec![one(); MAX_SCOPES + 1]).unwrap_err();
        assert!(
            over.field == "scopes" && over.message.contains("at most 64"),
            "{over:?}"
        );
        assert_eq!(Scopes::limited(Vec::new()).unwrap_err().field, "scopes");
    }

    #[test]
    fn oversized_globs_are_refused_naming_the_limit() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert!(
            PathGlob::parse(&long)
                .unwrap_err()
                .message
                .contains("at most 1024")
        );
        let deep = "/a".repeat(MAX_PATH_DEPTH + 1);
        assert!(
            PathGlob::parse(&deep)
                .unwrap_err()
                .message
                .contains("at most 32 deep")
        );
        assert!(PathGlob::parse(&"/a".repeat(MAX_PATH_DEPTH)).is_ok());
    }

    #[test]
    fn write_does_not_imply_read() {
        let write_only = Permissions {
            read: false,
            write: true,
        };
        assert!(write_only.allows(Action::Write));
        assert!(!write_only.allows(Action::Read));
        assert_eq!(write_only.describe(), "write");
        assert_eq!(
            Permissions {
                read: true,
                write: true
            }
            .describe(),
            "read,write"
        );
    }
}
