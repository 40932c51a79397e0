//! The tonic `AuthService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use latchkey_domain::identity::TokenAuthChanges;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::ProjectId;
use latchkey_domain::ports::{AuthorizationRequest, BearerToken};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_server::AuthService;
use latchkey_proto::convert::auth::RevokeTarget;
use latchkey_service_kit::telemetry;
use tonic::{Request, Response, Status};

use crate::app::AuthApp;

mod context;
mod gate;
mod lookup;

use self::context::{bearer, parse, presented_internal_key};
pub use self::gate::AuthorizeGate;
use crate::error::AuthError;

/// The gRPC face of [`AuthApp`].
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    app: Arc<AuthApp>,
    trusted_proxies: TrustedIps,
    gate: AuthorizeGate,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Reply<pb::CreateProjectResponse> {
        let caller = self.caller(&request).await?;
        let (name, e2ee) = parse(request.get_ref())?;
        let project = self.app.create_project(&caller, name, e2ee).await?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some((&project).into()),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Reply<pb::GetProjectResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        let project = self.app.project(&caller, &id).await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some((&project).into()),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let caller = self.caller(&request).await?;
        let projects = self.app.projects(&caller).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.iter().map(Into::into).collect(),
        }))
    }

    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> Reply<pb::CreateEnvironmentResponse> {
        let caller = self.caller(&request).await?;
        let (id, slug, name): (ProjectId, _, _) = parse(request.get_ref())?;
        let project = self
            .app
            .create_environment(&caller, &id, &slug, name)
            .await?;
        Ok(Response::new(pb::CreateEnvironmentResponse {
            project: Some((&project).into()),
        }))
    }

    async fn set_project_trusted_ips(
        &self,
        request: Request<pb::SetProjectTrustedIpsRequest>,
    ) -> Reply<pb::SetProjectTrustedIpsResponse> {
        let caller = self.caller(&request).await?;
        let (id, ips): (ProjectId, TrustedIps) = parse(request.get_ref())?;
        let project = self.app.set_project_trusted_ips(&caller, &id, &ips).await?;
        Ok(Response::new(pb::SetProjectTrustedIpsResponse {
            project: Some((&project).into()),
        }))
    }

    async fn create_service_token(
        &self,
        request: Request<pb::CreateServiceTokenRequest>,
    ) -> Reply<pb::CreateServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let new = parse(request.get_ref())?;
        let (full, token) = self.app.create_service_token(&caller, new).await?;
        Ok(Response::new(pb::CreateServiceTokenResponse {
            service_token: full,
            token: Some((&token).into()),
        }))
    }

    async fn list_service_tokens(
        &self,
        request: Request<pb::ListServiceTokensRequest>,
    ) -> Reply<pb::ListServiceTokensResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        let tokens = self.app.service_tokens(&caller, &id).await?;
        Ok(Response::new(pb::ListServiceTokensResponse {
            tokens: tokens.iter().map(Into::into).collect(),
        }))
    }

    async fn get_service_token(
        &self,
        request: Request<pb::GetServiceTokenRequest>,
    ) -> Reply<pb::GetServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        let token = self.app.service_token(&caller, &id).await?;
        Ok(Response::new(pb::GetServiceTokenResponse {
            token: Some((&token).into()),
        }))
    }

    async fn delete_service_token(
        &self,
        request: Request<pb::DeleteServiceTokenRequest>,
    ) -> Reply<pb::DeleteServiceTokenResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        self.app.delete_service_token(&caller, &id).await?;
        Ok(Response::new(pb::DeleteServiceTokenResponse {}))
    }

    async fn set_service_token_active(
        &self,
        request: Request<pb::SetServiceTokenActiveRequest>,
    ) -> Reply<pb::SetServiceTokenActiveResponse> {
        let caller = self.caller(&request).await?;
        let (id, active) = parse(request.get_ref())?;
        let token = self
            .app
            .set_service_token_active(&caller, &id, active)
            .await?;
        Ok(Response::new(pb::SetServiceTokenActiveResponse {
            token: Some((&token).into()),
        }))
    }

    async fn create_identity(
        &self,
        request: Request<pb::CreateIdentityRequest>,
    ) -> Reply<pb::CreateIdentityResponse> {
        let caller = self.caller(&request).await?;
        let (name, role) = parse(request.get_ref())?;
        let identity = self.app.create_identity(&caller, name, role).await?;
        Ok(Response::new(pb::CreateIdentityResponse {
            identity: Some((&identity).into()),
        }))
    }

    async fn list_identities(
        &self,
        request: Request<pb::ListIdentitiesRequest>,
    ) -> Reply<pb::ListIdentitiesResponse> {
        let caller = self.caller(&request).await?;
        let identities = self.app.identities(&caller).await?;
        Ok(Response::new(pb::ListIdentitiesResponse {
            identities: identities.iter().map(Into::into).collect(),
        }))
    }

    async fn delete_identity(
        &self,
        request: Request<pb::DeleteIdentityRequest>,
    ) -> Reply<pb::DeleteIdentityResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        self.app.delete_identity(&caller, &id).await?;
        Ok(Response::new(pb::DeleteIdentityResponse {}))
    }

    async fn attach_token_auth(
        &self,
        request: Request<pb::AttachTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let (id, changes): (_, TokenAuthChanges) = parse(request.get_ref())?;
        let config = self.app.attach_token_auth(&caller, &id, &changes).await?;
        Ok(Response::new((&id, &config).into()))
    }

    async fn update_token_auth(
        &self,
        request: Request<pb::UpdateTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let (id, changes): (_, TokenAuthChanges) = parse(request.get_ref())?;
        let config = self.app.update_token_auth(&caller, &id, &changes).await?;
        Ok(Response::new((&id, &config).into()))
    }

    async fn get_token_auth(
        &self,
        request: Request<pb::GetTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        let config = self.app.token_auth(&caller, &id).await?;
        Ok(Response::new((&id, &config).into()))
    }

    async fn create_identity_access_token(
        &self,
        request: Request<pb::CreateIdentityAccessTokenRequest>,
    ) -> Reply<pb::CreateIdentityAccessTokenResponse> {
        let caller = self.caller(&request).await?;
        let (id, name) = parse(request.get_ref())?;
        let issued = self
            .app
            .create_identity_access_token(&caller, &id, name)
            .await?;
        Ok(Response::new(pb::CreateIdentityAccessTokenResponse {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            access_token_max_ttl: issued.record.max_ttl_seconds,
            token_type: "Bearer".to_owned(),
            token_id: issued.record.id.into_string(),
        }))
    }

    async fn list_identity_access_tokens(
        &self,
        request: Request<pb::ListIdentityAccessTokensRequest>,
    ) -> Reply<pb::ListIdentityAccessTokensResponse> {
        let caller = self.caller(&request).await?;
        let id = parse(request.get_ref())?;
        let tokens = self.app.identity_access_tokens(&caller, &id).await?;
        Ok(Response::new(pb::ListIdentityAccessTokensResponse {
            tokens: tokens.iter().map(Into::into).collect(),
        }))
    }

    async fn renew_access_token(
        &self,
        request: Request<pb::RenewAccessTokenRequest>,
    ) -> Reply<pb::RenewAccessTokenResponse> {
        let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
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
        match parse(request.get_ref())? {
            RevokeTarget::Own(token) => {
                let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
                self.app.revoke_own_access_token(&token, ip).await?;
            }
            RevokeTarget::ById(id) => {
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
        let (project_id, identity_id, role, scopes) = parse(request.get_ref())?;
        let membership = self
            .app
            .add_identity_to_project(&caller, &project_id, &identity_id, role, scopes)
            .await?;
        Ok(Response::new(pb::AddIdentityToProjectResponse {
            membership: Some((&membership).into()),
        }))
    }

    async fn remove_identity_from_project(
        &self,
        request: Request<pb::RemoveIdentityFromProjectRequest>,
    ) -> Reply<pb::RemoveIdentityFromProjectResponse> {
        let caller = self.caller(&request).await?;
        let (project_id, identity_id) = parse(request.get_ref())?;
        self.app
            .remove_identity_from_project(&caller, &project_id, &identity_id)
            .await?;
        Ok(Response::new(pb::RemoveIdentityFromProjectResponse {}))
    }

    async fn lookup_token(
        &self,
        request: Request<pb::LookupTokenRequest>,
    ) -> Reply<pb::LookupTokenResponse> {
        let token = bearer(&request)?;
        let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
        let lookup = self.app.lookup(&token, ip).await?;
        Ok(Response::new(lookup::reply(lookup)))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Reply<pb::AuthorizeResponse> {
        self.check_gate(&request)?;
        let presented = presented_internal_key(&request);
        let req = request.into_inner();
        // The caller's token travels in the body here, not in the metadata
        // the RPC span reads it from.
        telemetry::record_token(&tracing::Span::current(), &req.token);
        let req = AuthorizationRequest::try_from(req).map_err(AuthError::from)?;
        let grant = self.app.authorize(presented.as_deref(), req).await?;
        telemetry::record_token_use(grant.principal.kind());
        Ok(Response::new((&grant).into()))
    }

    async fn count_encryptions(
        &self,
        request: Request<pb::CountEncryptionsRequest>,
    ) -> Reply<pb::CountEncryptionsResponse> {
        // Served where Authorize is, to the same internal caller.
        self.check_gate(&request)?;
        let presented = presented_internal_key(&request);
        let req = request.into_inner();
        let project_id =
            ProjectId::parse(&req.project_id, "project_id").map_err(AuthError::from)?;
        let total = self
            .app
            .count_encryptions(presented.as_deref(), &project_id, req.count)
            .await?;
        Ok(Response::new(pb::CountEncryptionsResponse {
            key_encryption_count: total,
        }))
    }

    async fn get_audit_key(
        &self,
        request: Request<pb::GetAuditKeyRequest>,
    ) -> Reply<pb::GetAuditKeyResponse> {
        // Served where Authorize is, to the same internal caller.
        self.check_gate(&request)?;
        let key = self
            .app
            .audit_key_for(presented_internal_key(&request).as_deref())?;
        Ok(Response::new(pb::GetAuditKeyResponse {
            audit_key: key.expose().to_vec(),
        }))
    }
}
