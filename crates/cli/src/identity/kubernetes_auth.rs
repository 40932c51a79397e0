//! `latchkey identity kubernetes-auth ...`: the admin side of Kubernetes
//! Auth (the cluster's service-account issuer and who may log in).

use clap::Subcommand;
use latchkey_client::AuthClient;
use latchkey_proto::auth::v1 as auth_pb;

use super::TokenAuthFlags;
use crate::error::CliError;
use crate::output::table;

/// Kubernetes Auth's settings; unset flags take the defaults (attach) or
/// keep their value (update).
#[derive(Debug, clap::Args)]
pub(crate) struct KubernetesAuthFlags {
    #[command(flatten)]
    access: TokenAuthFlags,
    /// The cluster's service-account issuer (kube-apiserver --service-account-issuer).
    #[arg(long)]
    issuer: Option<String>,
    /// The issuer's public keys: a JWKS document or PEM public keys.
    #[arg(long, conflicts_with = "keys_file")]
    keys: Option<String>,
    /// A file with the issuer's public keys (`kubectl get --raw /openid/v1/jwks`, or sa.pub).
    #[arg(long = "keys-file")]
    keys_file: Option<std::path::PathBuf>,
    /// Audiences of which a token must name one, comma-separated ("" accepts any).
    #[arg(long = "allowed-audiences")]
    allowed_audiences: Option<String>,
    /// Namespaces allowed, comma-separated ("" accepts any).
    #[arg(long = "allowed-namespaces")]
    allowed_namespaces: Option<String>,
    /// Service-account names allowed, comma-separated ("" accepts any).
    #[arg(long = "allowed-names")]
    allowed_names: Option<String>,
}

impl KubernetesAuthFlags {
    fn keys(&self) -> Result<Option<String>, CliError> {
        match &self.keys_file {
            Some(path) => std::fs::read_to_string(path).map(Some).map_err(|e| {
                CliError::Input(format!("--keys-file: cannot read {}: {e}", path.display()))
            }),
            None => Ok(self.keys.clone()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum KubernetesAuthCommand {
    /// Attach Kubernetes Auth to an identity (--issuer and --keys or --keys-file required).
    ///
    /// Example: latchkey identity kubernetes-auth attach --identity-id <id> --issuer "$ISSUER" --keys-file jwks.json --allowed-audiences latchkey --allowed-namespaces billing
    Attach(KubernetesAuthFlags),
    /// Change Kubernetes Auth; unset flags keep their value.
    ///
    /// Example: latchkey identity kubernetes-auth update --identity-id <id> --allowed-names worker,cron
    Update(KubernetesAuthFlags),
    /// Show an identity's Kubernetes Auth.
    ///
    /// Example: latchkey identity kubernetes-auth get --identity-id <id>
    Get {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
    /// Remove Kubernetes Auth from an identity.
    ///
    /// Example: latchkey identity kubernetes-auth revoke --identity-id <id>
    Revoke {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
}

/// Runs a Kubernetes Auth command.
pub(crate) async fn run(auth: &mut AuthClient, cmd: KubernetesAuthCommand) -> Result<(), CliError> {
    let config = match cmd {
        KubernetesAuthCommand::Attach(f) => {
            let keys = f.keys()?;
            auth.attach_kubernetes_auth(auth_pb::AttachKubernetesAuthRequest {
                identity_id: f.access.identity_id,
                issuer: f.issuer,
                keys,
                allowed_audiences: f.allowed_audiences,
                allowed_namespaces: f.allowed_namespaces,
                allowed_names: f.allowed_names,
                access_token_ttl: f.access.ttl,
                access_token_max_ttl: f.access.max_ttl,
                access_token_num_uses_limit: f.access.num_uses_limit,
                access_token_trusted_ips: f.access.trusted_ips,
            })
            .await?
            .into_inner()
            .config
        }
        KubernetesAuthCommand::Update(f) => {
            let keys = f.keys()?;
            auth.update_kubernetes_auth(auth_pb::UpdateKubernetesAuthRequest {
                identity_id: f.access.identity_id,
                issuer: f.issuer,
                keys,
                allowed_audiences: f.allowed_audiences,
                allowed_namespaces: f.allowed_namespaces,
                allowed_names: f.allowed_names,
                access_token_ttl: f.access.ttl,
                access_token_max_ttl: f.access.max_ttl,
                access_token_num_uses_limit: f.access.num_uses_limit,
                access_token_trusted_ips: f.access.trusted_ips,
            })
            .await?
            .into_inner()
            .config
        }
        KubernetesAuthCommand::Get { identity_id } => {
            auth.get_kubernetes_auth(auth_pb::GetKubernetesAuthRequest { identity_id })
                .await?
                .into_inner()
                .config
        }
        KubernetesAuthCommand::Revoke { identity_id } => {
            auth.revoke_kubernetes_auth(auth_pb::RevokeKubernetesAuthRequest {
                identity_id: identity_id.clone(),
            })
            .await?;
            println!("Kubernetes Auth removed from {identity_id}.");
            return Ok(());
        }
    };
    let c = config.unwrap_or_default();
    let any = |list: &str| {
        if list.is_empty() {
            "any".to_owned()
        } else {
            list.to_owned()
        }
    };
    table(
        &[
            "IDENTITY",
            "ISSUER",
            "AUDIENCES",
            "NAMESPACES",
            "NAMES",
            "TTL",
            "MAX TTL",
        ],
        &[vec![
            c.identity_id,
            c.issuer,
            any(&c.allowed_audiences),
            any(&c.allowed_namespaces),
            any(&c.allowed_names),
            c.access_token_ttl.to_string(),
            c.access_token_max_ttl.to_string(),
        ]],
    );
    Ok(())
}
