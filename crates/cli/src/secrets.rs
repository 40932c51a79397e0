//! `latchkey secrets ...`: list, get, set and delete.
//!
//! With a service token, values are encrypted and decrypted here with the
//! project key the token's key part unwraps; with an identity token (which
//! carries no key) they go through the server-side `*Raw` calls.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use latchkey_client::{ClientError, Credential};
use latchkey_domain::path::{SecretName, SecretPath};

use crate::commands::Context;
use crate::error::CliError;
use crate::output::{self, Output, SecretRow, table};

/// Where secrets live: environment, folder, project.
#[derive(Debug, Clone, Args)]
pub(crate) struct Location {
    /// Environment slug [default: the linked folder's, else dev].
    #[arg(long)]
    env: Option<String>,
    /// Folder path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Project id [default: the linked folder's; service tokens know theirs].
    #[arg(long = "projectId")]
    project_id: Option<String>,
}

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
            let rows = fetch(ctx, &at, recursive).await?;
            output::secrets(&rows, output)?;
        }
        SecretsCommand::Get {
            names,
            at,
            plain,
            output,
        } => {
            let names = parse_names(&names)?;
            let (credential, location) = prepare(ctx, &at)?;
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
            let (credential, location) = prepare(ctx, &at)?;
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
            let (credential, location) = prepare(ctx, &at)?;
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

/// The decrypted secrets of a folder (and, with `recursive`, of the folders
/// below it that the token may read), ordered by path, then name.
pub(crate) async fn fetch(
    ctx: &Context,
    at: &Location,
    recursive: bool,
) -> Result<Vec<SecretRow>, CliError> {
    let (credential, location) = prepare(ctx, at)?;
    let mut client = ctx.secrets(credential, false).await?;
    Ok(client
        .list(&location, recursive)
        .await?
        .into_iter()
        .map(SecretRow::from)
        .collect())
}

/// Checks the token's kind and the location flags before any call; paths
/// are normalised so the client binds the same path into the ciphertext as
/// the server stores.
fn prepare(
    ctx: &Context,
    at: &Location,
) -> Result<(Credential, latchkey_client::Location), CliError> {
    let credential = Credential::parse(ctx.token()?).map_err(|e| match e {
        ClientError::Config(m) => CliError::Input(format!("--token: {m}")),
        other => other.into(),
    })?;
    let env = ctx.environment(at.env.clone())?;
    let path = SecretPath::parse(&at.path)
        .map_err(|e| CliError::Input(format!("--path: {}", e.message)))?;
    let project_id = match credential {
        Credential::Identity(_) => Some(ctx.project_id(at.project_id.clone()).map_err(|_| {
            CliError::Input(
                "--projectId is required with an identity token (or link the folder with `latchkey init`)"
                    .to_owned(),
            )
        })?),
        // A service token is bound to one project: a linked folder's project
        // must not override it, so only an explicit flag is sent.
        Credential::Service(_) => at.project_id.clone(),
    };
    let location = latchkey_client::Location {
        project_id: project_id.filter(|p| !p.is_empty()),
        environment: env,
        path,
    };
    Ok((credential, location))
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
