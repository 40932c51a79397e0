//! `latchkey service-token ...`, with the Infisical CLI's flags and defaults.

use clap::{Subcommand, ValueEnum};
use latchkey_proto::auth::v1 as auth_pb;
use serde::Serialize;

use crate::context::Context;
use crate::error::CliError;
use crate::flags::{check_trusted_ips, require_environment, scopes_from_flags};
use crate::output::describe_scopes;
use crate::output::{self, table};

/// `--access-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AccessLevel {
    /// List and get secrets.
    Read,
    /// Set and delete secrets (not read).
    Write,
}

/// `--output` of `list` and `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TokenOutput {
    /// Aligned columns.
    Table,
    /// JSON, one object for `get`, an array for `list`.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceTokenCommand {
    /// Create a service token, printed once.
    ///
    /// Example: latchkey service-token create --scope=dev:/backend/** --access-level=read --access-level=write --expiry-seconds 3600
    Create {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// Scope as <environment>:<folder path glob>; repeatable.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// read or write; repeatable (write alone cannot read).
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
    /// List a project's service tokens (never their secrets).
    ///
    /// Example: latchkey service-token list --projectId 0b6f...
    List {
        /// Project id [default: the linked folder's].
        #[arg(long = "projectId")]
        project_id: Option<String>,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: TokenOutput,
    },
    /// Show one service token.
    ///
    /// Example: latchkey service-token get 6f1c... --output json
    Get {
        /// Token id (the UUID after `st.`).
        token_id: String,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: TokenOutput,
    },
    /// Delete a service token; it answers TOKEN_REVOKED from then on.
    ///
    /// Example: latchkey service-token delete 6f1c...
    Delete {
        /// Token id.
        token_id: String,
    },
    /// Reactivate a deactivated service token.
    ///
    /// Example: latchkey service-token activate 6f1c...
    Activate {
        /// Token id.
        token_id: String,
    },
    /// Deactivate a service token; it answers TOKEN_INACTIVE until reactivated.
    ///
    /// Example: latchkey service-token deactivate 6f1c...
    Deactivate {
        /// Token id.
        token_id: String,
    },
}

/// A token's metadata as `--output json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    id: String,
    project_id: String,
    name: String,
    scopes: Vec<String>,
    permissions: Vec<&'static str>,
    created_at: Option<String>,
    expires_at: Option<String>,
    expires_in_seconds: i64,
    trusted_ips: Vec<String>,
    active: bool,
    use_count: u64,
    last_used_at: Option<String>,
}

impl From<&auth_pb::ServiceToken> for TokenView {
    fn from(t: &auth_pb::ServiceToken) -> Self {
        let seconds = |ts: &Option<prost_types::Timestamp>| ts.as_ref().map(|ts| ts.seconds);
        TokenView {
            id: t.id.clone(),
            project_id: t.project_id.clone(),
            name: t.name.clone(),
            scopes: t
                .scopes
                .iter()
                .map(|s| format!("{}:{}", s.environment, s.secret_path))
                .collect(),
            permissions: permissions(t),
            created_at: t.created_at.as_ref().map(output::time),
            expires_at: t.expires_at.as_ref().map(output::time),
            expires_in_seconds: match (seconds(&t.created_at), seconds(&t.expires_at)) {
                (Some(created), Some(expires)) => expires - created,
                _ => 0,
            },
            trusted_ips: t.trusted_ips.clone(),
            active: t.active,
            use_count: t.use_count,
            last_used_at: t.last_used_at.as_ref().map(output::time),
        }
    }
}

/// Runs a service token command.
pub(crate) async fn run(ctx: &Context, cmd: ServiceTokenCommand) -> Result<(), CliError> {
    match cmd {
        ServiceTokenCommand::Create {
            project_id,
            scopes,
            access_levels,
            name,
            expiry_seconds,
            trusted_ips,
            token_only,
        } => {
            let project_id = ctx.project_id(project_id)?;
            let scopes = scopes_from_flags(&scopes)?;
            check_trusted_ips(&trusted_ips)?;
            // Unknown environments are caught here, before the token is made.
            let project = ctx.project(project_id.clone()).await?;
            for scope in &scopes {
                require_environment(&project, &scope.environment, "--scope")?;
            }
            let mut permissions: Vec<i32> = access_levels
                .iter()
                .map(|level| match level {
                    AccessLevel::Read => auth_pb::Permission::Read.into(),
                    AccessLevel::Write => auth_pb::Permission::Write.into(),
                })
                .collect();
            permissions.sort_unstable();
            permissions.dedup();
            let reply = ctx
                .auth()
                .await?
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
                let meta = reply.token.unwrap_or_default();
                println!("Service token created. Copy and store it now: it is shown only once.");
                println!("Token:   {}", reply.service_token);
                println!("Id:      {}", meta.id);
                println!("Scopes:  {}", describe_scopes(&meta.scopes));
                println!(
                    "Expires: {}",
                    meta.expires_at
                        .as_ref()
                        .map(output::time)
                        .unwrap_or_else(|| "never".to_owned())
                );
            }
        }
        ServiceTokenCommand::List { project_id, output } => {
            let tokens = ctx
                .auth()
                .await?
                .list_service_tokens(auth_pb::ListServiceTokensRequest {
                    project_id: ctx.project_id(project_id)?,
                })
                .await?
                .into_inner()
                .tokens;
            print_tokens(&tokens, output)?;
        }
        ServiceTokenCommand::Get { token_id, output } => {
            let token = ctx
                .auth()
                .await?
                .get_service_token(auth_pb::GetServiceTokenRequest { token_id })
                .await?
                .into_inner()
                .token
                .unwrap_or_default();
            print_tokens(std::slice::from_ref(&token), output)?;
        }
        ServiceTokenCommand::Delete { token_id } => {
            ctx.auth()
                .await?
                .delete_service_token(auth_pb::DeleteServiceTokenRequest {
                    token_id: token_id.clone(),
                })
                .await?;
            println!("Service token {token_id} deleted.");
        }
        ServiceTokenCommand::Activate { token_id } => set_active(ctx, token_id, true).await?,
        ServiceTokenCommand::Deactivate { token_id } => set_active(ctx, token_id, false).await?,
    }
    Ok(())
}

async fn set_active(ctx: &Context, token_id: String, active: bool) -> Result<(), CliError> {
    let token = ctx
        .auth()
        .await?
        .set_service_token_active(auth_pb::SetServiceTokenActiveRequest { token_id, active })
        .await?
        .into_inner()
        .token
        .unwrap_or_default();
    print_tokens(std::slice::from_ref(&token), TokenOutput::Table)
}

fn print_tokens(tokens: &[auth_pb::ServiceToken], output: TokenOutput) -> Result<(), CliError> {
    let views: Vec<TokenView> = tokens.iter().map(TokenView::from).collect();
    match output {
        TokenOutput::Json => {
            let text = if let [one] = views.as_slice() {
                serde_json::to_string_pretty(one)
            } else {
                serde_json::to_string_pretty(&views)
            };
            println!(
                "{}",
                text.map_err(|e| CliError::Input(format!("cannot encode JSON: {e}")))?
            );
        }
        TokenOutput::Table => {
            let rows: Vec<Vec<String>> = views
                .into_iter()
                .map(|v| {
                    vec![
                        v.id,
                        v.name,
                        v.scopes.join(","),
                        v.permissions.join(","),
                        v.expires_at.unwrap_or_else(|| "never".to_owned()),
                        if v.active { "active" } else { "inactive" }.to_owned(),
                        v.use_count.to_string(),
                    ]
                })
                .collect();
            table(
                &[
                    "ID", "NAME", "SCOPES", "ACCESS", "EXPIRES", "STATUS", "USES",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

fn permissions(token: &auth_pb::ServiceToken) -> Vec<&'static str> {
    token
        .permissions
        .iter()
        .filter_map(|p| match auth_pb::Permission::try_from(*p) {
            Ok(auth_pb::Permission::Read) => Some("read"),
            Ok(auth_pb::Permission::Write) => Some("write"),
            _ => None,
        })
        .collect()
}
