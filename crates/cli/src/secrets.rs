//! `latchkey secrets ...`: list, get, set and delete.
//!
//! With a service token, values are encrypted and decrypted here with the
//! project key the token's key part unwraps; with an identity token (which
//! carries no key) they go through the server-side `*Raw` calls.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use latchkey_domain::crypto::{Sealed, WireKey, secret_aad};
use latchkey_domain::path::{SecretName, SecretPath};
use latchkey_domain::token::{AnyToken, ServiceTokenSecret};
use latchkey_proto::secrets::v1 as secrets_pb;

use crate::client::{CliError, lookup_sealed, open_project_key};
use crate::commands::Context;
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

/// How secrets are read and written: client-side crypto with a service
/// token, raw calls with an identity token.
enum Mode {
    Service(ServiceTokenSecret),
    Identity,
}

/// A validated location.
struct Target {
    project_id: String,
    env: String,
    path: String,
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
            let (mode, target) = prepare(ctx, &at)?;
            let mut client = ctx.secrets().await?;
            let mut rows = Vec::with_capacity(names.len());
            for name in names {
                let request = secrets_pb::GetSecretRequest {
                    project_id: target.project_id.clone(),
                    environment: target.env.clone(),
                    secret_path: target.path.clone(),
                    name,
                };
                rows.push(match &mode {
                    Mode::Service(st) => {
                        let reply = client.get_secret(request).await?.into_inner();
                        let key = open_project_key(st, reply.encrypted_project_key.map(sealed))?;
                        decrypt(&key, &reply.project_id, &reply.secret.unwrap_or_default())?
                    }
                    Mode::Identity => raw_row(
                        client
                            .get_secret_raw(request)
                            .await?
                            .into_inner()
                            .secret
                            .unwrap_or_default(),
                    ),
                });
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
            let (mode, target) = prepare(ctx, &at)?;
            let mut client = ctx.secrets().await?;
            let mut rows = Vec::with_capacity(pairs.len());
            match &mode {
                Mode::Service(st) => {
                    // The project key comes from LookupToken, which uses none
                    // of the token's uses, so the first write can encrypt.
                    let lookup = ctx.lookup_token().await?;
                    let key =
                        open_project_key(st, lookup.encrypted_project_key.map(lookup_sealed))?;
                    for (name, value) in pairs {
                        let aad = secret_aad(&lookup.project_id, &target.env, &target.path, &name);
                        let sealed = key
                            .seal(value.as_bytes(), &aad, &mut rand::rngs::OsRng)
                            .map_err(|e| CliError::Crypto(format!("encrypting {name}: {e}")))?;
                        let stored = client
                            .set_secret(secrets_pb::SetSecretRequest {
                                project_id: lookup.project_id.clone(),
                                environment: target.env.clone(),
                                secret_path: target.path.clone(),
                                name: name.clone(),
                                ciphertext: sealed.ciphertext,
                                iv: sealed.iv,
                                tag: sealed.tag,
                            })
                            .await?
                            .into_inner()
                            .secret
                            .unwrap_or_default();
                        rows.push(vec![name, stored.version.to_string()]);
                    }
                }
                Mode::Identity => {
                    for (name, value) in pairs {
                        let version = client
                            .set_secret_raw(secrets_pb::SetSecretRawRequest {
                                project_id: target.project_id.clone(),
                                environment: target.env.clone(),
                                secret_path: target.path.clone(),
                                name: name.clone(),
                                value,
                            })
                            .await?
                            .into_inner()
                            .version;
                        rows.push(vec![name, version.to_string()]);
                    }
                }
            }
            table(&["SECRET NAME", "VERSION"], &rows);
        }
        SecretsCommand::Delete { names, at } => {
            let names = parse_names(&names)?;
            let (_, target) = prepare(ctx, &at)?;
            let mut client = ctx.secrets().await?;
            for name in names {
                client
                    .delete_secret(secrets_pb::DeleteSecretRequest {
                        project_id: target.project_id.clone(),
                        environment: target.env.clone(),
                        secret_path: target.path.clone(),
                        name: name.clone(),
                    })
                    .await?;
                println!("Secret {name} deleted from {}:{}.", target.env, target.path);
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
    let (mode, target) = prepare(ctx, at)?;
    let mut client = ctx.secrets().await?;
    let request = secrets_pb::ListSecretsRequest {
        project_id: target.project_id,
        environment: target.env,
        secret_path: target.path,
        recursive,
    };
    match &mode {
        Mode::Service(st) => {
            let reply = client.list_secrets(request).await?.into_inner();
            let key = open_project_key(st, reply.encrypted_project_key.map(sealed))?;
            reply
                .secrets
                .iter()
                .map(|s| decrypt(&key, &reply.project_id, s))
                .collect()
        }
        Mode::Identity => Ok(client
            .list_secrets_raw(request)
            .await?
            .into_inner()
            .secrets
            .into_iter()
            .map(raw_row)
            .collect()),
    }
}

/// Checks the token's kind and the location flags before any call; paths
/// are normalised so the client binds the same path into the ciphertext as
/// the server stores.
fn prepare(ctx: &Context, at: &Location) -> Result<(Mode, Target), CliError> {
    let token = ctx.token()?;
    let mode = match AnyToken::parse(token)
        .map_err(|e| CliError::Input(format!("--token: {}", e.message)))?
    {
        // Client-side crypto needs the key part, which stays on this machine.
        AnyToken::Service(_) => Mode::Service(
            ServiceTokenSecret::parse(token)
                .map_err(|e| CliError::Input(format!("--token: {}", e.message)))?,
        ),
        AnyToken::Identity(_) => Mode::Identity,
    };
    let env = ctx.environment(at.env.clone())?;
    let path = SecretPath::parse(&at.path)
        .map_err(|e| CliError::Input(format!("--path: {}", e.message)))?;
    let project_id = match mode {
        Mode::Identity => ctx.project_id(at.project_id.clone()).map_err(|_| {
            CliError::Input(
                "--projectId is required with an identity token (or link the folder with `latchkey init`)"
                    .to_owned(),
            )
        })?,
        // A service token is bound to one project: a linked folder's project
        // must not override it, so only an explicit flag is sent.
        Mode::Service(_) => at.project_id.clone().unwrap_or_default(),
    };
    Ok((
        mode,
        Target {
            project_id,
            env: env.as_str().to_owned(),
            path: path.as_str().to_owned(),
        },
    ))
}

fn parse_names(names: &[String]) -> Result<Vec<String>, CliError> {
    names
        .iter()
        .map(|name| {
            SecretName::parse(name)
                .map(|_| name.clone())
                .map_err(|e| CliError::Input(format!("secret name {name:?}: {}", e.message)))
        })
        .collect()
}

/// The `(name, value)` pairs of `secrets set`, validated before any call.
fn values(
    args: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<(String, String)>, CliError> {
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
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            let (name, value) =
                item.map_err(|e| CliError::Input(format!("--file {}: {e}", path.display())))?;
            pairs.push((name, value));
        }
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
    for (name, _) in &pairs {
        SecretName::parse(name)
            .map_err(|e| CliError::Input(format!("secret name {name:?}: {}", e.message)))?;
    }
    Ok(pairs)
}

fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::Input(format!("cannot read standard input as UTF-8 text: {e}")))?;
    Ok(text)
}

fn sealed(k: secrets_pb::EncryptedProjectKey) -> Sealed {
    Sealed {
        ciphertext: k.ciphertext,
        iv: k.iv,
        tag: k.tag,
    }
}

fn decrypt(
    key: &WireKey,
    project_id: &str,
    secret: &secrets_pb::Secret,
) -> Result<SecretRow, CliError> {
    let aad = secret_aad(
        project_id,
        &secret.environment,
        &secret.secret_path,
        &secret.name,
    );
    let sealed = Sealed {
        ciphertext: secret.ciphertext.clone(),
        iv: secret.iv.clone(),
        tag: secret.tag.clone(),
    };
    let bytes = key.open(&sealed, &aad).map_err(|_| {
        CliError::Crypto(format!(
            "secret {} does not decrypt with the project key",
            secret.name
        ))
    })?;
    let value = String::from_utf8(bytes)
        .map_err(|_| CliError::Crypto(format!("secret {} is not UTF-8 text", secret.name)))?;
    Ok(SecretRow {
        name: secret.name.clone(),
        value,
        environment: secret.environment.clone(),
        path: secret.secret_path.clone(),
        version: secret.version,
    })
}

fn raw_row(s: secrets_pb::SecretRaw) -> SecretRow {
    SecretRow {
        name: s.name,
        value: s.value,
        environment: s.environment,
        path: s.secret_path,
        version: s.version,
    }
}
