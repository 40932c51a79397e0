//! `latchkey identity ...`: machine identities, Token Auth, Universal Auth,
//! Kubernetes Auth and access tokens.

mod kubernetes_auth;
mod universal_auth;

use clap::Subcommand;
use latchkey_proto::auth::v1 as auth_pb;

use crate::context::Context;
use crate::error::CliError;
use crate::output::{self, table};

#[derive(Debug, Subcommand)]
pub(crate) enum IdentityCommand {
    /// Create a machine identity (org admin).
    ///
    /// Example: latchkey identity create --name ci-runner --role member --plain
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Org role: admin, member or no-access.
        #[arg(long, default_value = "member")]
        role: String,
        /// Print only the identity id.
        #[arg(long)]
        plain: bool,
    },
    /// List identities (org admin).
    ///
    /// Example: latchkey identity list
    List,
    /// Delete an identity and revoke its tokens (org admin).
    ///
    /// Example: latchkey identity delete 2c1f...
    Delete {
        /// Identity id.
        identity_id: String,
    },
    /// Configure Token Auth.
    #[command(subcommand, name = "token-auth")]
    TokenAuth(TokenAuthCommand),
    /// Configure Universal Auth and its client secrets.
    #[command(subcommand, name = "universal-auth")]
    UniversalAuth(universal_auth::UniversalAuthCommand),
    /// Configure Kubernetes Auth.
    #[command(subcommand, name = "kubernetes-auth")]
    KubernetesAuth(kubernetes_auth::KubernetesAuthCommand),
    /// Issue, list, renew and revoke access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenAuthFlags {
    /// Identity id.
    #[arg(long = "identity-id")]
    identity_id: String,
    /// Access token TTL in seconds (default 2592000).
    #[arg(long, allow_negative_numbers = true)]
    ttl: Option<i64>,
    /// Max TTL in seconds: renewals never pass creation plus this (default 2592000).
    #[arg(long = "max-ttl", allow_negative_numbers = true)]
    max_ttl: Option<i64>,
    /// Maximum uses per token; 0 is unlimited (default 0).
    #[arg(long = "num-uses-limit", allow_negative_numbers = true)]
    num_uses_limit: Option<i64>,
    /// Trusted IP or CIDR; repeatable (default 0.0.0.0/0 and ::/0).
    #[arg(long = "trusted-ip")]
    trusted_ips: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenAuthCommand {
    /// Attach Token Auth to an identity; unset flags take the defaults.
    ///
    /// Example: latchkey identity token-auth attach --identity-id <id> --num-uses-limit 3
    Attach(TokenAuthFlags),
    /// Change Token Auth; unset flags keep their value. Tokens already issued keep theirs.
    ///
    /// Example: latchkey identity token-auth update --identity-id <id> --ttl 3600
    Update(TokenAuthFlags),
    /// Show an identity's Token Auth.
    ///
    /// Example: latchkey identity token-auth get --identity-id <id>
    Get {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue an access token, printed once.
    ///
    /// Example: latchkey identity token create --identity-id <id> --token-only
    Create {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
        /// Token name.
        #[arg(long, default_value = "")]
        name: String,
        /// Print only the token.
        #[arg(long = "token-only")]
        token_only: bool,
    },
    /// List an identity's access tokens.
    ///
    /// Example: latchkey identity token list --identity-id <id>
    List {
        /// Identity id.
        #[arg(long = "identity-id")]
        identity_id: String,
    },
    /// Renew an access token (default: the one in --token / LATCHKEY_TOKEN).
    ///
    /// Example: latchkey identity token renew --access-token eyJ…
    Renew {
        /// The access token to renew.
        #[arg(long = "access-token")]
        access_token: Option<String>,
    },
    /// Revoke an access token: the token itself, or a token id as org admin.
    ///
    /// Example: latchkey identity token revoke --access-token eyJ…
    Revoke {
        /// The access token to revoke.
        #[arg(long = "access-token", conflicts_with = "token_id")]
        access_token: Option<String>,
        /// A token id (as org admin).
        #[arg(long = "token-id")]
        token_id: Option<String>,
    },
}

/// Runs an identity command.
pub(crate) async fn run(ctx: &Context, cmd: IdentityCommand) -> Result<(), CliError> {
    let mut auth = ctx.auth().await?;
    match cmd {
        IdentityCommand::Create { name, role, plain } => {
            let identity = auth
                .create_identity(auth_pb::CreateIdentityRequest {
                    name,
                    org_role: role,
                })
                .await?
                .into_inner()
                .identity
                .unwrap_or_default();
            if plain {
                println!("{}", identity.id);
            } else {
                print_identities(&[identity]);
            }
        }
        IdentityCommand::List => {
            let identities = auth
                .list_identities(auth_pb::ListIdentitiesRequest {})
                .await?
                .into_inner()
                .identities;
            print_identities(&identities);
        }
        IdentityCommand::Delete { identity_id } => {
            auth.delete_identity(auth_pb::DeleteIdentityRequest {
                identity_id: identity_id.clone(),
            })
            .await?;
            println!("Identity {identity_id} deleted; its access tokens are revoked.");
        }
        IdentityCommand::UniversalAuth(cmd) => universal_auth::run(&mut auth, cmd).await?,
        IdentityCommand::KubernetesAuth(cmd) => kubernetes_auth::run(&mut auth, cmd).await?,
        IdentityCommand::TokenAuth(TokenAuthCommand::Attach(f)) => {
            let config = auth
                .attach_token_auth(auth_pb::AttachTokenAuthRequest {
                    identity_id: f.identity_id,
                    access_token_ttl: f.ttl,
                    access_token_max_ttl: f.max_ttl,
                    access_token_num_uses_limit: f.num_uses_limit,
                    access_token_trusted_ips: f.trusted_ips,
                })
                .await?
                .into_inner();
            print_config(config.config.unwrap_or_default());
        }
        IdentityCommand::TokenAuth(TokenAuthCommand::Update(f)) => {
            let config = auth
                .update_token_auth(auth_pb::UpdateTokenAuthRequest {
                    identity_id: f.identity_id,
                    access_token_ttl: f.ttl,
                    access_token_max_ttl: f.max_ttl,
                    access_token_num_uses_limit: f.num_uses_limit,
                    access_token_trusted_ips: f.trusted_ips,
                })
                .await?
                .into_inner();
            print_config(config.config.unwrap_or_default());
        }
        IdentityCommand::TokenAuth(TokenAuthCommand::Get { identity_id }) => {
            let config = auth
                .get_token_auth(auth_pb::GetTokenAuthRequest { identity_id })
                .await?
                .into_inner();
            print_config(config.config.unwrap_or_default());
        }
        IdentityCommand::Token(TokenCommand::Create {
            identity_id,
            name,
            token_only,
        }) => {
            let issued = auth
                .create_identity_access_token(auth_pb::CreateIdentityAccessTokenRequest {
                    identity_id,
                    name,
                })
                .await?
                .into_inner();
            if token_only {
                println!("{}", issued.access_token);
            } else {
                println!("Access token created. Copy and store it now: it is shown only once.");
                println!("Token: {}", issued.access_token);
                println!(
                    "Expires in: {} s (max TTL {} s), type {}",
                    issued.expires_in, issued.access_token_max_ttl, issued.token_type
                );
            }
        }
        IdentityCommand::Token(TokenCommand::List { identity_id }) => {
            let tokens = auth
                .list_identity_access_tokens(auth_pb::ListIdentityAccessTokensRequest {
                    identity_id,
                })
                .await?
                .into_inner()
                .tokens;
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.expires_at
                            .as_ref()
                            .map_or_else(|| "never".to_owned(), output::time),
                        format!(
                            "{}/{}",
                            t.use_count,
                            if t.use_limit == 0 {
                                "∞".to_owned()
                            } else {
                                t.use_limit.to_string()
                            }
                        ),
                        t.last_used_at
                            .as_ref()
                            .map_or_else(|| "-".to_owned(), output::time),
                        if t.revoked {
                            "revoked".to_owned()
                        } else {
                            "active".to_owned()
                        },
                    ]
                })
                .collect();
            table(
                &["ID", "NAME", "EXPIRES", "USES", "LAST USED", "STATUS"],
                &rows,
            );
        }
        IdentityCommand::Token(TokenCommand::Renew { access_token }) => {
            let access_token = access_token
                .or_else(|| ctx.token().ok().map(str::to_owned))
                .ok_or_else(|| {
                    CliError::Input(
                        "--access-token: give the token to renew, or set --token/LATCHKEY_TOKEN"
                            .to_owned(),
                    )
                })?;
            let renewed = auth
                .renew_access_token(auth_pb::RenewAccessTokenRequest {
                    access_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            // A JWT renews to a new token with a fresh expiry: the old one
            // lapses at its own.
            println!(
                "Renewed: expires in {} s (max TTL {} s). Use this token from now on:",
                renewed.expires_in, renewed.access_token_max_ttl
            );
            println!("Token: {}", renewed.access_token);
        }
        IdentityCommand::Token(TokenCommand::Revoke {
            access_token,
            token_id,
        }) => {
            if access_token.is_none() && token_id.is_none() {
                return Err(CliError::Input(
                    "give --access-token or --token-id".to_owned(),
                ));
            }
            auth.revoke_access_token(auth_pb::RevokeAccessTokenRequest {
                access_token: access_token.unwrap_or_default(),
                token_id: token_id.unwrap_or_default(),
                client_ip: String::new(),
            })
            .await?;
            println!("Access token revoked.");
        }
    }
    Ok(())
}

fn print_identities(identities: &[auth_pb::Identity]) {
    let rows: Vec<Vec<String>> = identities
        .iter()
        .map(|i| vec![i.id.clone(), i.name.clone(), i.org_role.clone()])
        .collect();
    table(&["ID", "NAME", "ORG ROLE"], &rows);
}

fn print_config(c: auth_pb::TokenAuthConfig) {
    let limit = if c.access_token_num_uses_limit == 0 {
        "unlimited".to_owned()
    } else {
        c.access_token_num_uses_limit.to_string()
    };
    table(
        &["IDENTITY", "TTL", "MAX TTL", "USES LIMIT", "TRUSTED IPS"],
        &[vec![
            c.identity_id,
            c.access_token_ttl.to_string(),
            c.access_token_max_ttl.to_string(),
            limit,
            c.access_token_trusted_ips.join(","),
        ]],
    );
}
