//! Path normalisation: never panics; a normalised path is a fixed point,
//! absolute, without empty, "." or ".." segments, within the limits; and
//! the root never has a trailing slash issue.
#![no_main]

use latchkey_domain::path::{MAX_PATH_DEPTH, MAX_PATH_LEN, SecretPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = SecretPath::parse(text) else {
        return;
    };
    let normal = path.as_str();
    assert_eq!(
        SecretPath::parse(normal).unwrap().as_str(),
        normal,
        "a fixed point"
    );
    assert!(normal.starts_with('/'));
    assert!(normal == "/" || !normal.ends_with('/'));
    let segments: Vec<&str> = normal
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(segments.iter().all(|s| *s != "." && *s != ".."));
    assert!(!normal.contains("//"));
    assert!(normal.len() <= MAX_PATH_LEN && segments.len() <= MAX_PATH_DEPTH);
    assert!(!normal.chars().any(char::is_control));
});
