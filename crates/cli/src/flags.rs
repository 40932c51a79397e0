//! Flags and flag values more than one command takes, checked before any call.

use std::path::PathBuf;

use clap::Args;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::scope::Scope;
use latchkey_proto::auth::v1 as auth_pb;

use crate::error::CliError;
use crate::output::slugs;

/// Flags every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Auth service address [default: the config file's, else 127.0.0.1:50051].
    #[arg(long, global = true, env = "LATCHKEY_AUTH_ADDR")]
    pub(crate) auth_addr: Option<String>,
    /// Secrets service address [default: the config file's, else 127.0.0.1:50052].
    #[arg(long, global = true, env = "LATCHKEY_SECRETS_ADDR")]
    pub(crate) secrets_addr: Option<String>,
    /// The token to call with: a service token, or an identity access token
    /// (the bootstrap admin's for admin commands) [default: the one `latchkey login` stored].
    #[arg(long, global = true, env = "LATCHKEY_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Connect over TLS (implied by https:// addresses, --ca-cert and --client-cert).
    #[arg(long, global = true)]
    pub(crate) tls: bool,
    /// PEM CA certificate(s) to trust instead of the system roots.
    #[arg(long = "ca-cert", global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM client certificate, for mTLS.
    #[arg(long = "client-cert", global = true, value_name = "FILE")]
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    pub(crate) client_key: Option<PathBuf>,
}

/// Where secrets live: environment, folder, project.
#[derive(Debug, Clone, Args)]
pub(crate) struct Location {
    /// Environment slug [default: the linked folder's, else dev].
    #[arg(long)]
    pub(crate) env: Option<String>,
    /// Folder path.
    #[arg(long, default_value = "/")]
    pub(crate) path: String,
    /// Project id [default: the linked folder's; service tokens know theirs].
    #[arg(long = "projectId")]
    pub(crate) project_id: Option<String>,
}

/// Refuses an environment the project does not have, naming the flag and
/// the environments it does have.
pub(crate) fn require_environment(
    project: &auth_pb::Project,
    slug: &str,
    flag: &str,
) -> Result<(), CliError> {
    if project.environments.iter().any(|e| e.slug == slug) {
        return Ok(());
    }
    Err(CliError::Input(format!(
        "{flag}: project {} has no environment {slug:?}; it has {}",
        project.id,
        slugs(project)
    )))
}

/// `--scope <env>:<glob>` flags, validated before any call.
pub(crate) fn scopes_from_flags(flags: &[String]) -> Result<Vec<auth_pb::Scope>, CliError> {
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

/// `--trusted-ip` flags, validated before any call.
pub(crate) fn check_trusted_ips(flags: &[String]) -> Result<(), CliError> {
    TrustedIps::parse(flags, "--trusted-ip")
        .map(|_| ())
        .map_err(|e| CliError::Input(format!("--trusted-ip: {}", e.message)))
}
