//! Unit tests of `glob`.

use super::*;

fn matches(glob: &str, path: &str) -> bool {
    let g: Vec<&str> = glob.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    Compiled::new(&g).unwrap().matches(&p)
}

#[test]
fn segments_and_globstars_match_folder_by_folder() {
    assert!(matches("/a/**/b", "/a/b"));
    assert!(matches("/a/**/b", "/a/x/y/b"));
    assert!(!matches("/a/**/b", "/a/x/c"));
    assert!(matches("/**/b/**", "/x/b"));
    assert!(matches("/**/**", "/"));
    assert!(matches("/**", "/"));
    // A leading ** that goes on needs a folder, as in picomatch.
    assert!(!matches("/**/b", "/b"));
    assert!(matches("/**/b", "/x/b"));
    assert!(!matches("/**/**/b", "/b"));
    assert!(!matches("/**/*", "/"));
    assert!(!matches("/a/*", "/a"));
}

#[test]
fn tokens_within_a_segment() {
    assert!(matches("/a*b", "/ab"));
    assert!(matches("/a*b", "/a-x-b"));
    assert!(!matches("/a*b", "/a-x-c"));
    assert!(matches("/a**", "/a"), "** inside a segment is *");
    assert!(matches("/?x", "/ax"));
    assert!(!matches("/?x", "/x"));
    assert!(matches("/[a-c]1", "/b1"));
    assert!(!matches("/[a-c]1", "/d1"));
    assert!(matches("/[^a-c]", "/d"));
    assert!(!matches("/[^a-c]", "/b"));
    assert!(matches("/[^a]", "/b"));
    assert!(matches("/[a!]", "/!"));
    assert!(matches("/[a-]", "/-"));
    assert!(matches("/[ab]", "/[ab]"), "picomatch's literal fallback");
    assert!(!matches("/[a-b]", "/[a-b]"));
    assert!(matches("/x{a,b*}", "/xbcd"));
    assert!(matches("/a\\*", "/a*"));
    assert!(!matches("/a\\*", "/ab"));
}

#[test]
fn unsupported_constructs_are_refused_not_misread() {
    for bad in [
        "(a|b)",
        "a|b",
        "+(a)",
        "[!a]",
        "[\\]]",
        "[ab]+",
        "{a,b}+",
        "{a}",
        "{a,}",
        "{a,{b,c}}",
        "{a,b",
        "a}",
        "[]a]",
        "[!]a]",
        "[[:alpha:]]",
        "[a",
        "a]",
        "a\\",
        "[z-a]",
    ] {
        assert!(Compiled::new(&[bad]).is_err(), "{bad}");
    }
}

#[test]
fn brace_expansion_is_bounded() {
    let many = "{a,b,c,d}".repeat(5);
    assert!(
        Compiled::new(&[&many])
            .unwrap_err()
            .contains("alternatives")
    );
}
