//! The tonic `AuthService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use latchkey_domain::crypto::{Sealed, key_rotation_recommended};
use latchkey_domain::identity::{OrgRole, ProjectRole};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{Principal, TokenName};
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, BearerToken};
use latchkey_domain::scope::{Action, Permissions, Scope, Scopes};
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_server::AuthService;
use latchkey_service_kit::config::INTERNAL_KEY_HEADER;
use latchkey_service_kit::request::{bearer_token, client_ip};
use latchkey_store::auth::{
    IdentityRecord, IdentityTokenRecord, MembershipRecord, ProjectRecord, ServiceTokenRecord,
};
use tonic::{Request, Response, Status};

use latchkey_service_kit::telemetry;

use crate::app::{AuthApp, Authenticated, Caller, ConfigChanges, NewServiceToken};
use crate::error::AuthError;

/// Which callers a listener lets call `Authorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeGate {
    /// Any caller with the internal key (one port serves everything).
    InternalKey,
    /// Nobody: `Authorize` is served on the internal port only.
    Elsewhere,
    /// Callers with the internal key and a client certificate the TLS
    /// layer verified (mTLS on the internal port).
    ClientCertificate,
}

/// The gRPC face of [`AuthApp`].
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    app: Arc<AuthApp>,
    trusted_proxies: TrustedIps,
    gate: AuthorizeGate,
}

impl AuthGrpc {
    /// Serves `app`, honouring `x-forwarded-for` only from `trusted_proxies`,
    /// with `Authorize` open to internal-key holders.
    #[must_use]
    pub fn new(app: Arc<AuthApp>, trusted_proxies: TrustedIps) -> Self {
        Self {
            app,
            trusted_proxies,
            gate: AuthorizeGate::InternalKey,
        }
    }

    /// Who may call `Authorize` on this listener.
    #[must_use]
    pub fn with_gate(mut self, gate: AuthorizeGate) -> Self {
        self.gate = gate;
        self
    }

    /// Authenticates an admin call: first, before its fields are parsed.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, AuthError> {
        self.app.caller(&bearer(request)?, self.ip(request)).await
    }

    fn ip<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        client_ip(
            request.remote_addr().map(|a| a.ip()),
            request.metadata(),
            &self.trusted_proxies,
        )
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Reply<pb::CreateProjectResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let project = self
            .app
            .create_project(&caller, &req.name, req.e2ee)
            .await?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(project_pb(&project)),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Reply<pb::GetProjectResponse> {
        let caller = self.caller(&request).await?;
        let id = required("project_id", &request.get_ref().project_id)?;
        let project = self.app.project(&caller, id).await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project_pb(&project)),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let caller = self.caller(&request).await?;
        let projects = self.app.projects(&caller).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.iter().map(project_pb).collect(),
        }))
    }

    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> Reply<pb::CreateEnvironmentResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("project_id", &req.project_id)?;
        let slug =
            Environment::parse(&req.slug).map_err(|e| AuthError::from(e.in_field("slug")))?;
        let project = self
            .app
            .create_environment(&caller, id, &slug, &req.name)
            .await?;
        Ok(Response::new(pb::CreateEnvironmentResponse {
            project: Some(project_pb(&project)),
        }))
    }

    async fn set_project_trusted_ips(
        &self,
        request: Request<pb::SetProjectTrustedIpsRequest>,
    ) -> Reply<pb::SetProjectTrustedIpsResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("project_id", &req.project_id)?;
        let ips = TrustedIps::parse(&req.trusted_ips, "trusted_ips").map_err(AuthError::from)?;
        let project = self.app.set_project_trusted_ips(&caller, id, &ips).await?;
        Ok(Response::new(pb::SetProjectTrustedIpsResponse {
            project: Some(project_pb(&project)),
        }))
    }

    async fn create_service_token(
        &self,
        request: Request<pb::CreateServiceTokenRequest>,
    ) -> Reply<pb::CreateServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let new = NewServiceToken {
            project_id: required("project_id", &req.project_id)?.to_owned(),
            name: TokenName::parse(&req.name)
                .map_err(AuthError::from)?
                .into_string(),
            scopes: scopes_from_pb(&req.scopes)?,
            permissions: permissions_from_pb(&req.permissions)?,
            expires_in_seconds: req.expires_in_seconds,
            trusted_ips: TrustedIps::parse(&req.trusted_ips, "trusted_ips")
                .map_err(AuthError::from)?,
        };
        let (full, record) = self.app.create_service_token(&caller, new).await?;
        Ok(Response::new(pb::CreateServiceTokenResponse {
            service_token: full,
            token: Some(service_token_pb(&record)),
        }))
    }

    async fn list_service_tokens(
        &self,
        request: Request<pb::ListServiceTokensRequest>,
    ) -> Reply<pb::ListServiceTokensResponse> {
        let caller = self.caller(&request).await?;
        let id = required("project_id", &request.get_ref().project_id)?;
        let tokens = self.app.service_tokens(&caller, id).await?;
        Ok(Response::new(pb::ListServiceTokensResponse {
            tokens: tokens.iter().map(service_token_pb).collect(),
        }))
    }

    async fn get_service_token(
        &self,
        request: Request<pb::GetServiceTokenRequest>,
    ) -> Reply<pb::GetServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let id = required("token_id", &request.get_ref().token_id)?;
        let token = self.app.service_token(&caller, id).await?;
        Ok(Response::new(pb::GetServiceTokenResponse {
            token: Some(service_token_pb(&token)),
        }))
    }

    async fn delete_service_token(
        &self,
        request: Request<pb::DeleteServiceTokenRequest>,
    ) -> Reply<pb::DeleteServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let id = required("token_id", &request.get_ref().token_id)?;
        self.app.delete_service_token(&caller, id).await?;
        Ok(Response::new(pb::DeleteServiceTokenResponse {}))
    }

    async fn set_service_token_active(
        &self,
        request: Request<pb::SetServiceTokenActiveRequest>,
    ) -> Reply<pb::SetServiceTokenActiveResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("token_id", &req.token_id)?;
        let token = self
            .app
            .set_service_token_active(&caller, id, req.active)
            .await?;
        Ok(Response::new(pb::SetServiceTokenActiveResponse {
            token: Some(service_token_pb(&token)),
        }))
    }

    async fn create_identity(
        &self,
        request: Request<pb::CreateIdentityRequest>,
    ) -> Reply<pb::CreateIdentityResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let role = OrgRole::parse(&req.org_role).map_err(AuthError::from)?;
        let identity = self.app.create_identity(&caller, &req.name, role).await?;
        Ok(Response::new(pb::CreateIdentityResponse {
            identity: Some(identity_pb(&identity)),
        }))
    }

    async fn list_identities(
        &self,
        request: Request<pb::ListIdentitiesRequest>,
    ) -> Reply<pb::ListIdentitiesResponse> {
        let caller = self.caller(&request).await?;
        let identities = self.app.identities(&caller).await?;
        Ok(Response::new(pb::ListIdentitiesResponse {
            identities: identities.iter().map(identity_pb).collect(),
        }))
    }

    async fn delete_identity(
        &self,
        request: Request<pb::DeleteIdentityRequest>,
    ) -> Reply<pb::DeleteIdentityResponse> {
        let caller = self.caller(&request).await?;
        let id = required("identity_id", &request.get_ref().identity_id)?;
        self.app.delete_identity(&caller, id).await?;
        Ok(Response::new(pb::DeleteIdentityResponse {}))
    }

    async fn attach_token_auth(
        &self,
        request: Request<pb::AttachTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("identity_id", &req.identity_id)?;
        let changes = ConfigChanges {
            ttl: req.access_token_ttl,
            max_ttl: req.access_token_max_ttl,
            num_uses_limit: req.access_token_num_uses_limit,
            trusted_ips: &req.access_token_trusted_ips,
        };
        let config = self.app.attach_token_auth(&caller, id, changes).await?;
        Ok(Response::new(token_auth_pb(id, &config)))
    }

    async fn update_token_auth(
        &self,
        request: Request<pb::UpdateTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("identity_id", &req.identity_id)?;
        let changes = ConfigChanges {
            ttl: req.access_token_ttl,
            max_ttl: req.access_token_max_ttl,
            num_uses_limit: req.access_token_num_uses_limit,
            trusted_ips: &req.access_token_trusted_ips,
        };
        let config = self.app.update_token_auth(&caller, id, changes).await?;
        Ok(Response::new(token_auth_pb(id, &config)))
    }

    async fn get_token_auth(
        &self,
        request: Request<pb::GetTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let id = required("identity_id", &request.get_ref().identity_id)?;
        let config = self.app.token_auth(&caller, id).await?;
        Ok(Response::new(token_auth_pb(id, &config)))
    }

    async fn create_identity_access_token(
        &self,
        request: Request<pb::CreateIdentityAccessTokenRequest>,
    ) -> Reply<pb::CreateIdentityAccessTokenResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let id = required("identity_id", &req.identity_id)?;
        let issued = self
            .app
            .create_identity_access_token(&caller, id, &req.name)
            .await?;
        Ok(Response::new(pb::CreateIdentityAccessTokenResponse {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            access_token_max_ttl: issued.record.max_ttl_seconds,
            token_type: "Bearer".to_owned(),
            token_id: issued.record.id,
        }))
    }

    async fn list_identity_access_tokens(
        &self,
        request: Request<pb::ListIdentityAccessTokensRequest>,
    ) -> Reply<pb::ListIdentityAccessTokensResponse> {
        let caller = self.caller(&request).await?;
        let id = required("identity_id", &request.get_ref().identity_id)?;
        let tokens = self.app.identity_access_tokens(&caller, id).await?;
        Ok(Response::new(pb::ListIdentityAccessTokensResponse {
            tokens: tokens.iter().map(access_token_pb).collect(),
        }))
    }

    async fn renew_access_token(
        &self,
        request: Request<pb::RenewAccessTokenRequest>,
    ) -> Reply<pb::RenewAccessTokenResponse> {
        let ip = self.ip(&request);
        let token = match request.get_ref().access_token.as_str() {
            "" => bearer(&request)?,
            given => BearerToken::new(given),
        };
        let (record, expires_in) = self.app.renew_access_token(&token, ip).await?;
        Ok(Response::new(pb::RenewAccessTokenResponse {
            access_token: token.expose().to_owned(),
            expires_in,
            access_token_max_ttl: record.max_ttl_seconds,
            token_type: "Bearer".to_owned(),
        }))
    }

    async fn revoke_access_token(
        &self,
        request: Request<pb::RevokeAccessTokenRequest>,
    ) -> Reply<pb::RevokeAccessTokenResponse> {
        let req = request.get_ref();
        match (req.access_token.as_str(), req.token_id.as_str()) {
            ("", "") => {
                return Err(AuthError::from(InvalidInput::new(
                    "access_token",
                    "set access_token (the token to revoke) or token_id (as an org admin)",
                ))
                .into());
            }
            (token, "") => {
                self.app
                    .revoke_own_access_token(&BearerToken::new(token), self.ip(&request))
                    .await?;
            }
            (_, id) => {
                let id = id.to_owned();
                let caller = self.caller(&request).await?;
                self.app.revoke_access_token_by_id(&caller, &id).await?;
            }
        }
        Ok(Response::new(pb::RevokeAccessTokenResponse {}))
    }

    async fn add_identity_to_project(
        &self,
        request: Request<pb::AddIdentityToProjectRequest>,
    ) -> Reply<pb::AddIdentityToProjectResponse> {
        let caller = self.caller(&request).await?;
        let req = request.into_inner();
        let project_id = required("project_id", &req.project_id)?;
        let identity_id = required("identity_id", &req.identity_id)?;
        let role = ProjectRole::parse(&req.role).map_err(AuthError::from)?;
        let scopes = if req.scopes.is_empty() {
            None
        } else {
            Some(scopes_from_pb(&req.scopes)?)
        };
        let membership = self
            .app
            .add_identity_to_project(&caller, project_id, identity_id, role, scopes)
            .await?;
        Ok(Response::new(pb::AddIdentityToProjectResponse {
            membership: Some(membership_pb(&membership)),
        }))
    }

    async fn remove_identity_from_project(
        &self,
        request: Request<pb::RemoveIdentityFromProjectRequest>,
    ) -> Reply<pb::RemoveIdentityFromProjectResponse> {
        let caller = self.caller(&request).await?;
        let req = request.get_ref();
        let project_id = required("project_id", &req.project_id)?;
        let identity_id = required("identity_id", &req.identity_id)?;
        self.app
            .remove_identity_from_project(&caller, project_id, identity_id)
            .await?;
        Ok(Response::new(pb::RemoveIdentityFromProjectResponse {}))
    }

    async fn lookup_token(
        &self,
        request: Request<pb::LookupTokenRequest>,
    ) -> Reply<pb::LookupTokenResponse> {
        let token = bearer(&request)?;
        let ip = client_ip(
            request.remote_addr().map(|a| a.ip()),
            request.metadata(),
            &self.trusted_proxies,
        );
        let lookup = self.app.lookup(&token, ip).await?;
        let reply = match lookup.caller {
            Authenticated::Service { token, .. } => pb::LookupTokenResponse {
                token_type: pb::TokenType::Service.into(),
                principal: Principal::ServiceToken(token.id.clone()).to_string(),
                project_id: token.project_id.clone(),
                expires_at: token.expires_at.map(timestamp),
                use_count: token.use_count,
                use_limit: 0,
                scopes: scopes_pb(&token.scopes),
                permissions: permissions_pb(token.permissions),
                encrypted_project_key: Some(sealed_pb(&token.encrypted_project_key)),
                key_encryption_count: lookup.key_encryption_count,
                key_rotation_recommended: key_rotation_recommended(lookup.key_encryption_count),
                org_role: String::new(),
                token_id: token.id,
            },
            Authenticated::Identity { token, identity } => pb::LookupTokenResponse {
                token_type: pb::TokenType::Identity.into(),
                principal: Principal::Identity(identity.id.clone()).to_string(),
                expires_at: token.expires_at.map(timestamp),
                use_count: token.use_count,
                org_role: identity.org_role.as_str().to_owned(),
                use_limit: token.num_uses_limit,
                token_id: token.id,
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Reply<pb::AuthorizeResponse> {
        match self.gate {
            AuthorizeGate::InternalKey => {}
            AuthorizeGate::Elsewhere => {
                return Err(AuthError::from(AccessError::new(
                    Reason::PermissionDenied,
                    "Authorize is served on the internal port only (LATCHKEY_INTERNAL_ADDR)",
                ))
                .into());
            }
            // The handshake already refused callers without a valid
            // certificate; this holds if the listener is ever misconfigured.
            AuthorizeGate::ClientCertificate if request.peer_certs().is_none() => {
                return Err(AuthError::from(AccessError::new(
                    Reason::PermissionDenied,
                    "Authorize needs a client certificate (mTLS)",
                ))
                .into());
            }
            AuthorizeGate::ClientCertificate => {}
        }
        let presented = request
            .metadata()
            .get(INTERNAL_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = request.into_inner();
        // The caller's token travels in the body here, not in the metadata
        // the RPC span reads it from.
        telemetry::record_token(&tracing::Span::current(), &req.token);
        let action = match pb::Action::try_from(req.action) {
            Ok(pb::Action::Read) => Action::Read,
            Ok(pb::Action::Write) => Action::Write,
            _ => {
                return Err(AuthError::from(InvalidInput::new(
                    "action",
                    "must be ACTION_READ or ACTION_WRITE",
                ))
                .into());
            }
        };
        let client_ip = match req.client_ip.as_str() {
            "" => None,
            raw => Some(raw.parse().map_err(|_| {
                AuthError::from(InvalidInput::new(
                    "client_ip",
                    format!("{raw:?} is not an IP address"),
                ))
            })?),
        };
        let path = if req.secret_path.is_empty() {
            "/"
        } else {
            &req.secret_path
        };
        let domain_req = AuthorizationRequest {
            token: BearerToken::new(&req.token),
            client_ip,
            project_id: Some(req.project_id).filter(|p| !p.is_empty()),
            environment: Environment::parse(&req.environment).map_err(AuthError::from)?,
            path: SecretPath::parse(path).map_err(AuthError::from)?,
            action,
            raw: req.raw,
            recursive: req.recursive,
        };
        let grant = self.app.authorize(presented.as_deref(), domain_req).await?;
        telemetry::record_token_use(grant.principal.kind());
        Ok(Response::new(pb::AuthorizeResponse {
            principal: grant.principal.to_string(),
            project_id: grant.project_id,
            scopes: scopes_pb(&grant.scopes),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(sealed_pb),
            project_key: grant
                .project_key
                .map(|k| k.expose().to_owned())
                .unwrap_or_default(),
        }))
    }
}

fn bearer<T>(request: &Request<T>) -> Result<BearerToken, AuthError> {
    Ok(bearer_token(request.metadata())?)
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, AuthError> {
    if value.trim().is_empty() {
        return Err(InvalidInput::new(field, "is required").into());
    }
    Ok(value.trim())
}

fn scopes_from_pb(scopes: &[pb::Scope]) -> Result<Scopes, AuthError> {
    // Before parsing any: an oversized list costs nothing.
    Scopes::check_count(scopes.len())?;
    let parsed = scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let environment = Environment::parse(&s.environment)
                .map_err(|e| e.in_field(format!("scopes[{i}].environment")))?;
            let glob = latchkey_domain::scope::PathGlob::parse(&s.secret_path)
                .map_err(|e| e.in_field(format!("scopes[{i}].secret_path")))?;
            Ok(Scope { environment, glob })
        })
        .collect::<Result<Vec<_>, InvalidInput>>()?;
    Ok(Scopes::limited(parsed)?)
}

fn permissions_from_pb(values: &[i32]) -> Result<Permissions, AuthError> {
    let mut permissions = Permissions::default();
    for (i, value) in values.iter().enumerate() {
        match pb::Permission::try_from(*value) {
            Ok(pb::Permission::Read) => permissions.read = true,
            Ok(pb::Permission::Write) => permissions.write = true,
            _ => {
                return Err(InvalidInput::new(
                    format!("permissions[{i}]"),
                    "must be PERMISSION_READ or PERMISSION_WRITE",
                )
                .into());
            }
        }
    }
    if !permissions.read && !permissions.write {
        return Err(InvalidInput::new(
            "permissions",
            "at least one of PERMISSION_READ and PERMISSION_WRITE is required",
        )
        .into());
    }
    Ok(permissions)
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn sealed_pb(sealed: &Sealed) -> pb::EncryptedProjectKey {
    pb::EncryptedProjectKey {
        ciphertext: sealed.ciphertext.clone(),
        iv: sealed.iv.clone(),
        tag: sealed.tag.clone(),
    }
}

fn scopes_pb(scopes: &Scopes) -> Vec<pb::Scope> {
    scopes
        .as_slice()
        .iter()
        .map(|s| pb::Scope {
            environment: s.environment.as_str().to_owned(),
            secret_path: s.glob.as_str().to_owned(),
        })
        .collect()
}

fn permissions_pb(permissions: Permissions) -> Vec<i32> {
    let mut out = Vec::new();
    if permissions.read {
        out.push(pb::Permission::Read.into());
    }
    if permissions.write {
        out.push(pb::Permission::Write.into());
    }
    out
}

fn project_pb(project: &ProjectRecord) -> pb::Project {
    pb::Project {
        id: project.id.clone(),
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

fn service_token_pb(token: &ServiceTokenRecord) -> pb::ServiceToken {
    pb::ServiceToken {
        id: token.id.clone(),
        project_id: token.project_id.clone(),
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

fn identity_pb(identity: &IdentityRecord) -> pb::Identity {
    pb::Identity {
        id: identity.id.clone(),
        name: identity.name.clone(),
        org_role: identity.org_role.as_str().to_owned(),
        created_at: Some(timestamp(identity.created_at)),
    }
}

fn token_auth_pb(
    identity_id: &str,
    config: &latchkey_domain::identity::TokenAuthConfig,
) -> pb::TokenAuthResponse {
    pb::TokenAuthResponse {
        config: Some(pb::TokenAuthConfig {
            identity_id: identity_id.to_owned(),
            access_token_ttl: config.ttl_seconds,
            access_token_max_ttl: config.max_ttl_seconds,
            access_token_num_uses_limit: config.num_uses_limit,
            access_token_trusted_ips: config.trusted_ips.to_strings(),
        }),
    }
}

fn access_token_pb(token: &IdentityTokenRecord) -> pb::IdentityAccessToken {
    pb::IdentityAccessToken {
        id: token.id.clone(),
        identity_id: token.identity_id.clone(),
        name: token.name.clone(),
        created_at: Some(timestamp(token.created_at)),
        expires_at: token.expires_at.map(timestamp),
        use_count: token.use_count,
        use_limit: token.num_uses_limit,
        last_used_at: token.last_used_at.map(timestamp),
        revoked: token.revoked_at.is_some(),
    }
}

fn membership_pb(membership: &MembershipRecord) -> pb::ProjectMembership {
    pb::ProjectMembership {
        project_id: membership.project_id.clone(),
        identity_id: membership.identity_id.clone(),
        role: membership.role.as_str().to_owned(),
        scopes: membership
            .scopes
            .as_ref()
            .map(scopes_pb)
            .unwrap_or_default(),
    }
}
