//! `latchkey audit ...`: the audit trail of both services, merged by time:
//! list it, follow it, verify its chains, hash a token to search by.

use clap::{Args, Subcommand, ValueEnum};
use latchkey_domain::ports::{Clock as _, SystemClock};
use latchkey_proto::audit::v1 as pb;
use latchkey_proto::convert::audit::event_json;
use serde::Serialize;
use tokio_stream::StreamExt as _;

use crate::context::Context;
use crate::error::CliError;
use crate::output::{table, time};

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List events of both services, newest first (org or project admin).
    ///
    /// Example: latchkey audit list --since 24h --env prod --secret DB_PASSWORD
    List {
        #[command(flatten)]
        filter: Filter,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// table or json.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Print events of both services as they are recorded, until interrupted.
    ///
    /// Example: latchkey audit tail --outcome denied --format json
    Tail {
        #[command(flatten)]
        filter: Filter,
        /// table (one line per event) or json (one object per line).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Check every chain of both services; exit 1 when one is broken (org admin).
    ///
    /// Example: latchkey audit verify
    Verify,
    /// The HMAC a token is recorded and searched by (--token-hmac).
    ///
    /// Example: latchkey audit hash "st.1f2e....."
    Hash {
        /// The token; a service token's key part is not hashed and may be left off.
        // Not `token`: that id is the global --token the call is made with.
        #[arg(value_name = "TOKEN")]
        hashed: String,
    },
}

/// `--format` of the audit commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns, for people.
    Table,
    /// JSON, for scripts and SIEMs.
    Json,
}

/// What to keep; each flag narrows.
#[derive(Debug, Clone, Args)]
pub(crate) struct Filter {
    /// Only events this recent: 90s, 15m, 24h, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Only events of this type (secret.read, service_token.create, ...).
    #[arg(long = "type")]
    event_type: Option<String>,
    /// allowed, denied or failed.
    #[arg(long)]
    outcome: Option<String>,
    /// identity:<id> or service-token:<id>.
    #[arg(long)]
    principal: Option<String>,
    /// Project id.
    #[arg(long = "projectId")]
    project_id: Option<String>,
    /// Environment slug.
    #[arg(long)]
    env: Option<String>,
    /// Folder path glob, e.g. /backend/**.
    #[arg(long)]
    path: Option<String>,
    /// Events naming this secret.
    #[arg(long)]
    secret: Option<String>,
    /// Calls made with the token of this HMAC (latchkey audit hash).
    #[arg(long = "token-hmac")]
    token_hmac: Option<String>,
}

impl Filter {
    fn request(&self, now: chrono::DateTime<chrono::Utc>) -> Result<pb::AuditFilter, CliError> {
        let from = self
            .since
            .as_deref()
            .map(|s| parse_age(s).map(|age| now - age))
            .transpose()?;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Ok(pb::AuditFilter {
            from: from.map(latchkey_proto::convert::timestamp),
            to: None,
            event_type: text(&self.event_type),
            outcome: text(&self.outcome),
            principal: text(&self.principal),
            project_id: text(&self.project_id),
            environment: text(&self.env),
            path_glob: text(&self.path),
            secret_name: text(&self.secret),
            token_hmac: text(&self.token_hmac),
        })
    }
}

/// `90s`, `15m`, `24h`, `7d` as a duration.
fn parse_age(text: &str) -> Result<chrono::Duration, CliError> {
    let bad = || {
        CliError::Input(format!(
            "--since {text:?}: give a number and a unit, e.g. 90s, 15m, 24h, 7d"
        ))
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let seconds = match unit {
        's' => n,
        'm' => n.checked_mul(60).ok_or_else(bad)?,
        'h' => n.checked_mul(3600).ok_or_else(bad)?,
        'd' => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    chrono::Duration::try_seconds(seconds)
        .filter(|d| *d >= chrono::Duration::zero())
        .ok_or_else(bad)
}

/// Runs an audit command; returns the exit code.
pub(crate) async fn run(ctx: &Context, cmd: AuditCommand) -> Result<u8, CliError> {
    match cmd {
        AuditCommand::List {
            filter,
            limit,
            format,
        } => list(ctx, &filter, limit, format).await?,
        AuditCommand::Tail { filter, format } => tail(ctx, &filter, format).await?,
        AuditCommand::Verify => return verify(ctx).await,
        AuditCommand::Hash { hashed } => {
            let reply = ctx
                .audit(&ctx.auth_addr)
                .await?
                .hash_token(pb::HashTokenRequest { token: hashed })
                .await?
                .into_inner();
            println!("{}", reply.token_hmac);
        }
    }
    Ok(0)
}

/// The two services, by name and address.
fn services(ctx: &Context) -> [(&'static str, &str); 2] {
    [("auth", &ctx.auth_addr), ("secrets", &ctx.secrets_addr)]
}

async fn list(ctx: &Context, filter: &Filter, limit: u32, format: Format) -> Result<(), CliError> {
    let request = filter.request(SystemClock.now())?;
    let mut events = Vec::new();
    for (service, addr) in services(ctx) {
        let reply = ctx
            .audit(addr)
            .await?
            .list_audit_events(pb::ListAuditEventsRequest {
                filter: Some(request.clone()),
                page_size: limit.clamp(1, 1000),
                page_token: String::new(),
            })
            .await?
            .into_inner();
        events.extend(reply.events.into_iter().map(|e| (service, e)));
    }
    events.sort_by_key(|(_, e)| std::cmp::Reverse(when(e)));
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    match format {
        Format::Table => table(
            &HEADER,
            &events.iter().map(|(s, e)| row(s, e)).collect::<Vec<_>>(),
        ),
        Format::Json => {
            let rows: Vec<_> = events.iter().map(|(s, e)| event_json(s, e)).collect();
            println!("{}", to_json(&rows, true)?);
        }
    }
    Ok(())
}

async fn tail(ctx: &Context, filter: &Filter, format: Format) -> Result<(), CliError> {
    let mut request = filter.request(SystemClock.now())?;
    // From now on unless --since says otherwise.
    if request.from.is_none() {
        request.from = Some(latchkey_proto::convert::timestamp(SystemClock.now()));
    }
    let mut streams = Vec::new();
    for (service, addr) in services(ctx) {
        let stream = ctx
            .audit(addr)
            .await?
            .stream_audit_events(pb::StreamAuditEventsRequest {
                filter: Some(request.clone()),
                cursor: String::new(),
            })
            .await?
            .into_inner()
            .map(move |batch| (service, batch));
        streams.push(stream);
    }
    let mut merged = tokio_stream::StreamExt::merge(
        streams.remove(0),
        streams
            .pop()
            .ok_or_else(|| CliError::Input("no secrets service".to_owned()))?,
    );
    if format == Format::Table {
        table(&HEADER, &[]);
    }
    while let Some((service, batch)) = merged.next().await {
        for event in batch?.events {
            match format {
                Format::Table => println!("{}", row(service, &event).join("  ")),
                Format::Json => println!("{}", event_json(service, &event)),
            }
        }
    }
    Ok(())
}

async fn verify(ctx: &Context) -> Result<u8, CliError> {
    let mut rows = Vec::new();
    let mut intact = true;
    for (service, addr) in services(ctx) {
        let reply = ctx
            .audit(addr)
            .await?
            .verify_audit_log(pb::VerifyAuditLogRequest {})
            .await?
            .into_inner();
        intact &= reply.intact;
        rows.extend(reply.chains.into_iter().map(|c| {
            vec![
                service.to_owned(),
                c.replica,
                c.events.to_string(),
                format!("{}..{}", c.first_sequence, c.last_sequence),
                if c.intact {
                    "intact".to_owned()
                } else {
                    format!("BROKEN: {}", c.detail)
                },
            ]
        }));
    }
    table(
        &["SERVICE", "REPLICA", "EVENTS", "SEQUENCES", "CHAIN"],
        &rows,
    );
    if intact {
        println!("Every chain is intact.");
        Ok(0)
    } else {
        println!(
            "A chain is broken: the event named was changed, removed or reordered after it was recorded."
        );
        Ok(1)
    }
}

const HEADER: [&str; 9] = [
    "TIME",
    "SERVICE",
    "TYPE",
    "OUTCOME",
    "PRINCIPAL",
    "PROJECT",
    "WHERE",
    "SECRETS",
    "CLIENT",
];

fn when(e: &pb::AuditEvent) -> (i64, i32) {
    e.time.as_ref().map_or((0, 0), |t| (t.seconds, t.nanos))
}

fn row(service: &str, e: &pb::AuditEvent) -> Vec<String> {
    let outcome = if e.reason.is_empty() {
        e.outcome.clone()
    } else {
        format!("{} {}", e.outcome, e.reason)
    };
    let place = if e.environment.is_empty() {
        String::new()
    } else {
        format!("{}:{}", e.environment, e.secret_path)
    };
    let secrets = e
        .secrets
        .iter()
        .map(|s| match s.version {
            Some(v) => format!("{}@{v}", s.name),
            None => s.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let client = if e.count > 1 {
        format!("{} (x{})", e.client_ip, e.count)
    } else {
        e.client_ip.clone()
    };
    vec![
        e.time.as_ref().map(time).unwrap_or_default(),
        service.to_owned(),
        e.event_type.clone(),
        outcome,
        e.principal.clone(),
        e.project_id.clone(),
        place,
        secrets,
        client,
    ]
}

fn to_json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Result<String, CliError> {
    let encoded = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    encoded.map_err(|e| CliError::Input(format!("cannot encode JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_each_unit_and_nonsense_is_refused() {
        assert_eq!(parse_age("90s").unwrap(), chrono::Duration::seconds(90));
        assert_eq!(parse_age("15m").unwrap(), chrono::Duration::minutes(15));
        assert_eq!(parse_age("24h").unwrap(), chrono::Duration::hours(24));
        assert_eq!(parse_age("7d").unwrap(), chrono::Duration::days(7));
        for bad in ["", "h", "-1h", "5y", "99999999999999999d", "5µ"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
