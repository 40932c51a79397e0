//! The dotenv format: written so that dotenv parsers (dotenvy,
//! python-dotenv, Docker Compose) read every value back unchanged and
//! without interpolating, and read with dotenvy.

use std::collections::BTreeMap;

/// `NAME="value"` lines in double quotes with `\\`, `\"`, `\$` and `\n`
/// escaped.
#[must_use]
pub fn write(map: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (name, value) in map {
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '$' => out.push_str("\\$"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// The `NAME=value` pairs of a dotenv text, in order; the error says which
/// line is wrong.
pub fn read(text: &str) -> Result<Vec<(String, String)>, String> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| item.map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_values_read_back_unchanged() {
        let map = BTreeMap::from([
            ("A".to_owned(), "line one\nline \"two\" = 'x'".to_owned()),
            (
                "B".to_owned(),
                "back\\slash $HOME ${X} ünïcødé ✓\ttab".to_owned(),
            ),
            ("EMPTY".to_owned(), String::new()),
        ]);
        let read: BTreeMap<String, String> = read(&write(&map)).unwrap().into_iter().collect();
        assert_eq!(read, map);
    }

    #[test]
    fn a_bad_line_is_an_error() {
        assert!(read("A=\"unterminated\n").is_err());
    }
}
