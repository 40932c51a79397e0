//! Audit events on the wire, and as the JSON the CLI prints and the
//! `LATCHKEY_AUDIT_FILE` lines hold (one shape for both).

use latchkey_domain::audit::chain::Chained;
use serde::Serialize;

use super::timestamp;
use crate::audit::v1 as pb;

/// `link`, stored as row `id`, as the API answers it.
#[must_use]
pub fn event_pb(id: i64, link: &Chained) -> pb::AuditEvent {
    let e = &link.event;
    pb::AuditEvent {
        id,
        replica: link.replica.clone(),
        sequence: link.sequence,
        time: Some(timestamp(e.time)),
        event_type: e.event_type.clone(),
        outcome: e.outcome.as_str().to_owned(),
        reason: e.reason.clone(),
        principal: e.principal.clone(),
        token_hmac: e.token_hmac.clone(),
        project_id: e.project_id.clone(),
        environment: e.environment.clone(),
        secret_path: e.path.clone(),
        secrets: e
            .secrets
            .iter()
            .map(|s| pb::SecretRef {
                name: s.name.clone(),
                version: s.version,
            })
            .collect(),
        target: e.target.clone(),
        client_ip: e.client_ip.clone(),
        forwarded_for: e.forwarded_for.clone(),
        user_agent: e.user_agent.clone(),
        transport: e.transport.as_str().to_owned(),
        method: e.method.clone(),
        trace_id: e.trace_id.clone(),
        count: e.count,
        mac: hex::encode(link.mac),
    }
}

/// An event as JSON: the wire's fields in snake case, the time as RFC 3339
/// with microseconds, and the service that recorded it; `id` only when the
/// event has one (the API's, not a file line's).
#[derive(Serialize)]
struct Json<'a> {
    service: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    id: i64,
    replica: &'a str,
    sequence: u64,
    time: String,
    event_type: &'a str,
    outcome: &'a str,
    reason: &'a str,
    principal: &'a str,
    token_hmac: &'a str,
    project_id: &'a str,
    environment: &'a str,
    secret_path: &'a str,
    secrets: Vec<JsonSecret<'a>>,
    target: &'a str,
    client_ip: &'a str,
    forwarded_for: &'a [String],
    user_agent: &'a str,
    transport: &'a str,
    method: &'a str,
    trace_id: &'a str,
    count: u64,
    mac: &'a str,
}

#[derive(Serialize)]
struct JsonSecret<'a> {
    name: &'a str,
    version: Option<u64>,
}

fn is_zero(id: &i64) -> bool {
    *id == 0
}

/// `event`, recorded by `service`, as a JSON value.
#[must_use]
pub fn event_json(service: &str, event: &pb::AuditEvent) -> serde_json::Value {
    let time = event
        .time
        .as_ref()
        .and_then(|t| super::time_of(Some(t), "time").ok().flatten())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    let json = Json {
        service,
        id: event.id,
        replica: &event.replica,
        sequence: event.sequence,
        time,
        event_type: &event.event_type,
        outcome: &event.outcome,
        reason: &event.reason,
        principal: &event.principal,
        token_hmac: &event.token_hmac,
        project_id: &event.project_id,
        environment: &event.environment,
        secret_path: &event.secret_path,
        secrets: event
            .secrets
            .iter()
            .map(|s| JsonSecret {
                name: &s.name,
                version: s.version,
            })
            .collect(),
        target: &event.target,
        client_ip: &event.client_ip,
        forwarded_for: &event.forwarded_for,
        user_agent: &event.user_agent,
        transport: &event.transport,
        method: &event.method,
        trace_id: &event.trace_id,
        count: event.count,
        mac: &event.mac,
    };
    // Strings and numbers only: encoding cannot fail.
    serde_json::to_value(json).unwrap_or_default()
}
