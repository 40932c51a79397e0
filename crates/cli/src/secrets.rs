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
                    name: name.clone(),
                };
                rows.push(match &mode {
                    Mode::Service(st) => {
                        let reply = client.get_secret(request).await?.into_inner();
                        let key = open_project_key(st, reply.encrypted_project_key.map(sealed))?;
                        let asked = Asked::new(&target, &reply.project_id, Some(&name), false)?;
                        decrypt(&key, &asked, &reply.secret.unwrap_or_default())?
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
        project_id: target.project_id.clone(),
        environment: target.env.clone(),
        secret_path: target.path.clone(),
        recursive,
    };
    match &mode {
        Mode::Service(st) => {
            let reply = client.list_secrets(request).await?.into_inner();
            let key = open_project_key(st, reply.encrypted_project_key.map(sealed))?;
            let asked = Asked::new(&target, &reply.project_id, None, recursive)?;
            reply
                .secrets
                .iter()
                .map(|s| decrypt(&key, &asked, s))
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

/// What a read asked for, which a returned secret must match before its
/// labels become associated data: a server cannot hand over a ciphertext
/// from another folder, environment or name as the one asked for.
struct Asked<'a> {
    project_id: &'a str,
    env: &'a str,
    path: &'a str,
    name: Option<&'a str>,
    recursive: bool,
}

impl<'a> Asked<'a> {
    /// The request's labels; the project is the one asked for, or for a
    /// service token that did not name one, the token's own as reported.
    fn new(
        target: &'a Target,
        reported_project: &'a str,
        name: Option<&'a str>,
        recursive: bool,
    ) -> Result<Self, CliError> {
        if !target.project_id.is_empty() && target.project_id != reported_project {
            return Err(refused(&format!(
                "the server answered for project {reported_project}, not {}",
                target.project_id
            )));
        }
        Ok(Self {
            project_id: reported_project,
            env: &target.env,
            path: &target.path,
            name,
            recursive,
        })
    }

    /// The labels of `secret`, if they are what was asked for.
    fn labels<'s>(&self, secret: &'s secrets_pb::Secret) -> Result<(&'s str, &'s str), CliError> {
        let inside = secret.secret_path == self.path
            || (self.recursive
                && secret
                    .secret_path
                    .strip_prefix(self.path)
                    .is_some_and(|rest| self.path == "/" || rest.starts_with('/')));
        if secret.environment != self.env || !inside || self.name.is_some_and(|n| n != secret.name)
        {
            return Err(refused(&format!(
                "the server returned {}:{} {} for a read of {}:{}",
                secret.environment, secret.secret_path, secret.name, self.env, self.path
            )));
        }
        Ok((&secret.environment, &secret.secret_path))
    }
}

fn refused(what: &str) -> CliError {
    CliError::Crypto(format!("{what}: refusing the answer"))
}

fn decrypt(
    key: &WireKey,
    asked: &Asked<'_>,
    secret: &secrets_pb::Secret,
) -> Result<SecretRow, CliError> {
    let (environment, path) = asked.labels(secret)?;
    let aad = secret_aad(asked.project_id, environment, path, &secret.name);
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
        environment: environment.to_owned(),
        path: path.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        Target {
            project_id: String::new(),
            env: "dev".into(),
            path: path.into(),
        }
    }

    fn secret(env: &str, path: &str, name: &str) -> secrets_pb::Secret {
        secrets_pb::Secret {
            environment: env.into(),
            secret_path: path.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_returned_secret_must_be_what_was_asked_for() {
        let at = target("/backend");
        let get = Asked::new(&at, "p", Some("DB"), false).unwrap();
        assert!(get.labels(&secret("dev", "/backend", "DB")).is_ok());
        for swapped in [
            secret("dev", "/frontend", "DB"),
            secret("prod", "/backend", "DB"),
            secret("dev", "/backend", "OTHER"),
            secret("dev", "/backend/sub", "DB"),
        ] {
            assert!(get.labels(&swapped).is_err(), "{swapped:?}");
        }
        let list = Asked::new(&at, "p", None, true).unwrap();
        assert!(list.labels(&secret("dev", "/backend/sub", "X")).is_ok());
        assert!(list.labels(&secret("dev", "/backendx", "X")).is_err());
        let root = target("/");
        let all = Asked::new(&root, "p", None, true).unwrap();
        assert!(all.labels(&secret("dev", "/a/b", "X")).is_ok());
    }

    #[test]
    fn an_answer_for_another_project_than_asked_is_refused() {
        let mut at = target("/");
        at.project_id = "asked".into();
        assert!(Asked::new(&at, "other", None, false).is_err());
        assert!(Asked::new(&at, "asked", None, false).is_ok());
    }
}
