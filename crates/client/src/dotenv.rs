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
/// line is wrong. A value past a secret's limit stops the reading there:
/// dotenvy expands `$NAME` references, so a few lines of `A=$A$A...` would
/// otherwise grow without bound.
pub fn read(text: &str) -> Result<Vec<(String, String)>, String> {
    let limit = latchkey_domain::model::MAX_VALUE_BYTES;
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            let (name, value) = item.map_err(|e| e.to_string())?;
            if value.len() > limit {
                return Err(format!(
                    "the value of {name} is larger than {limit} bytes, the most a secret holds \
                     (after expanding its $ references)"
                ));
            }
            Ok((name, value))
        })
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
    fn references_that_would_grow_past_a_secrets_limit_stop_the_reading() {
        let mut text = "A=xxxxxxxxxxxxxxxx\n".to_owned();
        for _ in 0..40 {
            text.push_str("A=$A$A\n");
        }
        let err = read(&text).unwrap_err();
        assert!(err.contains("larger than 65536 bytes"), "{err}");
    }

    #[test]
    fn a_bad_line_is_an_error() {
        assert!(read("A=\"unterminated\n").is_err());
    }
}
