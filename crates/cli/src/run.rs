//! `latchkey run` and `latchkey export`: a folder's secrets as environment
//! variables or as a file.
//!
//! With `--recursive`, a name found in several folders takes the value from
//! the folder nearest to `--path` (fewest segments; ties by path order).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;

use clap::Args;

use crate::context::Context;
use crate::error::CliError;
use crate::flags::Location;
use crate::output::{self, ExportFormat, SecretRow};

/// Flags of `latchkey run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    at: Location,
    /// Include the folders below the path that the token may read.
    #[arg(long)]
    recursive: bool,
    /// Let secrets replace variables already set in the environment.
    #[arg(long = "override")]
    override_existing: bool,
    /// Print nothing but the command's own output.
    #[arg(long)]
    silent: bool,
    /// Allow secrets named like variables that make a loader, shell or
    /// interpreter run code (LD_PRELOAD, BASH_ENV, NODE_OPTIONS, ...).
    #[arg(long)]
    allow_loader_vars: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Flags of `latchkey export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    at: Location,
    /// Include the folders below the path that the token may read.
    #[arg(long)]
    recursive: bool,
    /// dotenv, json or yaml.
    #[arg(long, value_enum, default_value = "dotenv")]
    format: ExportFormat,
    /// Write to this file (mode 0600, replaced whole) instead of standard output.
    #[arg(long = "output-file")]
    output_file: Option<std::path::PathBuf>,
}

/// Replaces this process with the command, its environment extended by the
/// secrets, so the command's exit status and signals are the CLI's own.
/// Returns only when the command cannot start.
pub(crate) async fn run(ctx: &Context, args: RunArgs) -> Result<u8, CliError> {
    let rows = ctx.fetch(&args.at, args.recursive).await?;
    let secrets = nearest_first(rows);
    check_variable_names(&secrets)?;
    if !args.allow_loader_vars {
        check_no_loader_variables(&secrets)?;
    }
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| CliError::Input("no command given after --".to_owned()))?;
    let mut command = std::process::Command::new(program);
    command.args(rest);
    let mut injected = 0;
    for (name, value) in &secrets {
        if args.override_existing || std::env::var_os(name).is_none() {
            command.env(name, value);
            injected += 1;
        }
    }
    if !args.silent {
        eprintln!(
            "latchkey: injecting {injected} of {} secrets into {program}",
            secrets.len()
        );
    }
    let err = command.exec();
    Err(CliError::Spawn {
        program: program.clone(),
        cause: err.to_string(),
        exit: if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
    })
}

/// Prints the secrets as dotenv, JSON or YAML.
pub(crate) async fn export(ctx: &Context, args: ExportArgs) -> Result<(), CliError> {
    let rows = ctx.fetch(&args.at, args.recursive).await?;
    let text = output::export(&nearest_first(rows), args.format)?;
    match &args.output_file {
        Some(path) => crate::config::write_private(path, text.trim_end_matches('\n'))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Name → value, the folder nearest to the requested path winning.
fn nearest_first(mut rows: Vec<SecretRow>) -> BTreeMap<String, String> {
    // Stable: rows arrive ordered by path, then name.
    rows.sort_by_key(|r| r.path.matches('/').count() - usize::from(r.path == "/"));
    output::as_map(&rows)
}

/// Refuses names a shell cannot hold (`-` and `.` are valid in secret
/// names, not in variable names), listing every one.
fn check_variable_names(secrets: &BTreeMap<String, String>) -> Result<(), CliError> {
    let bad: Vec<&str> = secrets
        .keys()
        .map(String::as_str)
        .filter(|name| !is_variable_name(name))
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(CliError::Input(format!(
        "secrets {bad:?} are not valid environment variable names (letters, digits and _, not starting with a digit); rename them, or read them with `latchkey export --format json`"
    )))
}

/// Variables through which whoever can write a secret could run code in
/// the command (dynamic loaders, shells' startup files, interpreters'
/// option and module-path variables), and prefixes that are all such.
const LOADER_VARIABLES: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "PATH",
    "GCONV_PATH",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
];
const LOADER_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_"];

/// Refuses secrets that would set a [`LOADER_VARIABLES`] variable, listing
/// every one, unless `--allow-loader-vars`.
fn check_no_loader_variables(secrets: &BTreeMap<String, String>) -> Result<(), CliError> {
    let risky: Vec<&str> = secrets
        .keys()
        .map(String::as_str)
        .filter(|name| is_loader_variable(name))
        .collect();
    if risky.is_empty() {
        return Ok(());
    }
    Err(CliError::Input(format!(
        "secrets {risky:?} would set variables that make a loader, shell or interpreter run code in the command; \
         rename them, or pass --allow-loader-vars if they are meant to"
    )))
}

fn is_loader_variable(name: &str) -> bool {
    LOADER_VARIABLES.contains(&name) || LOADER_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, value: &str, path: &str) -> SecretRow {
        SecretRow {
            name: name.to_owned(),
            value: value.to_owned(),
            environment: "dev".to_owned(),
            path: path.to_owned(),
            version: 1,
        }
    }

    #[test]
    fn the_folder_nearest_the_requested_path_wins_a_repeated_name() {
        let rows = vec![
            row("K", "deep", "/a/b/c"),
            row("K", "middle", "/b"),
            row("K", "root", "/"),
            row("ONLY", "x", "/a/b/c"),
        ];

        let map = nearest_first(rows);

        assert_eq!(map["K"], "root");
        assert_eq!(map["ONLY"], "x");
    }

    #[test]
    fn sibling_folders_tie_in_path_order() {
        let map = nearest_first(vec![row("K", "a", "/a"), row("K", "b", "/b")]);

        assert_eq!(map["K"], "a");
    }

    #[test]
    fn variable_names_follow_the_shell_rules() {
        for good in ["A", "_", "DB_URL", "a1", "_x_9"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1A", "my-key", "a.b", "ünï", "A B"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn loader_variables_are_refused_and_all_listed() {
        let secrets = BTreeMap::from([
            ("LD_PRELOAD".to_owned(), "/tmp/x.so".to_owned()),
            ("BASH_ENV".to_owned(), "/tmp/x.sh".to_owned()),
            ("NODE_OPTIONS".to_owned(), "--require /tmp/x.js".to_owned()),
            ("DB_URL".to_owned(), "postgres://db".to_owned()),
        ]);
        let err = check_no_loader_variables(&secrets).unwrap_err().to_string();
        for name in ["LD_PRELOAD", "BASH_ENV", "NODE_OPTIONS"] {
            assert!(err.contains(name), "{err}");
        }
        assert!(
            !err.contains("DB_URL") && err.contains("--allow-loader-vars"),
            "{err}"
        );
        for name in ["LD_AUDIT", "DYLD_INSERT_LIBRARIES", "PYTHONSTARTUP", "ENV"] {
            assert!(is_loader_variable(name), "{name}");
        }
        for name in ["ENVIRONMENT", "LDAP_URL", "API_KEY"] {
            assert!(!is_loader_variable(name), "{name}");
        }
    }

    #[test]
    fn invalid_variable_names_are_all_listed_in_one_error() {
        let secrets = BTreeMap::from([
            ("GOOD".to_owned(), String::new()),
            ("my-key".to_owned(), String::new()),
            ("a.b".to_owned(), String::new()),
        ]);

        let err = check_variable_names(&secrets).unwrap_err().to_string();

        assert!(
            err.contains("my-key") && err.contains("a.b") && !err.contains("GOOD"),
            "{err}"
        );
    }
}
