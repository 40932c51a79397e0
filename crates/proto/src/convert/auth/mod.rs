//! `latchkey.auth.v1` to and from the domain.

use latchkey_domain::InvalidInput;
use latchkey_domain::identity::{
    ClientSecretTerms, KubernetesAuthChanges, OrgRole, ProjectRole, TokenAuthChanges,
    UniversalAuthChanges,
};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{
    AccessTokenId, DisplayName, IdentityId, NewServiceToken, ProjectId, ServiceTokenId, TokenName,
};
use latchkey_domain::path::Environment;
use latchkey_domain::ports::BearerToken;
use latchkey_domain::scope::{PathGlob, Permissions, Scope, Scopes};

use crate::auth::v1 as pb;

mod authorize;
mod replies;

pub use authorize::{audit_reach, audit_reach_pb, grant_scopes, service_token_details};
pub use replies::{permissions_pb, scopes_pb};

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
    GetUniversalAuthRequest.identity_id => IdentityId,
    GetKubernetesAuthRequest.identity_id => IdentityId,
    RevokeKubernetesAuthRequest.identity_id => IdentityId,
    RevokeUniversalAuthRequest.identity_id => IdentityId,
    ListUniversalAuthClientSecretsRequest.identity_id => IdentityId,
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

/// The Universal Auth fields of an attach or update request.
macro_rules! universal_auth_request {
    ($($request:ident),*) => {$(
        impl TryFrom<&pb::$request> for (IdentityId, UniversalAuthChanges) {
            type Error = InvalidInput;
            fn try_from(req: &pb::$request) -> Result<Self, InvalidInput> {
                Ok((
                    IdentityId::parse(&req.identity_id, "identity_id")?,
                    UniversalAuthChanges {
                        access: TokenAuthChanges {
                            ttl: req.access_token_ttl,
                            max_ttl: req.access_token_max_ttl,
                            num_uses_limit: req.access_token_num_uses_limit,
                            trusted_ips: req.access_token_trusted_ips.clone(),
                        },
                        client_secret_trusted_ips: req.client_secret_trusted_ips.clone(),
                    },
                ))
            }
        }
    )*};
}

universal_auth_request!(AttachUniversalAuthRequest, UpdateUniversalAuthRequest);

/// The Kubernetes Auth fields of an attach or update request.
macro_rules! kubernetes_auth_request {
    ($($request:ident),*) => {$(
        impl TryFrom<&pb::$request> for (IdentityId, KubernetesAuthChanges) {
            type Error = InvalidInput;
            fn try_from(req: &pb::$request) -> Result<Self, InvalidInput> {
                Ok((
                    IdentityId::parse(&req.identity_id, "identity_id")?,
                    KubernetesAuthChanges {
                        issuer: req.issuer.clone(),
                        keys: req.keys.clone(),
                        allowed_audiences: req.allowed_audiences.clone(),
                        allowed_namespaces: req.allowed_namespaces.clone(),
                        allowed_names: req.allowed_names.clone(),
                        access: TokenAuthChanges {
                            ttl: req.access_token_ttl,
                            max_ttl: req.access_token_max_ttl,
                            num_uses_limit: req.access_token_num_uses_limit,
                            trusted_ips: req.access_token_trusted_ips.clone(),
                        },
                    },
                ))
            }
        }
    )*};
}

kubernetes_auth_request!(AttachKubernetesAuthRequest, UpdateKubernetesAuthRequest);

impl TryFrom<&pb::CreateUniversalAuthClientSecretRequest> for (IdentityId, ClientSecretTerms) {
    type Error = InvalidInput;
    fn try_from(req: &pb::CreateUniversalAuthClientSecretRequest) -> Result<Self, InvalidInput> {
        Ok((
            IdentityId::parse(&req.identity_id, "identity_id")?,
            ClientSecretTerms::parse(&req.description, req.ttl, req.num_uses_limit)?,
        ))
    }
}

impl TryFrom<&pb::RevokeUniversalAuthClientSecretRequest> for (IdentityId, String) {
    type Error = InvalidInput;
    fn try_from(req: &pb::RevokeUniversalAuthClientSecretRequest) -> Result<Self, InvalidInput> {
        let secret_id = req.client_secret_id.trim();
        if secret_id.is_empty() {
            return Err(InvalidInput::new("client_secret_id", "is required"));
        }
        Ok((
            IdentityId::parse(&req.identity_id, "identity_id")?,
            secret_id.to_owned(),
        ))
    }
}

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
    permissions.require_any()
}
