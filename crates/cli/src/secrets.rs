//! `latchkey secrets ...`: list, get, set and delete.
//!
//! With a service token, values are encrypted and decrypted here with the
//! project key the token's key part unwraps; with an identity token (which
//! carries no key) they go through the server-side `*Raw` calls.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use latchkey_domain::path::SecretName;

use crate::context::Context;
use crate::error::CliError;
use crate::flags::Location;
use crate::output::{self, Output, SecretRow, table};

#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// List the secrets of a folder.
    ///
    /// Example: latchkey secrets list --env dev --path /backend --recursive --output json
    List {
        #[command(flatten)]
        at: Location,
        /// Include the folders below the path that the token may read.
        #[arg(long)]
        recursive: bool,
        /// table, json, yaml or dotenv.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Print secrets by name.
    ///
    /// Example: latchkey secrets get DB_URL API_KEY --env dev --path /backend --plain
    Get {
        /// Secret names.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        at: Location,
        /// Print only the values, one per line.
        #[arg(long, conflicts_with = "output")]
        plain: bool,
        /// table, json, yaml or dotenv.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Create or update secrets.
    ///
    /// Values come from NAME=VALUE arguments, from a dotenv file (--file),
    /// or, for a bare NAME, from standard input, so a secret need not
    /// appear in the shell history or the process list.
    ///
    /// Example: latchkey secrets set DB_URL=postgres://db --env dev --path /backend
    ///
    /// Example: latchkey secrets set TLS_KEY --env prod < key.pem
    ///
    /// Example: latchkey secrets set --file .env --env dev
    Set {
        /// NAME=VALUE pairs, or one NAME whose value is read from standard input.
        pairs: Vec<String>,
        /// A dotenv file of NAME=VALUE lines; `-` reads standard input.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        at: Location,
    },
    /// Delete secrets by name.
    ///
    /// Example: latchkey secrets delete OLD_KEY --env dev --path /backend
    Delete {
        /// Secret names.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        at: Location,
    },
}

/// Runs a secrets command.
pub(crate) async fn run(ctx: &Context, cmd: SecretsCommand) -> Result<(), CliError> {
    match cmd {
        SecretsCommand::List {
            at,
            recursive,
            output,
        } => {
            let rows = ctx.fetch(&at, recursive).await?;
            output::secrets(&rows, output)?;
        }
        SecretsCommand::Get {
            names,
            at,
            plain,
            output,
        } => {
            let names = parse_names(&names)?;
            let (credential, location) = ctx.prepare(&at)?;
            let mut client = ctx.secrets(credential, false).await?;
            let mut rows = Vec::with_capacity(names.len());
            for name in &names {
                rows.push(SecretRow::from(client.get(&location, name).await?));
            }
            if plain {
                for row in rows {
                    println!("{}", row.value);
                }
            } else {
                output::secrets(&rows, output)?;
            }
        }
        SecretsCommand::Set { pairs, file, at } => {
            let pairs = values(&pairs, file.as_deref())?;
            let (credential, location) = ctx.prepare(&at)?;
            let mut client = ctx.secrets(credential, true).await?;
            let versions = client.set(&location, &pairs).await?;
            let rows: Vec<_> = pairs
                .iter()
                .zip(versions)
                .map(|((name, _), version)| vec![name.as_str().to_owned(), version.to_string()])
                .collect();
            table(&["SECRET NAME", "VERSION"], &rows);
        }
        SecretsCommand::Delete { names, at } => {
            let names = parse_names(&names)?;
            let (credential, location) = ctx.prepare(&at)?;
            let mut client = ctx.secrets(credential, false).await?;
            for name in &names {
                client.delete(&location, name).await?;
                println!(
                    "Secret {name} deleted from {}:{}.",
                    location.environment, location.path
                );
            }
        }
    }
    Ok(())
}

fn parse_names(names: &[String]) -> Result<Vec<SecretName>, CliError> {
    names.iter().map(|name| parse_name(name)).collect()
}

fn parse_name(name: &str) -> Result<SecretName, CliError> {
    SecretName::parse(name)
        .map_err(|e| CliError::Input(format!("secret name {name:?}: {}", e.message)))
}

/// The `(name, value)` pairs of `secrets set`, validated before any call.
fn values(
    args: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<(SecretName, String)>, CliError> {
    let mut pairs = Vec::new();
    let mut stdin_used = false;
    if let Some(path) = file {
        let text = if path.as_os_str() == "-" {
            stdin_used = true;
            read_stdin()?
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| CliError::Input(format!("--file {}: {e}", path.display())))?
        };
        pairs.extend(
            latchkey_client::dotenv::read(&text)
                .map_err(|e| CliError::Input(format!("--file {}: {e}", path.display())))?,
        );
    }
    for arg in args {
        match arg.split_once('=') {
            Some((name, value)) => pairs.push((name.to_owned(), value.to_owned())),
            None if stdin_used => {
                return Err(CliError::Input(format!(
                    "{arg:?} has no value: standard input is already used; pass NAME=VALUE"
                )));
            }
            None => {
                stdin_used = true;
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    eprintln!("Enter the value of {arg}, then Ctrl-D:");
                }
                let mut value = read_stdin()?;
                // `echo value | latchkey secrets set NAME` should not store the newline.
                if value.ends_with('\n') {
                    value.pop();
                }
                pairs.push((arg.clone(), value));
            }
        }
    }
    if pairs.is_empty() {
        return Err(CliError::Input(
            "nothing to set: pass NAME=VALUE, a NAME with its value on standard input, or --file"
                .to_owned(),
        ));
    }
    pairs
        .into_iter()
        .map(|(name, value)| Ok((parse_name(&name)?, value)))
        .collect()
}

fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::Input(format!("cannot read standard input as UTF-8 text: {e}")))?;
    Ok(text)
}
