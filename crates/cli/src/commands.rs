//! The command tree and what each command does.

use clap::{Args, Parser, Subcommand, ValueEnum};
use latchkey_domain::crypto::{Sealed, WireKey, secret_aad};
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::scope::Scope;
use latchkey_domain::token::{AnyToken, ServiceTokenSecret};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::secrets::v1 as secrets_pb;

use crate::client::{self, CliError};
use crate::output::table;

/// latchkey: tokens and secrets from your terminal.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Auth service address.
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_AUTH_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    auth_addr: String,
    /// Secrets service address.
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_SECRETS_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    secrets_addr: String,
    /// The token to call with: a service token, or an identity access token
    /// (the bootstrap admin's for admin commands).
    #[arg(long, global = true, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage projects (admin).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage service tokens (admin).
    #[command(subcommand, name = "service-token")]
    ServiceToken(ServiceTokenCommand),
    /// Read and write secrets, encrypted and decrypted on this machine.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Manage machine identities, Token Auth and access tokens.
    #[command(subcommand)]
    Identity(crate::identity::IdentityCommand),
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create a project with the environments dev, staging and prod.
    ///
    /// Example: latchkey project create --name demo --plain
    Create {
        /// Project name.
        #[arg(long)]
        name: String,
        /// End-to-end encryption: the server never decrypts this project's secrets.
        #[arg(long)]
        e2ee: bool,
        /// Print only the project id.
        #[arg(long)]
        plain: bool,
    },
    /// List projects.
    List,
    /// Give an identity a role in a project (project admin).
    ///
    /// Example: latchkey project add-identity --projectId <p> --identity-id <i> --role viewer --scope=dev:/backend/**
    AddIdentity {
        /// Project id.
        #[arg(long = "projectId")]
        project_id: String,
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// viewer (read), developer (read and write) or admin (also manages the project).
        #[arg(long)]
        role: String,
        /// Narrow the role to <environment>:<folder glob>; repeatable. Default: the whole project.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Remove an identity from a project (project admin).
    RemoveIdentity {
        /// Project id.
        #[arg(long = "projectId")]
        project_id: String,
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AccessLevel {
    Read,
    Write,
}

#[derive(Debug, Subcommand)]
enum ServiceTokenCommand {
    /// Create a service token, printed once.
    ///
    /// Example: latchkey service-token create --projectId <id> --scope=dev:/backend/** --access-level=read --access-level=write
    Create {
        /// Project id.
        #[arg(long = "projectId")]
        project_id: String,
        /// Scope as <environment>:<folder path glob>; repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// read or write; repeatable.
        #[arg(long = "access-level", value_enum, required = true)]
        access_levels: Vec<AccessLevel>,
        /// Token name.
        #[arg(long, default_value = "Service token generated via CLI")]
        name: String,
        /// Lifetime in seconds; 0 never expires.
        #[arg(long = "expiry-seconds", default_value_t = 86_400, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
        expiry_seconds: i64,
        /// Trusted IP or CIDR; repeatable. Default: any address.
        #[arg(long = "trusted-ip")]
        trusted_ips: Vec<String>,
        /// Print only the token.
        #[arg(long = "token-only")]
        token_only: bool,
    },
}

#[derive(Debug, Args)]
struct Location {
    /// Environment slug.
    #[arg(long, default_value = "dev")]
    env: String,
    /// Folder path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Project id (required with identity tokens; service tokens know theirs).
    #[arg(long = "projectId")]
    project_id: Option<String>,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// List the secrets of a folder.
    ///
    /// Example: latchkey secrets list --env dev --path /backend --recursive
    List {
        #[command(flatten)]
        at: Location,
        /// Include the folders below the path that the token may read.
        #[arg(long)]
        recursive: bool,
    },
    /// Print secrets by name.
    ///
    /// Example: latchkey secrets get DB_URL --env dev --path /backend --plain
    Get {
        /// Secret names.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        at: Location,
        /// Print only the values, one per line.
        #[arg(long)]
        plain: bool,
    },
    /// Create or update secrets.
    ///
    /// Example: latchkey secrets set DB_URL=postgres://db --env dev --path /backend
    Set {
        /// NAME=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
        #[command(flatten)]
        at: Location,
    },
}

pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Project(cmd) => project(&cli.auth_addr, cli.token.as_deref(), cmd).await,
        Command::ServiceToken(cmd) => {
            service_token(&cli.auth_addr, cli.token.as_deref(), cmd).await
        }
        Command::Identity(cmd) => {
            crate::identity::run(&cli.auth_addr, cli.token.as_deref(), cmd).await
        }
        Command::Secrets(cmd) => {
            let token = cli.token.as_deref().ok_or_else(|| {
                CliError::Input("no token: pass --token or set LATCHKEY_TOKEN".to_owned())
            })?;
            secrets(&cli.auth_addr, &cli.secrets_addr, token, cmd).await
        }
    }
}

async fn project(addr: &str, token: Option<&str>, cmd: ProjectCommand) -> Result<(), CliError> {
    let mut auth = client::auth(addr, token).await?;
    match cmd {
        ProjectCommand::Create { name, e2ee, plain } => {
            let project = auth
                .create_project(auth_pb::CreateProjectRequest { name, e2ee })
                .await?
                .into_inner()
                .project
                .unwrap_or_default();
            if plain {
                println!("{}", project.id);
            } else {
                print_projects(&[project]);
            }
        }
        ProjectCommand::List => {
            let projects = auth
                .list_projects(auth_pb::ListProjectsRequest {})
                .await?
                .into_inner()
                .projects;
            print_projects(&projects);
        }
        ProjectCommand::AddIdentity {
            project_id,
            identity_id,
            role,
            scopes,
        } => {
            let membership = auth
                .add_identity_to_project(auth_pb::AddIdentityToProjectRequest {
                    project_id,
                    identity_id,
                    role,
                    scopes: scopes_from_flags(&scopes)?,
                })
                .await?
                .into_inner()
                .membership
                .unwrap_or_default();
            let scopes: Vec<_> = membership
                .scopes
                .iter()
                .map(|s| format!("{}:{}", s.environment, s.secret_path))
                .collect();
            table(
                &["PROJECT", "IDENTITY", "ROLE", "SCOPES"],
                &[vec![
                    membership.project_id,
                    membership.identity_id,
                    membership.role,
                    if scopes.is_empty() {
                        "whole project".to_owned()
                    } else {
                        scopes.join(",")
                    },
                ]],
            );
        }
        ProjectCommand::RemoveIdentity {
            project_id,
            identity_id,
        } => {
            auth.remove_identity_from_project(auth_pb::RemoveIdentityFromProjectRequest {
                project_id: project_id.clone(),
                identity_id: identity_id.clone(),
            })
            .await?;
            println!("Identity {identity_id} removed from project {project_id}.");
        }
    }
    Ok(())
}

fn print_projects(projects: &[auth_pb::Project]) {
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.e2ee.to_string(),
                p.environments
                    .iter()
                    .map(|e| e.slug.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    table(&["ID", "NAME", "E2EE", "ENVIRONMENTS"], &rows);
}

async fn service_token(
    addr: &str,
    token: Option<&str>,
    cmd: ServiceTokenCommand,
) -> Result<(), CliError> {
    let ServiceTokenCommand::Create {
        project_id,
        scopes,
        access_levels,
        name,
        expiry_seconds,
        trusted_ips,
        token_only,
    } = cmd;
    let scopes = scopes_from_flags(&scopes)?;
    let permissions = access_levels
        .iter()
        .map(|level| match level {
            AccessLevel::Read => auth_pb::Permission::Read.into(),
            AccessLevel::Write => auth_pb::Permission::Write.into(),
        })
        .collect();
    let mut auth = client::auth(addr, token).await?;
    let reply = auth
        .create_service_token(auth_pb::CreateServiceTokenRequest {
            project_id,
            name,
            scopes,
            permissions,
            expires_in_seconds: expiry_seconds,
            trusted_ips,
        })
        .await?
        .into_inner();
    if token_only {
        println!("{}", reply.service_token);
    } else {
        println!("Service token created. Copy and store it now: it is shown only once.");
        println!("Token: {}", reply.service_token);
    }
    Ok(())
}

/// `--scope <env>:<glob>` flags, validated before any call.
fn scopes_from_flags(flags: &[String]) -> Result<Vec<auth_pb::Scope>, CliError> {
    flags
        .iter()
        .map(|s| {
            Scope::parse_cli(s)
                .map(|scope| auth_pb::Scope {
                    environment: scope.environment.as_str().to_owned(),
                    secret_path: scope.glob.as_str().to_owned(),
                })
                .map_err(|e| CliError::Input(format!("--scope {s:?}: {}", e.message)))
        })
        .collect()
}

/// How secrets are read and written: client-side crypto with a service
/// token, raw calls with an identity token.
enum Mode {
    Service(ServiceTokenSecret),
    Identity,
}

async fn secrets(
    auth_addr: &str,
    secrets_addr: &str,
    token: &str,
    cmd: SecretsCommand,
) -> Result<(), CliError> {
    let mode = match AnyToken::parse(token)
        .map_err(|e| CliError::Input(format!("--token: {}", e.message)))?
    {
        AnyToken::Service(st) => Mode::Service(st),
        AnyToken::Identity(_) => Mode::Identity,
    };
    let mut client = client::secrets(secrets_addr, Some(token)).await?;
    match cmd {
        SecretsCommand::List { at, recursive } => {
            let (project_id, env, path) = location(&at, &mode)?;
            let request = secrets_pb::ListSecretsRequest {
                project_id,
                environment: env,
                secret_path: path,
                recursive,
            };
            let rows = match &mode {
                Mode::Service(st) => {
                    let reply = client.list_secrets(request).await?.into_inner();
                    let key = project_key(st, reply.encrypted_project_key.clone().map(sealed))?;
                    reply
                        .secrets
                        .iter()
                        .map(|s| {
                            decrypt(&key, &reply.project_id, s)
                                .map(|v| vec![s.name.clone(), v, s.secret_path.clone()])
                        })
                        .collect::<Result<Vec<_>, _>>()?
                }
                Mode::Identity => client
                    .list_secrets_raw(request)
                    .await?
                    .into_inner()
                    .secrets
                    .into_iter()
                    .map(|s| vec![s.name, s.value, s.secret_path])
                    .collect(),
            };
            table(&["SECRET NAME", "SECRET VALUE", "SECRET PATH"], &rows);
        }
        SecretsCommand::Get { names, at, plain } => {
            let (project_id, env, path) = location(&at, &mode)?;
            let mut rows = Vec::new();
            for name in names {
                SecretName::parse(&name).map_err(|e| CliError::Input(e.message))?;
                let request = secrets_pb::GetSecretRequest {
                    project_id: project_id.clone(),
                    environment: env.clone(),
                    secret_path: path.clone(),
                    name: name.clone(),
                };
                let value = match &mode {
                    Mode::Service(st) => {
                        let reply = client.get_secret(request).await?.into_inner();
                        let key = project_key(st, reply.encrypted_project_key.clone().map(sealed))?;
                        let secret = reply.secret.unwrap_or_default();
                        decrypt(&key, &reply.project_id, &secret)?
                    }
                    Mode::Identity => {
                        client
                            .get_secret_raw(request)
                            .await?
                            .into_inner()
                            .secret
                            .unwrap_or_default()
                            .value
                    }
                };
                rows.push(vec![name, value]);
            }
            if plain {
                for row in rows {
                    println!("{}", row[1]);
                }
            } else {
                table(&["SECRET NAME", "SECRET VALUE"], &rows);
            }
        }
        SecretsCommand::Set { pairs, at } => {
            let (project_id, env, path) = location(&at, &mode)?;
            let pairs = pairs
                .iter()
                .map(|pair| {
                    let (name, value) = pair
                        .split_once('=')
                        .ok_or_else(|| CliError::Input(format!("{pair:?} is not NAME=VALUE")))?;
                    SecretName::parse(name).map_err(|e| CliError::Input(e.message))?;
                    Ok((name.to_owned(), value.to_owned()))
                })
                .collect::<Result<Vec<_>, CliError>>()?;
            match &mode {
                Mode::Service(st) => {
                    let mut auth = client::auth(auth_addr, Some(token)).await?;
                    let lookup = auth
                        .lookup_token(auth_pb::LookupTokenRequest {})
                        .await?
                        .into_inner();
                    let key = project_key(
                        st,
                        lookup.encrypted_project_key.clone().map(|k| Sealed {
                            ciphertext: k.ciphertext,
                            iv: k.iv,
                            tag: k.tag,
                        }),
                    )?;
                    for (name, value) in &pairs {
                        let aad = secret_aad(&lookup.project_id, &env, &path, name);
                        let sealed = key.seal(value.as_bytes(), &aad, &mut rand::rngs::OsRng);
                        client
                            .set_secret(secrets_pb::SetSecretRequest {
                                project_id: lookup.project_id.clone(),
                                environment: env.clone(),
                                secret_path: path.clone(),
                                name: name.clone(),
                                ciphertext: sealed.ciphertext,
                                iv: sealed.iv,
                                tag: sealed.tag,
                            })
                            .await?;
                    }
                }
                Mode::Identity => {
                    for (name, value) in &pairs {
                        client
                            .set_secret_raw(secrets_pb::SetSecretRawRequest {
                                project_id: project_id.clone(),
                                environment: env.clone(),
                                secret_path: path.clone(),
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .await?;
                    }
                }
            }
            let rows: Vec<Vec<String>> = pairs
                .into_iter()
                .map(|(n, _)| vec![n, "set".to_owned()])
                .collect();
            table(&["SECRET NAME", "STATUS"], &rows);
        }
    }
    Ok(())
}

/// Validates the location flags before any call; paths are normalised so the
/// client binds the same path into the ciphertext as the server stores.
fn location(at: &Location, mode: &Mode) -> Result<(String, String, String), CliError> {
    let env = Environment::parse(&at.env)
        .map_err(|e| CliError::Input(format!("--env: {}", e.message)))?;
    let path = SecretPath::parse(&at.path)
        .map_err(|e| CliError::Input(format!("--path: {}", e.message)))?;
    let project_id = at.project_id.clone().unwrap_or_default();
    if matches!(mode, Mode::Identity) && project_id.is_empty() {
        return Err(CliError::Input(
            "--projectId is required with an identity token".to_owned(),
        ));
    }
    Ok((
        project_id,
        env.as_str().to_owned(),
        path.as_str().to_owned(),
    ))
}

/// The project key, decrypted with the token's key part.
fn project_key(token: &ServiceTokenSecret, encrypted: Option<Sealed>) -> Result<WireKey, CliError> {
    let sealed = encrypted
        .ok_or_else(|| CliError::Crypto("the server sent no encrypted project key".to_owned()))?;
    let bytes = token.key().open(&sealed, b"").map_err(|_| {
        CliError::Crypto("the project key does not decrypt with this token's key part".to_owned())
    })?;
    WireKey::from_bytes(&bytes).map_err(|e| CliError::Crypto(e.to_string()))
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
) -> Result<String, CliError> {
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
    String::from_utf8(bytes)
        .map_err(|_| CliError::Crypto(format!("secret {} is not UTF-8 text", secret.name)))
}
