//! The dotenv reader and writer: reading never panics; any map of variable
//! names to values reads back unchanged from what the writer wrote, and
//! whatever the reader accepts survives a write and a second read.
#![no_main]

use std::collections::BTreeMap;

use latchkey_client::dotenv::{read, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pairs) = read(text) {
        let map: BTreeMap<String, String> = pairs.into_iter().collect();
        let names_ok = map.keys().all(|k| is_variable_name(k));
        if names_ok {
            let again: BTreeMap<String, String> = read(&write(&map)).unwrap().into_iter().collect();
            assert_eq!(again, map, "what was read survives a write");
        }
    }
    // The input as NAME\0VALUE\0NAME\0VALUE...: what the writer writes reads back.
    let mut map = BTreeMap::new();
    let mut parts = text.split('\0');
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if is_variable_name(&name) {
            map.insert(name, value.to_owned());
        }
    }
    let back: BTreeMap<String, String> = read(&write(&map)).unwrap().into_iter().collect();
    assert_eq!(back, map);
});

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
