//! `latchkey.auth.v1` to and from the domain.

use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::{Sealed, WireKey, key_rotation_recommended};
use latchkey_domain::identity::{OrgRole, ProjectRole, TokenAuthChanges, TokenAuthConfig};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{
    AccessToken, AccessTokenId, DisplayName, Identity, IdentityId, Membership, NewServiceToken,
    Principal, Project, ProjectId, ServiceToken, ServiceTokenId, TokenName,
};
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, BearerToken, Grant};
use latchkey_domain::scope::{Action, PathGlob, Permissions, Scope, Scopes};

use super::timestamp;
use crate::auth::v1 as pb;

/// What an access token is called when it is created without a name.
pub const DEFAULT_ACCESS_TOKEN_NAME: &str = "Access token";

/// Requests whose only argument is one id.
macro_rules! id_request {
    ($($request:ident . $field:ident => $id:ident),* $(,)?) => {$(
        impl TryFrom<&pb::$request> for $id {
            type Error = InvalidInput;
            fn try_from(req: &pb::$request) -> Result<Self, InvalidInput> {
                $id::parse(&req.$field, stringify!($field))
            }
        }
    )*};
}

id_request! {
    GetProjectRequest.project_id => ProjectId,
    ListServiceTokensRequest.project_id => ProjectId,
    GetServiceTokenRequest.token_id => ServiceTokenId,
    DeleteServiceTokenRequest.token_id => ServiceTokenId,
    DeleteIdentityRequest.identity_id => IdentityId,
    GetTokenAuthRequest.identity_id => IdentityId,
    ListIdentityAccessTokensRequest.identity_id => IdentityId,
}

/// A new project: its name and whether it is end-to-end encrypted.
impl TryFrom<&pb::CreateProjectRequest> for (DisplayName, bool) {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateProjectRequest) -> Result<Self, InvalidInput> {
        Ok((DisplayName::parse(&req.name, "name")?, req.e2ee))
    }
}

/// A new environment: project, slug and name (blank: the slug).
impl TryFrom<&pb::CreateEnvironmentRequest> for (ProjectId, Environment, DisplayName) {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateEnvironmentRequest) -> Result<Self, InvalidInput> {
        let project_id = ProjectId::parse(&req.project_id, "project_id")?;
        let slug = Environment::parse(&req.slug).map_err(|e| e.in_field("slug"))?;
        let name = DisplayName::parse_or(&req.name, "name", slug.as_str())?;
        Ok((project_id, slug, name))
    }
}

impl TryFrom<&pb::SetProjectTrustedIpsRequest> for (ProjectId, TrustedIps) {
    type Error = InvalidInput;
    fn try_from(req: &pb::SetProjectTrustedIpsRequest) -> Result<Self, InvalidInput> {
        Ok((
            ProjectId::parse(&req.project_id, "project_id")?,
            TrustedIps::parse(&req.trusted_ips, "trusted_ips")?,
        ))
    }
}

impl TryFrom<&pb::CreateServiceTokenRequest> for NewServiceToken {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateServiceTokenRequest) -> Result<Self, InvalidInput> {
        Ok(NewServiceToken {
            project_id: ProjectId::parse(&req.project_id, "project_id")?,
            name: TokenName::parse(&req.name)?,
            scopes: scopes(&req.scopes)?,
            permissions: permissions(&req.permissions)?,
            expires_in_seconds: req.expires_in_seconds,
            trusted_ips: TrustedIps::parse(&req.trusted_ips, "trusted_ips")?,
        })
    }
}

impl TryFrom<&pb::SetServiceTokenActiveRequest> for (ServiceTokenId, bool) {
    type Error = InvalidInput;
    fn try_from(req: &pb::SetServiceTokenActiveRequest) -> Result<Self, InvalidInput> {
        Ok((
            ServiceTokenId::parse(&req.token_id, "token_id")?,
            req.active,
        ))
    }
}

impl TryFrom<&pb::CreateIdentityRequest> for (DisplayName, OrgRole) {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateIdentityRequest) -> Result<Self, InvalidInput> {
        Ok((
            DisplayName::parse(&req.name, "name")?,
            OrgRole::parse(&req.org_role)?,
        ))
    }
}

/// The Token Auth fields of an attach or update request.
macro_rules! token_auth_request {
    ($($request:ident),*) => {$(
        impl TryFrom<&pb::$request> for (IdentityId, TokenAuthChanges) {
            type Error = InvalidInput;
            fn try_from(req: &pb::$request) -> Result<Self, InvalidInput> {
                Ok((
                    IdentityId::parse(&req.identity_id, "identity_id")?,
                    TokenAuthChanges {
                        ttl: req.access_token_ttl,
                        max_ttl: req.access_token_max_ttl,
                        num_uses_limit: req.access_token_num_uses_limit,
                        trusted_ips: req.access_token_trusted_ips.clone(),
                    },
                ))
            }
        }
    )*};
}

token_auth_request!(AttachTokenAuthRequest, UpdateTokenAuthRequest);

impl TryFrom<&pb::CreateIdentityAccessTokenRequest> for (IdentityId, DisplayName) {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateIdentityAccessTokenRequest) -> Result<Self, InvalidInput> {
        Ok((
            IdentityId::parse(&req.identity_id, "identity_id")?,
            DisplayName::parse_or(&req.name, "name", DEFAULT_ACCESS_TOKEN_NAME)?,
        ))
    }
}

/// A membership to add: project, identity, role and the scopes narrowing
/// it (none: the whole project).
impl TryFrom<&pb::AddIdentityToProjectRequest>
    for (ProjectId, IdentityId, ProjectRole, Option<Scopes>)
{
    type Error = InvalidInput;
    fn try_from(req: &pb::AddIdentityToProjectRequest) -> Result<Self, InvalidInput> {
        Ok((
            ProjectId::parse(&req.project_id, "project_id")?,
            IdentityId::parse(&req.identity_id, "identity_id")?,
            ProjectRole::parse(&req.role)?,
            if req.scopes.is_empty() {
                None
            } else {
                Some(scopes(&req.scopes)?)
            },
        ))
    }
}

impl TryFrom<&pb::RemoveIdentityFromProjectRequest> for (ProjectId, IdentityId) {
    type Error = InvalidInput;
    fn try_from(req: &pb::RemoveIdentityFromProjectRequest) -> Result<Self, InvalidInput> {
        Ok((
            ProjectId::parse(&req.project_id, "project_id")?,
            IdentityId::parse(&req.identity_id, "identity_id")?,
        ))
    }
}

/// Which access token to revoke: the presented one, or another by id (org admins).
#[derive(Debug)]
pub enum RevokeTarget {
    /// The token in the request, revoking itself.
    Own(BearerToken),
    /// A token by id.
    ById(AccessTokenId),
}

impl TryFrom<&pb::RevokeAccessTokenRequest> for RevokeTarget {
    type Error = InvalidInput;
    fn try_from(req: &pb::RevokeAccessTokenRequest) -> Result<Self, InvalidInput> {
        match (req.access_token.as_str(), req.token_id.trim()) {
            ("", "") => Err(InvalidInput::new(
                "access_token",
                "set access_token (the token to revoke) or token_id (as an org admin)",
            )),
            (token, "") => Ok(Self::Own(BearerToken::new(token))),
            (_, id) => Ok(Self::ById(AccessTokenId::parse(id, "token_id")?)),
        }
    }
}

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
            raw: req.raw,
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
            raw: req.raw,
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
        let scopes = reply
            .scopes
            .iter()
            .map(|s| Scope::new(&s.environment, &s.secret_path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.in_field("scopes"))?;
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
            scopes: Scopes::new(scopes),
            encrypted_project_key: reply.encrypted_project_key.map(Into::into),
            project_key,
        })
    }
}

/// A scope list, each entry's fields named by index; at most the domain's limit.
pub fn scopes(list: &[pb::Scope]) -> Result<Scopes, InvalidInput> {
    // Before parsing any: an oversized list costs nothing.
    Scopes::check_count(list.len())?;
    let parsed = list
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let environment = Environment::parse(&s.environment)
                .map_err(|e| e.in_field(format!("scopes[{i}].environment")))?;
            let glob = PathGlob::parse(&s.secret_path)
                .map_err(|e| e.in_field(format!("scopes[{i}].secret_path")))?;
            Ok(Scope { environment, glob })
        })
        .collect::<Result<Vec<_>, InvalidInput>>()?;
    Scopes::limited(parsed)
}

/// Permissions from their enum values; at least one is required.
pub fn permissions(values: &[i32]) -> Result<Permissions, InvalidInput> {
    let mut permissions = Permissions::default();
    for (i, value) in values.iter().enumerate() {
        match pb::Permission::try_from(*value) {
            Ok(pb::Permission::Read) => permissions.read = true,
            Ok(pb::Permission::Write) => permissions.write = true,
            _ => {
                return Err(InvalidInput::new(
                    format!("permissions[{i}]"),
                    "must be PERMISSION_READ or PERMISSION_WRITE",
                ));
            }
        }
    }
    if !permissions.read && !permissions.write {
        return Err(InvalidInput::new(
            "permissions",
            "at least one of PERMISSION_READ and PERMISSION_WRITE is required",
        ));
    }
    Ok(permissions)
}

/// Scopes as sent on the wire.
#[must_use]
pub fn scopes_pb(scopes: &Scopes) -> Vec<pb::Scope> {
    scopes
        .as_slice()
        .iter()
        .map(|s| pb::Scope {
            environment: s.environment.as_str().to_owned(),
            secret_path: s.glob.as_str().to_owned(),
        })
        .collect()
}

/// Permissions as sent on the wire, read before write.
#[must_use]
pub fn permissions_pb(permissions: Permissions) -> Vec<i32> {
    let mut out = Vec::new();
    if permissions.read {
        out.push(pb::Permission::Read.into());
    }
    if permissions.write {
        out.push(pb::Permission::Write.into());
    }
    out
}

impl From<&Sealed> for pb::EncryptedProjectKey {
    fn from(sealed: &Sealed) -> Self {
        pb::EncryptedProjectKey {
            ciphertext: sealed.ciphertext.clone(),
            iv: sealed.iv.clone(),
            tag: sealed.tag.clone(),
        }
    }
}

impl From<pb::EncryptedProjectKey> for Sealed {
    fn from(key: pb::EncryptedProjectKey) -> Self {
        Sealed {
            ciphertext: key.ciphertext,
            iv: key.iv,
            tag: key.tag,
        }
    }
}

impl From<&Project> for pb::Project {
    fn from(project: &Project) -> Self {
        pb::Project {
            id: project.id.as_str().to_owned(),
            name: project.name.clone(),
            e2ee: project.e2ee,
            environments: project
                .environments
                .iter()
                .map(|(slug, name)| pb::Environment {
                    slug: slug.as_str().to_owned(),
                    name: name.clone(),
                })
                .collect(),
            trusted_ips: project.trusted_ips.to_strings(),
            key_encryption_count: project.encryption_count,
            key_rotation_recommended: key_rotation_recommended(project.encryption_count),
            created_at: Some(timestamp(project.created_at)),
        }
    }
}

impl From<&ServiceToken> for pb::ServiceToken {
    fn from(token: &ServiceToken) -> Self {
        pb::ServiceToken {
            id: token.id.as_str().to_owned(),
            project_id: token.project_id.as_str().to_owned(),
            name: token.name.clone(),
            scopes: scopes_pb(&token.scopes),
            permissions: permissions_pb(token.permissions),
            expires_at: token.expires_at.map(timestamp),
            trusted_ips: token.trusted_ips.to_strings(),
            active: token.active,
            use_count: token.use_count,
            last_used_at: token.last_used_at.map(timestamp),
            created_at: Some(timestamp(token.created_at)),
        }
    }
}

impl From<&Identity> for pb::Identity {
    fn from(identity: &Identity) -> Self {
        pb::Identity {
            id: identity.id.as_str().to_owned(),
            name: identity.name.clone(),
            org_role: identity.org_role.as_str().to_owned(),
            created_at: Some(timestamp(identity.created_at)),
        }
    }
}

impl From<(&IdentityId, &TokenAuthConfig)> for pb::TokenAuthResponse {
    fn from((identity_id, config): (&IdentityId, &TokenAuthConfig)) -> Self {
        pb::TokenAuthResponse {
            config: Some(pb::TokenAuthConfig {
                identity_id: identity_id.as_str().to_owned(),
                access_token_ttl: config.ttl_seconds,
                access_token_max_ttl: config.max_ttl_seconds,
                access_token_num_uses_limit: config.num_uses_limit,
                access_token_trusted_ips: config.trusted_ips.to_strings(),
            }),
        }
    }
}

impl From<&AccessToken> for pb::IdentityAccessToken {
    fn from(token: &AccessToken) -> Self {
        pb::IdentityAccessToken {
            id: token.id.as_str().to_owned(),
            identity_id: token.identity_id.as_str().to_owned(),
            name: token.name.clone(),
            created_at: Some(timestamp(token.created_at)),
            expires_at: token.expires_at.map(timestamp),
            use_count: token.use_count,
            use_limit: token.num_uses_limit,
            last_used_at: token.last_used_at.map(timestamp),
            revoked: token.revoked_at.is_some(),
        }
    }
}

impl From<&Membership> for pb::ProjectMembership {
    fn from(membership: &Membership) -> Self {
        pb::ProjectMembership {
            project_id: membership.project_id.as_str().to_owned(),
            identity_id: membership.identity_id.as_str().to_owned(),
            role: membership.role.as_str().to_owned(),
            scopes: membership
                .scopes
                .as_ref()
                .map(scopes_pb)
                .unwrap_or_default(),
        }
    }
}
