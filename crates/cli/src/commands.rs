//! The command tree, the settings every command shares, and dispatch.

use clap::{Parser, Subcommand};
use latchkey_domain::path::Environment;
use latchkey_domain::token::ServiceTokenSecret;

use crate::config::{self, ProjectFile, UserConfig};
use crate::context::Context;
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
    global: crate::flags::Global,
    #[command(subcommand)]
    command: Command,
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
    /// Check a token and store it (mode 0600) for later commands, or log a
    /// machine identity in (Universal Auth, Kubernetes Auth) and store its
    /// access token, with the Infisical CLI's flags and variables.
    ///
    /// Example: latchkey login --token "$(cat latchkey-data/admin-token)"
    ///
    /// Example: latchkey login --method universal-auth --client-id <id> --client-secret <secret>
    ///
    /// Example: latchkey login --method kubernetes --machine-identity-id <id>
    Login(crate::login::LoginArgs),
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
    /// Read, follow and verify the audit trail (org or project admin).
    #[command(subcommand)]
    Audit(crate::audit::AuditCommand),
}

/// Runs the parsed command line; returns the process exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, CliError> {
    let ctx = Context::resolve(cli.global)?;
    match cli.command {
        Command::Init {
            project_id,
            environment,
        } => init(&ctx, project_id, environment).await?,
        Command::Login(args) => match args.method {
            crate::login::LoginMethod::Token => login(&ctx).await?,
            _ => crate::login::machine_login(&ctx, args).await?,
        },
        Command::Logout => logout()?,
        Command::Project(cmd) => crate::project::run(&ctx, cmd).await?,
        Command::ServiceToken(cmd) => crate::service_token::run(&ctx, cmd).await?,
        Command::Secrets(cmd) => crate::secrets::run(&ctx, cmd).await?,
        Command::Run(args) => return crate::run::run(&ctx, args).await,
        Command::Export(args) => crate::run::export(&ctx, args).await?,
        Command::Identity(cmd) => crate::identity::run(&ctx, cmd).await?,
        Command::Audit(cmd) => return crate::audit::run(&ctx, cmd).await,
    }
    Ok(0)
}

/// Checks the project exists and the environment is one of its own before
/// writing `.latchkey.json`, so a typo fails now rather than on every later
/// command.
async fn init(ctx: &Context, project_id: String, environment: String) -> Result<(), CliError> {
    let env = Environment::parse(&environment)
        .map_err(|e| CliError::Input(format!("--env: {}", e.message)))?;
    let project = ctx.project(project_id.clone()).await?;
    crate::flags::require_environment(&project, env.as_str(), "--env")?;
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
