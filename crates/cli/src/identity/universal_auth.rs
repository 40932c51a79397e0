//! `latchkey identity universal-auth ...`: the admin side of Universal Auth
//! (a client ID and client secrets a workload logs in with).

use clap::Subcommand;
use latchkey_client::AuthClient;
use latchkey_proto::auth::v1 as auth_pb;

use super::TokenAuthFlags;
use crate::error::CliError;
use crate::output::{table, time};

/// Universal Auth's settings: the access tokens' (as Token Auth's) and
/// where client secrets may log in from.
#[derive(Debug, clap::Args)]
pub(crate) struct UniversalAuthFlags {
    #[command(flatten)]
    access: TokenAuthFlags,
    /// Trusted IP or CIDR client secrets may log in from; repeatable (default 0.0.0.0/0 and ::/0).
    #[arg(long = "client-secret-trusted-ip")]
    client_secret_trusted_ips: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UniversalAuthCommand {
    /// Attach Universal Auth to an identity (a new client ID); unset flags take the defaults.
    ///
    /// Example: latchkey identity universal-auth attach --identity-id <id> --ttl 3600
    Attach(UniversalAuthFlags),
    /// Change Universal Auth; unset flags keep their value.
    ///
    /// Example: latchkey identity universal-auth update --identity-id <id> --client-secret-trusted-ip 10.0.0.0/8
    Update(UniversalAuthFlags),
    /// Show an identity's Universal Auth, with its client ID.
    ///
    /// Example: latchkey identity universal-auth get --identity-id <id>
    Get {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// Print only the client ID.
        #[arg(long)]
        plain: bool,
    },
    /// Remove Universal Auth and revoke its client secrets.
    ///
    /// Example: latchkey identity universal-auth revoke --identity-id <id>
    Revoke {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
    /// Create, list and revoke client secrets.
    #[command(subcommand, name = "client-secret")]
    ClientSecret(ClientSecretCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ClientSecretCommand {
    /// Create a client secret, printed once.
    ///
    /// Example: latchkey identity universal-auth client-secret create --identity-id <id> --ttl 86400 --plain
    Create {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Lifetime in seconds; 0 never expires.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        ttl: i64,
        /// Logins allowed; 0 is unlimited.
        #[arg(
            long = "num-uses-limit",
            default_value_t = 0,
            allow_negative_numbers = true
        )]
        num_uses_limit: i64,
        /// Print only the secret.
        #[arg(long)]
        plain: bool,
    },
    /// List an identity's client secrets (never the secrets).
    ///
    /// Example: latchkey identity universal-auth client-secret list --identity-id <id>
    List {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
    /// Revoke a client secret.
    ///
    /// Example: latchkey identity universal-auth client-secret revoke --identity-id <id> --client-secret-id <id>
    Revoke {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// Client secret id (from the listing).
        #[arg(long = "client-secret-id")]
        client_secret_id: String,
    },
}

/// Runs a Universal Auth command.
pub(crate) async fn run(auth: &mut AuthClient, cmd: UniversalAuthCommand) -> Result<(), CliError> {
    match cmd {
        UniversalAuthCommand::Attach(f) => {
            let reply = auth
                .attach_universal_auth(auth_pb::AttachUniversalAuthRequest {
                    identity_id: f.access.identity_id,
                    access_token_ttl: f.access.ttl,
                    access_token_max_ttl: f.access.max_ttl,
                    access_token_num_uses_limit: f.access.num_uses_limit,
                    access_token_trusted_ips: f.access.trusted_ips,
                    client_secret_trusted_ips: f.client_secret_trusted_ips,
                })
                .await?
                .into_inner();
            print_config(reply.config.unwrap_or_default());
        }
        UniversalAuthCommand::Update(f) => {
            let reply = auth
                .update_universal_auth(auth_pb::UpdateUniversalAuthRequest {
                    identity_id: f.access.identity_id,
                    access_token_ttl: f.access.ttl,
                    access_token_max_ttl: f.access.max_ttl,
                    access_token_num_uses_limit: f.access.num_uses_limit,
                    access_token_trusted_ips: f.access.trusted_ips,
                    client_secret_trusted_ips: f.client_secret_trusted_ips,
                })
                .await?
                .into_inner();
            print_config(reply.config.unwrap_or_default());
        }
        UniversalAuthCommand::Get { identity_id, plain } => {
            let config = auth
                .get_universal_auth(auth_pb::GetUniversalAuthRequest { identity_id })
                .await?
                .into_inner()
                .config
                .unwrap_or_default();
            if plain {
                println!("{}", config.client_id);
            } else {
                print_config(config);
            }
        }
        UniversalAuthCommand::Revoke { identity_id } => {
            auth.revoke_universal_auth(auth_pb::RevokeUniversalAuthRequest {
                identity_id: identity_id.clone(),
            })
            .await?;
            println!("Universal Auth removed from {identity_id}; its client secrets are revoked.");
        }
        UniversalAuthCommand::ClientSecret(ClientSecretCommand::Create {
            identity_id,
            description,
            ttl,
            num_uses_limit,
            plain,
        }) => {
            let reply = auth
                .create_universal_auth_client_secret(
                    auth_pb::CreateUniversalAuthClientSecretRequest {
                        identity_id,
                        description,
                        ttl,
                        num_uses_limit,
                    },
                )
                .await?
                .into_inner();
            if plain {
                println!("{}", reply.client_secret);
            } else {
                println!("Client secret created. Copy and store it now: it is shown only once.");
                println!("Client secret: {}", reply.client_secret);
                print_secrets(&reply.client_secret_data.into_iter().collect::<Vec<_>>());
            }
        }
        UniversalAuthCommand::ClientSecret(ClientSecretCommand::List { identity_id }) => {
            let secrets = auth
                .list_universal_auth_client_secrets(
                    auth_pb::ListUniversalAuthClientSecretsRequest { identity_id },
                )
                .await?
                .into_inner()
                .client_secrets;
            print_secrets(&secrets);
        }
        UniversalAuthCommand::ClientSecret(ClientSecretCommand::Revoke {
            identity_id,
            client_secret_id,
        }) => {
            auth.revoke_universal_auth_client_secret(
                auth_pb::RevokeUniversalAuthClientSecretRequest {
                    identity_id,
                    client_secret_id: client_secret_id.clone(),
                },
            )
            .await?;
            println!("Client secret {client_secret_id} revoked.");
        }
    }
    Ok(())
}

fn print_config(c: auth_pb::UniversalAuthConfig) {
    let limit = if c.access_token_num_uses_limit == 0 {
        "unlimited".to_owned()
    } else {
        c.access_token_num_uses_limit.to_string()
    };
    table(
        &[
            "IDENTITY",
            "CLIENT ID",
            "TTL",
            "MAX TTL",
            "USES LIMIT",
            "TRUSTED IPS",
            "SECRET TRUSTED IPS",
        ],
        &[vec![
            c.identity_id,
            c.client_id,
            c.access_token_ttl.to_string(),
            c.access_token_max_ttl.to_string(),
            limit,
            c.access_token_trusted_ips.join(","),
            c.client_secret_trusted_ips.join(","),
        ]],
    );
}

fn print_secrets(secrets: &[auth_pb::ClientSecretInfo]) {
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|s| {
            vec![
                s.id.clone(),
                format!("{}…", s.client_secret_prefix),
                s.description.clone(),
                if s.ttl == 0 {
                    "never".to_owned()
                } else {
                    format!("{} s", s.ttl)
                },
                if s.num_uses_limit == 0 {
                    format!("{}/unlimited", s.use_count)
                } else {
                    format!("{}/{}", s.use_count, s.num_uses_limit)
                },
                s.last_used_at
                    .as_ref()
                    .map_or_else(|| "never".to_owned(), time),
            ]
        })
        .collect();
    table(
        &["ID", "SECRET", "DESCRIPTION", "TTL", "LOGINS", "LAST USED"],
        &rows,
    );
}
