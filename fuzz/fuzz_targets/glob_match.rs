//! Glob compilation and matching: never panics; a glob without wildcards
//! matches exactly the path it spells; no glob matches a path with a
//! different number of folders unless it holds `**`; and a match never
//! depends on a `/` being read as a name character.
#![no_main]

use latchkey_domain::path::SecretPath;
use latchkey_domain::scope::PathGlob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input is "glob\npath".
    let (glob_text, path_text) = text.split_once('\n').unwrap_or((text, "/"));
    let (Ok(glob), Ok(path)) = (PathGlob::parse(glob_text), SecretPath::parse(path_text)) else {
        return;
    };
    let matched = glob.matches(&path);
    let glob_segments: Vec<&str> = glob.as_str().split('/').filter(|s| !s.is_empty()).collect();
    let path_segments: Vec<&str> = path.as_str().split('/').filter(|s| !s.is_empty()).collect();
    let literal = !glob.as_str().contains(['*', '?', '[', ']', '{', '}', '\\']);
    if literal {
        assert_eq!(
            matched,
            glob.as_str() == path.as_str(),
            "a literal glob matches itself only"
        );
    }
    if matched && !glob_segments.contains(&"**") && glob.as_str() != path.as_str() {
        assert_eq!(
            glob_segments.len(),
            path_segments.len(),
            "without ** a glob matches one folder per segment"
        );
    }
    // A literal segment must match its folder exactly.
    if matched && !glob_segments.contains(&"**") && glob.as_str() != path.as_str() {
        for (g, p) in glob_segments.iter().zip(&path_segments) {
            let plain = !g.contains(['*', '?', '[', ']', '{', '}', '\\']);
            assert!(!plain || g == p, "literal segment {g:?} matched {p:?}");
        }
    }
});
