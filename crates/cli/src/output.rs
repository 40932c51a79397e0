//! What the CLI prints: tables for people, JSON, YAML and dotenv for scripts.

use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::CliError;

/// `--output` of the secrets commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns, for people.
    Table,
    /// A JSON array of secrets with their folder and version.
    Json,
    /// A YAML list of secrets with their folder and version.
    Yaml,
    /// `NAME="value"` lines.
    Dotenv,
}

/// `--format` of `latchkey export`: a flat `NAME → value` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// `NAME="value"` lines, as `.env` files hold them.
    Dotenv,
    /// A JSON object.
    Json,
    /// A YAML mapping.
    Yaml,
}

/// A decrypted secret as the commands print it; its `Debug` omits the value.
#[derive(Clone, Serialize)]
pub(crate) struct SecretRow {
    /// Secret name.
    pub(crate) name: String,
    /// Plaintext value.
    pub(crate) value: String,
    /// Environment slug.
    pub(crate) environment: String,
    /// Folder path.
    pub(crate) path: String,
    /// Version, from 1.
    pub(crate) version: u64,
}

impl From<latchkey_client::PlainSecret> for SecretRow {
    fn from(s: latchkey_client::PlainSecret) -> Self {
        Self {
            name: s.name,
            value: s.value,
            environment: s.environment,
            path: s.path,
            version: s.version,
        }
    }
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRow")
            .field("name", &self.name)
            .field("environment", &self.environment)
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Prints rows under a header, columns aligned.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width);
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Prints secrets in the chosen output.
pub(crate) fn secrets(rows: &[SecretRow], output: Output) -> Result<(), CliError> {
    match output {
        Output::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![r.name.clone(), r.value.clone(), r.path.clone()])
                .collect();
            table(&["SECRET NAME", "SECRET VALUE", "SECRET PATH"], &cells);
        }
        Output::Json => println!("{}", json(&rows)?),
        Output::Yaml => print!("{}", yaml(&rows)?),
        Output::Dotenv => print!("{}", dotenv(&as_map(rows))),
    }
    Ok(())
}

/// Renders a `NAME → value` map in an export format.
pub(crate) fn export(
    map: &BTreeMap<String, String>,
    format: ExportFormat,
) -> Result<String, CliError> {
    Ok(match format {
        ExportFormat::Dotenv => dotenv(map),
        ExportFormat::Json => format!("{}\n", json(map)?),
        ExportFormat::Yaml => yaml(map)?,
    })
}

/// Name → value; where a name occurs in several folders the first row wins.
pub(crate) fn as_map(rows: &[SecretRow]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for row in rows {
        map.entry(row.name.clone())
            .or_insert_with(|| row.value.clone());
    }
    map
}

/// A timestamp as RFC 3339 in UTC, seconds precision.
pub(crate) fn time(ts: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts.seconds, 0).map_or_else(
        || ts.seconds.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Input(format!("cannot encode JSON: {e}")))
}

fn yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    serde_yaml_ng::to_string(value).map_err(|e| CliError::Input(format!("cannot encode YAML: {e}")))
}

/// `NAME="value"` lines dotenv parsers read back unchanged.
pub(crate) fn dotenv(map: &BTreeMap<String, String>) -> String {
    latchkey_client::dotenv::write(map)
}

/// `env:glob,env:glob`.
pub(crate) fn describe_scopes(scopes: &[latchkey_proto::auth::v1::Scope]) -> String {
    scopes
        .iter()
        .map(|s| format!("{}:{}", s.environment, s.secret_path))
        .collect::<Vec<_>>()
        .join(",")
}

/// The project's environment slugs, comma-separated.
pub(crate) fn slugs(project: &latchkey_proto::auth::v1::Project) -> String {
    project
        .environments
        .iter()
        .map(|e| e.slug.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awkward() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("A".to_owned(), "line one\nline \"two\" = 'x'".to_owned()),
            (
                "B".to_owned(),
                "back\\slash $HOME ${X} ünïcødé ✓\ttab".to_owned(),
            ),
            ("EMPTY".to_owned(), String::new()),
        ])
    }

    #[test]
    fn secret_row_debug_omits_the_value() {
        let row = SecretRow {
            name: "DB_URL".into(),
            value: "postgres://u:hunter2@db".into(),
            environment: "dev".into(),
            path: "/".into(),
            version: 1,
        };
        let debug = format!("{row:?}");
        assert!(
            debug.contains("DB_URL") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn dotenv_output_parses_back_to_the_same_map_with_dotenvy() {
        let text = dotenv(&awkward());

        let parsed: BTreeMap<String, String> = dotenvy::from_read_iter(text.as_bytes())
            .map(Result::unwrap)
            .collect();

        assert_eq!(parsed, awkward());
    }

    #[test]
    fn yaml_export_parses_back_to_the_same_map() {
        let text = export(&awkward(), ExportFormat::Yaml).unwrap();

        let parsed: BTreeMap<String, String> = serde_yaml_ng::from_str(&text).unwrap();

        assert_eq!(parsed, awkward());
    }

    #[test]
    fn json_export_is_an_object_of_names_to_values() {
        let text = export(&awkward(), ExportFormat::Json).unwrap();

        let parsed: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();

        assert_eq!(parsed, awkward());
    }

    #[test]
    fn as_map_keeps_the_first_row_of_a_repeated_name() {
        let row = |value: &str, path: &str| SecretRow {
            name: "K".to_owned(),
            value: value.to_owned(),
            environment: "dev".to_owned(),
            path: path.to_owned(),
            version: 1,
        };

        let map = as_map(&[row("near", "/a"), row("far", "/a/b")]);

        assert_eq!(map["K"], "near");
    }
}
