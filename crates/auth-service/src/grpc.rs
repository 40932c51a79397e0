//! The tonic `AuthService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::{Sealed, key_rotation_recommended};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::path::{Environment, SecretPath};
use latchkey_domain::ports::{AuthorizationRequest, BearerToken};
use latchkey_domain::scope::{Action, Permissions, Scope, Scopes};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_server::AuthService;
use latchkey_service_kit::config::INTERNAL_KEY_HEADER;
use latchkey_service_kit::request::{bearer_token, client_ip};
use latchkey_store::auth::{ProjectRecord, ServiceTokenRecord};
use tonic::{Request, Response, Status};

use crate::app::{AuthApp, Authenticated, NewServiceToken};
use crate::error::AuthError;

/// The gRPC face of [`AuthApp`].
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    app: Arc<AuthApp>,
    trusted_proxies: TrustedIps,
}

impl AuthGrpc {
    /// Serves `app`, honouring `x-forwarded-for` only from `trusted_proxies`.
    #[must_use]
    pub fn new(app: Arc<AuthApp>, trusted_proxies: TrustedIps) -> Self {
        Self {
            app,
            trusted_proxies,
        }
    }

    async fn admin<T>(&self, request: &Request<T>) -> Result<(), AuthError> {
        let token = bearer(request)?;
        self.app.require_admin(&token).await.map(drop)
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    #[tracing::instrument(name = "auth.create_project", skip_all)]
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Reply<pb::CreateProjectResponse> {
        self.admin(&request).await?;
        let req = request.into_inner();
        let project = self.app.create_project(&req.name, req.e2ee).await?;
        tracing::info!(project.id = %project.id, e2ee = project.e2ee, "project created");
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(project_pb(&project)),
        }))
    }

    #[tracing::instrument(name = "auth.get_project", skip_all)]
    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Reply<pb::GetProjectResponse> {
        self.admin(&request).await?;
        let id = required("project_id", &request.get_ref().project_id)?;
        let project = self.app.project(id).await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project_pb(&project)),
        }))
    }

    #[tracing::instrument(name = "auth.list_projects", skip_all)]
    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        self.admin(&request).await?;
        let projects = self.app.projects().await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.iter().map(project_pb).collect(),
        }))
    }

    #[tracing::instrument(name = "auth.create_environment", skip_all)]
    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> Reply<pb::CreateEnvironmentResponse> {
        self.admin(&request).await?;
        let req = request.into_inner();
        let id = required("project_id", &req.project_id)?;
        let slug =
            Environment::parse(&req.slug).map_err(|e| AuthError::from(e.in_field("slug")))?;
        let project = self.app.create_environment(id, &slug, &req.name).await?;
        Ok(Response::new(pb::CreateEnvironmentResponse {
            project: Some(project_pb(&project)),
        }))
    }

    #[tracing::instrument(name = "auth.set_project_trusted_ips", skip_all)]
    async fn set_project_trusted_ips(
        &self,
        request: Request<pb::SetProjectTrustedIpsRequest>,
    ) -> Reply<pb::SetProjectTrustedIpsResponse> {
        self.admin(&request).await?;
        let req = request.into_inner();
        let id = required("project_id", &req.project_id)?;
        let ips = TrustedIps::parse(&req.trusted_ips, "trusted_ips").map_err(AuthError::from)?;
        let project = self.app.set_project_trusted_ips(id, &ips).await?;
        Ok(Response::new(pb::SetProjectTrustedIpsResponse {
            project: Some(project_pb(&project)),
        }))
    }

    #[tracing::instrument(name = "auth.create_service_token", skip_all)]
    async fn create_service_token(
        &self,
        request: Request<pb::CreateServiceTokenRequest>,
    ) -> Reply<pb::CreateServiceTokenResponse> {
        self.admin(&request).await?;
        let req = request.into_inner();
        let new = NewServiceToken {
            project_id: required("project_id", &req.project_id)?.to_owned(),
            name: token_name(&req.name)?,
            scopes: scopes_from_pb(&req.scopes)?,
            permissions: permissions_from_pb(&req.permissions)?,
            expires_in_seconds: req.expires_in_seconds,
            trusted_ips: TrustedIps::parse(&req.trusted_ips, "trusted_ips")
                .map_err(AuthError::from)?,
        };
        let (full, record) = self.app.create_service_token(new).await?;
        Ok(Response::new(pb::CreateServiceTokenResponse {
            service_token: full,
            token: Some(service_token_pb(&record)),
        }))
    }

    #[tracing::instrument(name = "auth.list_service_tokens", skip_all)]
    async fn list_service_tokens(
        &self,
        request: Request<pb::ListServiceTokensRequest>,
    ) -> Reply<pb::ListServiceTokensResponse> {
        self.admin(&request).await?;
        let id = required("project_id", &request.get_ref().project_id)?;
        let tokens = self.app.service_tokens(id).await?;
        Ok(Response::new(pb::ListServiceTokensResponse {
            tokens: tokens.iter().map(service_token_pb).collect(),
        }))
    }

    #[tracing::instrument(name = "auth.get_service_token", skip_all)]
    async fn get_service_token(
        &self,
        request: Request<pb::GetServiceTokenRequest>,
    ) -> Reply<pb::GetServiceTokenResponse> {
        self.admin(&request).await?;
        let id = required("token_id", &request.get_ref().token_id)?;
        let token = self.app.service_token(id).await?;
        Ok(Response::new(pb::GetServiceTokenResponse {
            token: Some(service_token_pb(&token)),
        }))
    }

    #[tracing::instrument(name = "auth.delete_service_token", skip_all)]
    async fn delete_service_token(
        &self,
        request: Request<pb::DeleteServiceTokenRequest>,
    ) -> Reply<pb::DeleteServiceTokenResponse> {
        self.admin(&request).await?;
        let id = required("token_id", &request.get_ref().token_id)?;
        self.app.delete_service_token(id).await?;
        Ok(Response::new(pb::DeleteServiceTokenResponse {}))
    }

    #[tracing::instrument(name = "auth.set_service_token_active", skip_all)]
    async fn set_service_token_active(
        &self,
        request: Request<pb::SetServiceTokenActiveRequest>,
    ) -> Reply<pb::SetServiceTokenActiveResponse> {
        self.admin(&request).await?;
        let req = request.into_inner();
        let id = required("token_id", &req.token_id)?;
        let token = self.app.set_service_token_active(id, req.active).await?;
        Ok(Response::new(pb::SetServiceTokenActiveResponse {
            token: Some(service_token_pb(&token)),
        }))
    }

    #[tracing::instrument(name = "auth.lookup_token", skip_all)]
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
                principal: format!("service-token:{}", token.id),
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
                principal: format!("identity:{}", identity.id),
                expires_at: token.expires_at.map(timestamp),
                use_count: token.use_count,
                org_role: identity.org_role,
                token_id: token.id,
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    #[tracing::instrument(name = "auth.authorize", skip_all, fields(action, raw))]
    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Reply<pb::AuthorizeResponse> {
        let presented = request
            .metadata()
            .get(INTERNAL_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = request.into_inner();
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
            token: BearerToken::new(req.token),
            client_ip,
            project_id: Some(req.project_id).filter(|p| !p.is_empty()),
            environment: Environment::parse(&req.environment).map_err(AuthError::from)?,
            path: SecretPath::parse(path).map_err(AuthError::from)?,
            action,
            raw: req.raw,
            recursive: req.recursive,
        };
        let grant = self.app.authorize(presented.as_deref(), domain_req).await?;
        Ok(Response::new(pb::AuthorizeResponse {
            principal: grant.principal,
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

fn token_name(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim();
    if name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(
            InvalidInput::new("name", "a token name is at most 256 printable characters").into(),
        );
    }
    Ok(if name.is_empty() {
        "Service token".to_owned()
    } else {
        name.to_owned()
    })
}

fn scopes_from_pb(scopes: &[pb::Scope]) -> Result<Scopes, AuthError> {
    if scopes.is_empty() {
        return Err(InvalidInput::new(
            "scopes",
            "at least one scope is required, e.g. environment \"dev\" and secret_path \"/**\"",
        )
        .into());
    }
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
    Ok(Scopes::new(parsed))
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
