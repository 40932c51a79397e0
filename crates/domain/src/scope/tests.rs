//! Unit tests of `scope`.

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

#[test]
fn permissions_must_grant_something() {
    let none = Permissions::default();
    assert_eq!(none.require_any().unwrap_err().field, "permissions");
    let read = Permissions {
        read: true,
        write: false,
    };
    assert_eq!(read.require_any(), Ok(read));
}
