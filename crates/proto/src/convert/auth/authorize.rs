//! `Authorize`, both ways: the auth service reads requests and writes
//! grants, the secrets service the reverse.

use latchkey_domain::InvalidInput;
use latchkey_domain::access::Form;
use latchkey_domain::audit::reach::{AuditReach, AuditReader, ProjectReach};
use latchkey_domain::crypto::WireKey;
use latchkey_domain::model::{Principal, ProjectId};
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, BearerToken, Grant, ServiceTokenDetails};
use latchkey_domain::scope::{Action, Scope, Scopes};

use super::replies::scopes_pb;
use crate::auth::v1 as pb;

impl TryFrom<pb::AuthorizeRequest> for AuthorizationRequest {
    type Error = InvalidInput;
    fn try_from(req: pb::AuthorizeRequest) -> Result<Self, InvalidInput> {
        let action = match pb::Action::try_from(req.action) {
            Ok(pb::Action::Read) => Action::Read,
            Ok(pb::Action::Write) => Action::Write,
            _ => {
                return Err(InvalidInput::new(
                    "action",
                    "must be ACTION_READ or ACTION_WRITE",
                ));
            }
        };
        let client_ip = match req.client_ip.as_str() {
            "" => None,
            raw => Some(raw.parse().map_err(|_| {
                InvalidInput::new(
                    "client_ip",
                    format!(
                        "{} is not an IP address",
                        latchkey_domain::error::excerpt(raw)
                    ),
                )
            })?),
        };
        let project_id = match req.project_id.trim() {
            "" => None,
            id => Some(ProjectId::parse(id, "project_id")?),
        };
        Ok(AuthorizationRequest {
            token: BearerToken::new(&req.token),
            client_ip,
            project_id,
            environment: Environment::parse(&req.environment)?,
            path: SecretPath::parse_or_root(&req.secret_path)?,
            action,
            form: if req.raw { Form::Raw } else { Form::Sealed },
            recursive: req.recursive,
        })
    }
}

impl From<&AuthorizationRequest> for pb::AuthorizeRequest {
    fn from(req: &AuthorizationRequest) -> Self {
        pb::AuthorizeRequest {
            token: req.token.expose().to_owned(),
            client_ip: req.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            project_id: req
                .project_id
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            environment: req.environment.as_str().to_owned(),
            secret_path: req.path.as_str().to_owned(),
            action: match req.action {
                Action::Read => pb::Action::Read.into(),
                Action::Write => pb::Action::Write.into(),
            },
            raw: req.form == Form::Raw,
            recursive: req.recursive,
        }
    }
}

impl From<&Grant> for pb::AuthorizeResponse {
    fn from(grant: &Grant) -> Self {
        pb::AuthorizeResponse {
            principal: grant.principal.to_string(),
            project_id: grant.project_id.as_str().to_owned(),
            scopes: scopes_pb(&grant.scopes),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(Into::into),
            project_key: grant
                .project_key
                .as_ref()
                .map(|k| k.expose().to_owned())
                .unwrap_or_default(),
        }
    }
}

/// A grant as the auth service sent it; the error names the malformed field.
impl TryFrom<pb::AuthorizeResponse> for Grant {
    type Error = InvalidInput;
    fn try_from(reply: pb::AuthorizeResponse) -> Result<Self, InvalidInput> {
        let scopes = grant_scopes(&reply.scopes)?;
        let project_key = match reply.project_key.as_str() {
            "" => None,
            text => Some(
                WireKey::parse(text)
                    .map_err(|_| InvalidInput::new("project_key", "is not a project key"))?,
            ),
        };
        Ok(Grant {
            principal: Principal::parse(&reply.principal, "principal")?,
            project_id: ProjectId::parse(&reply.project_id, "project_id")?,
            scopes,
            encrypted_project_key: reply.encrypted_project_key.map(Into::into),
            project_key,
        })
    }
}

/// The scopes of a grant the auth service sent, which it already validated
/// (no count limit here); the error names `scopes`.
pub fn grant_scopes(scopes: &[pb::Scope]) -> Result<Scopes, InvalidInput> {
    scopes
        .iter()
        .map(|s| Scope::new(&s.environment, &s.secret_path))
        .collect::<Result<Vec<_>, _>>()
        .map(Scopes::new)
        .map_err(|e| e.in_field("scopes"))
}

/// `GetAuditReach`'s answer for `reader`.
#[must_use]
pub fn audit_reach_pb(reader: &AuditReader) -> pb::GetAuditReachResponse {
    let principal = reader.principal.to_string();
    match &reader.reach {
        AuditReach::All => pb::GetAuditReachResponse {
            all: true,
            projects: Vec::new(),
            principal,
        },
        AuditReach::Projects(projects) => pb::GetAuditReachResponse {
            all: false,
            principal,
            projects: projects
                .iter()
                .map(|p| pb::ProjectAuditReach {
                    project_id: p.project_id.clone(),
                    scoped: p.scopes.is_some(),
                    scopes: p.scopes.as_ref().map(scopes_pb).unwrap_or_default(),
                })
                .collect(),
        },
    }
}

/// The reader `GetAuditReach` answered; the error names the field.
pub fn audit_reach(reply: pb::GetAuditReachResponse) -> Result<AuditReader, InvalidInput> {
    let principal = Principal::parse(&reply.principal, "principal")?;
    let reach = if reply.all {
        AuditReach::All
    } else {
        reply
            .projects
            .into_iter()
            .map(|p| {
                Ok(ProjectReach {
                    scopes: p.scoped.then(|| grant_scopes(&p.scopes)).transpose()?,
                    project_id: p.project_id,
                })
            })
            .collect::<Result<Vec<_>, InvalidInput>>()
            .map(AuditReach::Projects)?
    };
    Ok(AuditReader { principal, reach })
}

/// What `LookupToken` says of a service token, for the secrets service
/// asking on a client's behalf; `None` for any other kind of token.
pub fn service_token_details(
    reply: pb::LookupTokenResponse,
) -> Result<Option<ServiceTokenDetails>, InvalidInput> {
    if reply.token_type != i32::from(pb::TokenType::Service) {
        return Ok(None);
    }
    let time =
        |t: Option<prost_types::Timestamp>, field: &str| crate::convert::time_of(t.as_ref(), field);
    let has = |p: pb::Permission| reply.permissions.contains(&i32::from(p));
    Ok(Some(ServiceTokenDetails {
        read: has(pb::Permission::Read),
        write: has(pb::Permission::Write),
        expires_at: time(reply.expires_at, "expires_at")?,
        created_at: time(reply.created_at, "created_at")?
            .ok_or_else(|| InvalidInput::new("created_at", "is missing"))?,
        project_id: ProjectId::parse(&reply.project_id, "project_id")?,
        scopes: reply
            .scopes
            .into_iter()
            .map(|s| (s.environment, s.secret_path))
            .collect(),
        encrypted_project_key: reply
            .encrypted_project_key
            .map(Into::into)
            .ok_or_else(|| InvalidInput::new("encrypted_project_key", "is missing"))?,
        id: reply.token_id,
        name: reply.name,
    }))
}
