//! The command tree, the settings every command shares, and dispatch.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use latchkey_client::{AuthClient, Credential, SecretsClient, Tls};
use latchkey_domain::path::Environment;
use latchkey_domain::token::ServiceTokenSecret;
use latchkey_proto::auth::v1 as auth_pb;

use crate::client::{self, TlsFiles};
use crate::config::{self, ProjectFile, UserConfig};
use crate::error::CliError;

/// latchkey: tokens and secrets from your terminal.
///
/// Settings come from flags, then environment variables, then the config
/// file `latchkey login` writes, then the `make run` defaults. A folder is
/// linked to a project by `latchkey init`.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, long_about)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
struct Global {
    /// Auth service address [default: the config file's, else 127.0.0.1:50051].
    #[arg(long, global = true, env = "LATCHKEY_AUTH_ADDR")]
    auth_addr: Option<String>,
    /// Secrets service address [default: the config file's, else 127.0.0.1:50052].
    #[arg(long, global = true, env = "LATCHKEY_SECRETS_ADDR")]
    secrets_addr: Option<String>,
    /// The token to call with: a service token, or an identity access token
    /// (the bootstrap admin's for admin commands) [default: the one `latchkey login` stored].
    #[arg(long, global = true, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect over TLS (implied by https:// addresses, --ca-cert and --client-cert).
    #[arg(long, global = true)]
    tls: bool,
    /// PEM CA certificate(s) to trust instead of the system roots.
    #[arg(long = "ca-cert", global = true, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// PEM client certificate, for mTLS.
    #[arg(long = "client-cert", global = true, value_name = "FILE")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    client_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Link this folder to a project: writes .latchkey.json.
    ///
    /// Example: latchkey init --projectId 0b6f... --env dev
    Init {
        /// Project id.
        #[arg(long = "projectId")]
        project_id: String,
        /// The environment commands in this folder use without --env.
        #[arg(long = "env", default_value = "dev")]
        environment: String,
    },
    /// Check a token and store it (mode 0600) for later commands.
    ///
    /// Example: latchkey login --token "$(cat latchkey-data/admin-token)"
    Login,
    /// Forget the token `latchkey login` stored.
    ///
    /// Example: latchkey logout
    Logout,
    /// Manage projects (admin).
    #[command(subcommand)]
    Project(crate::project::ProjectCommand),
    /// Manage service tokens (project admin).
    #[command(subcommand, name = "service-token")]
    ServiceToken(crate::service_token::ServiceTokenCommand),
    /// Read and write secrets, encrypted and decrypted on this machine.
    #[command(subcommand)]
    Secrets(crate::secrets::SecretsCommand),
    /// Run a command with the secrets of a folder as environment variables.
    ///
    /// Example: latchkey run --env dev --path /backend -- ./server --port 8080
    Run(crate::run::RunArgs),
    /// Print the secrets of a folder as dotenv, JSON or YAML.
    ///
    /// Example: latchkey export --env dev --path /backend --format dotenv > .env
    Export(crate::run::ExportArgs),
    /// Manage machine identities, Token Auth and access tokens.
    #[command(subcommand)]
    Identity(crate::identity::IdentityCommand),
}

/// What a command needs to call the services: addresses, TLS, token and
/// the folder's linked project.
#[derive(Debug)]
pub(crate) struct Context {
    auth_addr: String,
    secrets_addr: String,
    token: Option<String>,
    tls: Tls,
    linked: Option<ProjectFile>,
}

impl Context {
    /// Resolves every setting in the documented order.
    fn resolve(global: Global) -> Result<Context, CliError> {
        let user = UserConfig::load()?;
        let tls = TlsFiles {
            enabled: global.tls,
            ca_cert: global.ca_cert,
            client_cert: global.client_cert,
            client_key: global.client_key,
        }
        .load()?;
        Ok(Context {
            auth_addr: global
                .auth_addr
                .or(user.auth_addr)
                .unwrap_or_else(|| config::DEFAULT_AUTH_ADDR.to_owned()),
            secrets_addr: global
                .secrets_addr
                .or(user.secrets_addr)
                .unwrap_or_else(|| config::DEFAULT_SECRETS_ADDR.to_owned()),
            token: global.token.or(user.token).filter(|t| !t.is_empty()),
            tls,
            linked: config::linked_project()?,
        })
    }

    /// The token, or an error saying the three ways to give one.
    pub(crate) fn token(&self) -> Result<&str, CliError> {
        self.token.as_deref().ok_or_else(|| {
            CliError::Input(
                "no token: pass --token, set LATCHKEY_TOKEN, or run `latchkey login --token <token>`"
                    .to_owned(),
            )
        })
    }

    /// A client of the auth service, calling with the token if there is one.
    pub(crate) async fn auth(&self) -> Result<AuthClient, CliError> {
        client::auth(&self.auth_addr, &self.tls, self.token.as_deref()).await
    }

    /// What the token is (`LookupToken`, which uses none of its uses).
    pub(crate) async fn lookup_token(&self) -> Result<auth_pb::LookupTokenResponse, CliError> {
        Ok(self
            .auth()
            .await?
            .lookup_token(auth_pb::LookupTokenRequest {})
            .await?
            .into_inner())
    }

    /// A client of the secrets service calling with `credential`; `writes`
    /// also connects the auth service, which a service token writes through.
    pub(crate) async fn secrets(
        &self,
        credential: Credential,
        writes: bool,
    ) -> Result<SecretsClient, CliError> {
        let auth = writes.then_some(self.auth_addr.as_str());
        client::secrets(&self.secrets_addr, auth, &self.tls, credential).await
    }

    /// `--projectId`, else the linked folder's project.
    pub(crate) fn project_id(&self, flag: Option<String>) -> Result<String, CliError> {
        flag.filter(|p| !p.is_empty())
            .or_else(|| self.linked.as_ref().map(|l| l.project_id.clone()))
            .ok_or_else(|| {
                CliError::Input(format!(
                    "--projectId is required: pass it, or link this folder with `latchkey init --projectId <id>` (no {} found here or above)",
                    config::PROJECT_FILE
                ))
            })
    }

    /// `--env`, else the linked folder's default environment, else `dev`;
    /// validated.
    pub(crate) fn environment(&self, flag: Option<String>) -> Result<Environment, CliError> {
        let env = flag
            .or_else(|| {
                self.linked
                    .as_ref()
                    .and_then(|l| l.default_environment.clone())
            })
            .unwrap_or_else(|| "dev".to_owned());
        Environment::parse(&env).map_err(|e| CliError::Input(format!("--env: {}", e.message)))
    }
}

/// Runs the parsed command line; returns the process exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, CliError> {
    let ctx = Context::resolve(cli.global)?;
    match cli.command {
        Command::Init {
            project_id,
            environment,
        } => init(&ctx, project_id, environment).await?,
        Command::Login => login(&ctx).await?,
        Command::Logout => logout()?,
        Command::Project(cmd) => crate::project::run(&ctx, cmd).await?,
        Command::ServiceToken(cmd) => crate::service_token::run(&ctx, cmd).await?,
        Command::Secrets(cmd) => crate::secrets::run(&ctx, cmd).await?,
        Command::Run(args) => return crate::run::run(&ctx, args).await,
        Command::Export(args) => crate::run::export(&ctx, args).await?,
        Command::Identity(cmd) => crate::identity::run(&ctx, cmd).await?,
    }
    Ok(0)
}

/// Checks the project exists and the environment is one of its own before
/// writing `.latchkey.json`, so a typo fails now rather than on every later
/// command.
async fn init(ctx: &Context, project_id: String, environment: String) -> Result<(), CliError> {
    let env = Environment::parse(&environment)
        .map_err(|e| CliError::Input(format!("--env: {}", e.message)))?;
    let project = ctx
        .auth()
        .await?
        .get_project(auth_pb::GetProjectRequest {
            project_id: project_id.clone(),
        })
        .await?
        .into_inner()
        .project
        .unwrap_or_default();
    crate::project::require_environment(&project, env.as_str(), "--env")?;
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::Input(format!("cannot read the working folder: {e}")))?;
    let path = config::write_project_file(
        &cwd,
        &ProjectFile {
            project_id,
            default_environment: Some(env.as_str().to_owned()),
        },
    )?;
    println!(
        "Linked {} to project {} ({}), default environment {}.",
        path.display(),
        project.name,
        project.id,
        env.as_str()
    );
    Ok(())
}

/// Verifies the token with `LookupToken` (which uses none of its uses) and
/// stores it with the addresses it worked against.
async fn login(ctx: &Context) -> Result<(), CliError> {
    let token = ctx.token()?.to_owned();
    let lookup = ctx.lookup_token().await?;
    // The server never sees the key part, so only here can a damaged one show.
    if let Ok(st) = ServiceTokenSecret::parse(&token) {
        latchkey_client::crypto::open_project_key(
            &st,
            lookup.encrypted_project_key.map(Into::into),
        )?;
    }
    let mut user = UserConfig::load()?;
    user.token = Some(token);
    user.auth_addr = Some(ctx.auth_addr.clone());
    user.secrets_addr = Some(ctx.secrets_addr.clone());
    let path = user.save()?;
    println!(
        "Logged in as {}; token stored in {} (mode 0600).",
        lookup.principal,
        path.display()
    );
    Ok(())
}

fn logout() -> Result<(), CliError> {
    let mut user = UserConfig::load()?;
    if user.token.take().is_none() {
        println!("No stored token.");
        return Ok(());
    }
    let path = user.save()?;
    println!("Stored token removed from {}.", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command a user can run, as its path of names.
    fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
        let mut subs = cmd
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .peekable();
        if subs.peek().is_none() {
            out.push((path, cmd.clone()));
            return;
        }
        for sub in subs {
            let mut next = path.clone();
            next.push(sub.get_name().to_owned());
            leaves(sub, next, out);
        }
    }

    #[test]
    fn every_command_help_shows_an_example() {
        let mut all = Vec::new();
        leaves(&Cli::command(), Vec::new(), &mut all);
        assert!(all.len() > 25, "found only {} commands", all.len());

        let missing: Vec<String> = all
            .into_iter()
            .filter_map(|(path, mut cmd)| {
                let help = cmd.render_long_help().to_string();
                (!help.contains("Example: latchkey ")).then(|| path.join(" "))
            })
            .collect();

        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
