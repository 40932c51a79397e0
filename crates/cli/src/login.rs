//! `latchkey login --method universal-auth|kubernetes`: a machine identity
//! logs in as with the Infisical CLI (same flags and variables), and the
//! access token is stored where `latchkey login` keeps its token.

use std::path::PathBuf;

use latchkey_proto::auth::v1 as auth_pb;

use crate::config::UserConfig;
use crate::context::Context;
use crate::error::CliError;

/// How `latchkey login` logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LoginMethod {
    /// Check the token given with --token (or LATCHKEY_TOKEN) and store it.
    Token,
    /// A Universal Auth client ID and client secret.
    UniversalAuth,
    /// This pod's Kubernetes service-account token.
    Kubernetes,
}

/// `latchkey login`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// How to log in.
    #[arg(long, value_enum, default_value = "token")]
    pub(crate) method: LoginMethod,
    /// Universal Auth: the identity's client ID.
    #[arg(long = "client-id", env = "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID")]
    client_id: Option<String>,
    /// Universal Auth: a client secret.
    #[arg(
        long = "client-secret",
        env = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
    /// Kubernetes Auth: the identity to log in as.
    #[arg(long = "machine-identity-id", env = "INFISICAL_MACHINE_IDENTITY_ID")]
    machine_identity_id: Option<String>,
    /// Kubernetes Auth: the service-account token file.
    #[arg(
        long = "service-account-token-path",
        env = "INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    service_account_token_path: PathBuf,
    /// Print only the access token (it is stored all the same).
    #[arg(long)]
    plain: bool,
}

/// Logs a machine identity in and stores its access token.
pub(crate) async fn machine_login(ctx: &Context, args: LoginArgs) -> Result<(), CliError> {
    let required = |value: Option<String>, flag: &str, var: &str| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            CliError::Input(format!("{flag}: required for this method (or set {var})"))
        })
    };
    let mut auth = ctx.auth_without_token().await?;
    let login = match args.method {
        LoginMethod::UniversalAuth => {
            let client_id = required(
                args.client_id,
                "--client-id",
                "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID",
            )?;
            let client_secret = required(
                args.client_secret,
                "--client-secret",
                "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
            )?;
            auth.login_universal_auth(auth_pb::LoginUniversalAuthRequest {
                client_id,
                client_secret,
                client_ip: String::new(),
            })
            .await?
        }
        LoginMethod::Kubernetes => {
            let identity_id = required(
                args.machine_identity_id,
                "--machine-identity-id",
                "INFISICAL_MACHINE_IDENTITY_ID",
            )?;
            let path = &args.service_account_token_path;
            let jwt = std::fs::read_to_string(path).map_err(|e| {
                CliError::Input(format!(
                    "--service-account-token-path: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            auth.login_kubernetes_auth(auth_pb::LoginKubernetesAuthRequest {
                identity_id,
                jwt: jwt.trim().to_owned(),
                client_ip: String::new(),
            })
            .await?
        }
        LoginMethod::Token => {
            return Err(CliError::Input(
                "--method token checks --token; it has no login to make".to_owned(),
            ));
        }
    }
    .into_inner();
    let mut user = UserConfig::load()?;
    user.token = Some(login.access_token.clone());
    user.auth_addr = Some(ctx.auth_addr.clone());
    user.secrets_addr = Some(ctx.secrets_addr.clone());
    let path = user.save()?;
    if args.plain {
        println!("{}", login.access_token);
    } else {
        println!(
            "Logged in as identity {}; access token (expires in {} s, max TTL {} s) stored in {} (mode 0600).",
            login.identity_id,
            login.expires_in,
            login.access_token_max_ttl,
            path.display()
        );
    }
    Ok(())
}
