//! The tonic `AuthService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use latchkey_domain::identity::{
    ClientSecretTerms, KubernetesAuthChanges, TokenAuthChanges, UniversalAuthChanges,
};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::{IdentityId, Principal, ProjectId, ServiceTokenId};
use latchkey_domain::ports::{AuthorizationRequest, BearerToken};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_server::AuthService;
use latchkey_proto::convert::auth::{RevokeTarget, audit_reach_pb};
use latchkey_service_kit::telemetry;
use tonic::{Request, Response, Status};

use crate::app::AuthApp;

mod audit;
mod context;
mod gate;
mod lookup;

pub use self::audit::AppAuditGate;
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
        let trail = self.trail(&request, "project.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (name, e2ee) = parse(request.get_ref())?;
            let project = self.app.create_project(&caller, name, e2ee).await?;
            trail.place(project.id.as_str(), "", "");
            Ok(pb::CreateProjectResponse {
                project: Some((&project).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Reply<pb::GetProjectResponse> {
        let trail = self.trail(&request, "project.get");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: ProjectId = parse(request.get_ref())?;
            trail.place(id.as_str(), "", "");
            let project = self.app.project(&caller, &id).await?;
            Ok(pb::GetProjectResponse {
                project: Some((&project).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Reply<pb::ListProjectsResponse> {
        let trail = self.trail(&request, "project.list");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let projects = self.app.projects(&caller).await?;
            Ok(pb::ListProjectsResponse {
                projects: projects.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn create_environment(
        &self,
        request: Request<pb::CreateEnvironmentRequest>,
    ) -> Reply<pb::CreateEnvironmentResponse> {
        let trail = self.trail(&request, "environment.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, slug, name): (ProjectId, _, _) = parse(request.get_ref())?;
            trail.place(id.as_str(), slug.as_str(), "");
            let project = self
                .app
                .create_environment(&caller, &id, &slug, name)
                .await?;
            Ok(pb::CreateEnvironmentResponse {
                project: Some((&project).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn set_project_trusted_ips(
        &self,
        request: Request<pb::SetProjectTrustedIpsRequest>,
    ) -> Reply<pb::SetProjectTrustedIpsResponse> {
        let trail = self.trail(&request, "project.set_trusted_ips");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, ips): (ProjectId, TrustedIps) = parse(request.get_ref())?;
            trail.place(id.as_str(), "", "");
            let project = self.app.set_project_trusted_ips(&caller, &id, &ips).await?;
            Ok(pb::SetProjectTrustedIpsResponse {
                project: Some((&project).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn create_service_token(
        &self,
        request: Request<pb::CreateServiceTokenRequest>,
    ) -> Reply<pb::CreateServiceTokenResponse> {
        let trail = self.trail(&request, "service_token.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let new = parse(request.get_ref())?;
            let (full, token) = self.app.create_service_token(&caller, new).await?;
            trail.place(token.project_id.as_str(), "", "");
            trail.target(Principal::ServiceToken(token.id.clone()).to_string());
            Ok(pb::CreateServiceTokenResponse {
                service_token: full,
                token: Some((&token).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_service_tokens(
        &self,
        request: Request<pb::ListServiceTokensRequest>,
    ) -> Reply<pb::ListServiceTokensResponse> {
        let trail = self.trail(&request, "service_token.list");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: ProjectId = parse(request.get_ref())?;
            trail.place(id.as_str(), "", "");
            let tokens = self.app.service_tokens(&caller, &id).await?;
            Ok(pb::ListServiceTokensResponse {
                tokens: tokens.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_service_token(
        &self,
        request: Request<pb::GetServiceTokenRequest>,
    ) -> Reply<pb::GetServiceTokenResponse> {
        let trail = self.trail(&request, "service_token.get");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id = parse(request.get_ref())?;
            let token = self.app.service_token(&caller, &id).await?;
            trail.place(token.project_id.as_str(), "", "");
            trail.target(Principal::ServiceToken(token.id.clone()).to_string());
            Ok(pb::GetServiceTokenResponse {
                token: Some((&token).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn delete_service_token(
        &self,
        request: Request<pb::DeleteServiceTokenRequest>,
    ) -> Reply<pb::DeleteServiceTokenResponse> {
        let trail = self.trail(&request, "service_token.delete");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: ServiceTokenId = parse(request.get_ref())?;
            trail.target(Principal::ServiceToken(id.clone()).to_string());
            self.app.delete_service_token(&caller, &id).await?;
            Ok(pb::DeleteServiceTokenResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn set_service_token_active(
        &self,
        request: Request<pb::SetServiceTokenActiveRequest>,
    ) -> Reply<pb::SetServiceTokenActiveResponse> {
        let trail = self.trail(&request, "service_token.set_active");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, active): (ServiceTokenId, bool) = parse(request.get_ref())?;
            trail.target(Principal::ServiceToken(id.clone()).to_string());
            let token = self
                .app
                .set_service_token_active(&caller, &id, active)
                .await?;
            Ok(pb::SetServiceTokenActiveResponse {
                token: Some((&token).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn create_identity(
        &self,
        request: Request<pb::CreateIdentityRequest>,
    ) -> Reply<pb::CreateIdentityResponse> {
        let trail = self.trail(&request, "identity.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (name, role) = parse(request.get_ref())?;
            let identity = self.app.create_identity(&caller, name, role).await?;
            trail.target(Principal::Identity(identity.id.clone()).to_string());
            Ok(pb::CreateIdentityResponse {
                identity: Some((&identity).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_identities(
        &self,
        request: Request<pb::ListIdentitiesRequest>,
    ) -> Reply<pb::ListIdentitiesResponse> {
        let trail = self.trail(&request, "identity.list");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let identities = self.app.identities(&caller).await?;
            Ok(pb::ListIdentitiesResponse {
                identities: identities.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn delete_identity(
        &self,
        request: Request<pb::DeleteIdentityRequest>,
    ) -> Reply<pb::DeleteIdentityResponse> {
        let trail = self.trail(&request, "identity.delete");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            self.app.delete_identity(&caller, &id).await?;
            Ok(pb::DeleteIdentityResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn attach_token_auth(
        &self,
        request: Request<pb::AttachTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let trail = self.trail(&request, "token_auth.attach");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, TokenAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self.app.attach_token_auth(&caller, &id, &changes).await?;
            Ok((&id, &config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn update_token_auth(
        &self,
        request: Request<pb::UpdateTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let trail = self.trail(&request, "token_auth.update");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, TokenAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self.app.update_token_auth(&caller, &id, &changes).await?;
            Ok((&id, &config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_token_auth(
        &self,
        request: Request<pb::GetTokenAuthRequest>,
    ) -> Reply<pb::TokenAuthResponse> {
        let trail = self.trail(&request, "token_auth.get");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self.app.token_auth(&caller, &id).await?;
            Ok((&id, &config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn attach_universal_auth(
        &self,
        request: Request<pb::AttachUniversalAuthRequest>,
    ) -> Reply<pb::UniversalAuthResponse> {
        let trail = self.trail(&request, "universal_auth.attach");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, UniversalAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self
                .app
                .attach_universal_auth(&caller, &id, &changes)
                .await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn update_universal_auth(
        &self,
        request: Request<pb::UpdateUniversalAuthRequest>,
    ) -> Reply<pb::UniversalAuthResponse> {
        let trail = self.trail(&request, "universal_auth.update");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, UniversalAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self
                .app
                .update_universal_auth(&caller, &id, &changes)
                .await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_universal_auth(
        &self,
        request: Request<pb::GetUniversalAuthRequest>,
    ) -> Reply<pb::UniversalAuthResponse> {
        let trail = self.trail(&request, "universal_auth.get");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self.app.universal_auth(&caller, &id).await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn revoke_universal_auth(
        &self,
        request: Request<pb::RevokeUniversalAuthRequest>,
    ) -> Reply<pb::RevokeUniversalAuthResponse> {
        let trail = self.trail(&request, "universal_auth.revoke");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            self.app.revoke_universal_auth(&caller, &id).await?;
            Ok(pb::RevokeUniversalAuthResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn create_universal_auth_client_secret(
        &self,
        request: Request<pb::CreateUniversalAuthClientSecretRequest>,
    ) -> Reply<pb::CreateUniversalAuthClientSecretResponse> {
        let trail = self.trail(&request, "client_secret.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, terms): (IdentityId, ClientSecretTerms) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let issued = self.app.create_client_secret(&caller, &id, terms).await?;
            Ok(pb::CreateUniversalAuthClientSecretResponse {
                client_secret: issued.secret.expose().to_owned(),
                client_secret_data: Some((&issued.record).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_universal_auth_client_secrets(
        &self,
        request: Request<pb::ListUniversalAuthClientSecretsRequest>,
    ) -> Reply<pb::ListUniversalAuthClientSecretsResponse> {
        let trail = self.trail(&request, "client_secret.list");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let secrets = self.app.client_secrets(&caller, &id).await?;
            Ok(pb::ListUniversalAuthClientSecretsResponse {
                client_secrets: secrets.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn revoke_universal_auth_client_secret(
        &self,
        request: Request<pb::RevokeUniversalAuthClientSecretRequest>,
    ) -> Reply<pb::RevokeUniversalAuthClientSecretResponse> {
        let trail = self.trail(&request, "client_secret.revoke");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, secret_id): (IdentityId, String) = parse(request.get_ref())?;
            trail.target(format!("client_secret:{secret_id}"));
            self.app
                .revoke_client_secret(&caller, &id, &secret_id)
                .await?;
            Ok(pb::RevokeUniversalAuthClientSecretResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn login_universal_auth(
        &self,
        request: Request<pb::LoginUniversalAuthRequest>,
    ) -> Reply<pb::LoginResponse> {
        let trail = self.trail(&request, "identity.login");
        let mut on_behalf = false;
        let result = async {
            let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
            on_behalf = !request.get_ref().client_ip.is_empty();
            let req = request.get_ref();
            let (identity, issued) = self
                .app
                .login_universal_auth(&req.client_id, &req.client_secret, ip)
                .await?;
            Ok(login_response(&trail, identity, issued))
        }
        .await;
        self.answer_unless(on_behalf, &trail, result).await
    }

    async fn attach_kubernetes_auth(
        &self,
        request: Request<pb::AttachKubernetesAuthRequest>,
    ) -> Reply<pb::KubernetesAuthResponse> {
        let trail = self.trail(&request, "kubernetes_auth.attach");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, KubernetesAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self
                .app
                .attach_kubernetes_auth(&caller, &id, &changes)
                .await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn update_kubernetes_auth(
        &self,
        request: Request<pb::UpdateKubernetesAuthRequest>,
    ) -> Reply<pb::KubernetesAuthResponse> {
        let trail = self.trail(&request, "kubernetes_auth.update");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, changes): (IdentityId, KubernetesAuthChanges) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self
                .app
                .update_kubernetes_auth(&caller, &id, &changes)
                .await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_kubernetes_auth(
        &self,
        request: Request<pb::GetKubernetesAuthRequest>,
    ) -> Reply<pb::KubernetesAuthResponse> {
        let trail = self.trail(&request, "kubernetes_auth.get");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let config = self.app.kubernetes_auth(&caller, &id).await?;
            Ok((&config).into())
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn revoke_kubernetes_auth(
        &self,
        request: Request<pb::RevokeKubernetesAuthRequest>,
    ) -> Reply<pb::RevokeKubernetesAuthResponse> {
        let trail = self.trail(&request, "kubernetes_auth.revoke");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            self.app.revoke_kubernetes_auth(&caller, &id).await?;
            Ok(pb::RevokeKubernetesAuthResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn login_kubernetes_auth(
        &self,
        request: Request<pb::LoginKubernetesAuthRequest>,
    ) -> Reply<pb::LoginResponse> {
        let trail = self.trail(&request, "identity.login");
        let mut on_behalf = false;
        let result = async {
            let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
            on_behalf = !request.get_ref().client_ip.is_empty();
            let req = request.get_ref();
            let (identity, issued) = self
                .app
                .login_kubernetes_auth(&req.identity_id, &req.jwt, ip)
                .await?;
            Ok(login_response(&trail, identity, issued))
        }
        .await;
        self.answer_unless(on_behalf, &trail, result).await
    }

    async fn create_identity_access_token(
        &self,
        request: Request<pb::CreateIdentityAccessTokenRequest>,
    ) -> Reply<pb::CreateIdentityAccessTokenResponse> {
        let trail = self.trail(&request, "access_token.create");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (id, name): (IdentityId, _) = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let issued = self
                .app
                .create_identity_access_token(&caller, &id, name)
                .await?;
            Ok(pb::CreateIdentityAccessTokenResponse {
                access_token: issued.access_token,
                expires_in: issued.expires_in,
                access_token_max_ttl: issued.record.max_ttl_seconds,
                token_type: "Bearer".to_owned(),
                token_id: issued.record.id.into_string(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_identity_access_tokens(
        &self,
        request: Request<pb::ListIdentityAccessTokensRequest>,
    ) -> Reply<pb::ListIdentityAccessTokensResponse> {
        let trail = self.trail(&request, "access_token.list");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let id: IdentityId = parse(request.get_ref())?;
            trail.target(Principal::Identity(id.clone()).to_string());
            let tokens = self.app.identity_access_tokens(&caller, &id).await?;
            Ok(pb::ListIdentityAccessTokensResponse {
                tokens: tokens.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn renew_access_token(
        &self,
        request: Request<pb::RenewAccessTokenRequest>,
    ) -> Reply<pb::RenewAccessTokenResponse> {
        let trail = self.trail(&request, "access_token.renew");
        let mut on_behalf = false;
        let result = async {
            let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
            on_behalf = !request.get_ref().client_ip.is_empty();
            let token = match request.get_ref().access_token.as_str() {
                "" => bearer(&request)?,
                given => BearerToken::new(given),
            };
            trail.presented(&token);
            let renewed = self.app.renew_access_token(&token, ip).await?;
            trail.verified(&Principal::Identity(renewed.record.identity_id.clone()));
            Ok(pb::RenewAccessTokenResponse {
                access_token: renewed.access_token,
                expires_in: renewed.expires_in,
                access_token_max_ttl: renewed.record.max_ttl_seconds,
                token_type: "Bearer".to_owned(),
            })
        }
        .await;
        self.answer_unless(on_behalf, &trail, result).await
    }

    async fn revoke_access_token(
        &self,
        request: Request<pb::RevokeAccessTokenRequest>,
    ) -> Reply<pb::RevokeAccessTokenResponse> {
        let trail = self.trail(&request, "access_token.revoke");
        let mut on_behalf = false;
        let result = async {
            match parse(request.get_ref())? {
                RevokeTarget::Own(token) => {
                    let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
                    on_behalf = !request.get_ref().client_ip.is_empty();
                    trail.presented(&token);
                    self.app.revoke_own_access_token(&token, ip).await?;
                }
                RevokeTarget::ById(id) => {
                    let caller = self.caller(&request, &trail).await?;
                    trail.target(format!("access-token:{id}"));
                    self.app.revoke_access_token_by_id(&caller, &id).await?;
                }
            }
            Ok(pb::RevokeAccessTokenResponse {})
        }
        .await;
        self.answer_unless(on_behalf, &trail, result).await
    }

    async fn add_identity_to_project(
        &self,
        request: Request<pb::AddIdentityToProjectRequest>,
    ) -> Reply<pb::AddIdentityToProjectResponse> {
        let trail = self.trail(&request, "membership.add");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (project_id, identity_id, role, scopes): (ProjectId, IdentityId, _, _) =
                parse(request.get_ref())?;
            trail.place(project_id.as_str(), "", "");
            trail.target(Principal::Identity(identity_id.clone()).to_string());
            let membership = self
                .app
                .add_identity_to_project(&caller, &project_id, &identity_id, role, scopes)
                .await?;
            Ok(pb::AddIdentityToProjectResponse {
                membership: Some((&membership).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn remove_identity_from_project(
        &self,
        request: Request<pb::RemoveIdentityFromProjectRequest>,
    ) -> Reply<pb::RemoveIdentityFromProjectResponse> {
        let trail = self.trail(&request, "membership.remove");
        let result = async {
            let caller = self.caller(&request, &trail).await?;
            let (project_id, identity_id): (ProjectId, IdentityId) = parse(request.get_ref())?;
            trail.place(project_id.as_str(), "", "");
            trail.target(Principal::Identity(identity_id.clone()).to_string());
            self.app
                .remove_identity_from_project(&caller, &project_id, &identity_id)
                .await?;
            Ok(pb::RemoveIdentityFromProjectResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn lookup_token(
        &self,
        request: Request<pb::LookupTokenRequest>,
    ) -> Reply<pb::LookupTokenResponse> {
        let trail = self.trail(&request, "token.lookup");
        let mut on_behalf = false;
        let result = async {
            let token = bearer(&request)?;
            trail.presented(&token);
            let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
            on_behalf = !request.get_ref().client_ip.is_empty();
            let lookup = self.app.lookup(&token, ip).await?;
            trail.verified(&lookup.caller.principal());
            Ok(lookup::reply(lookup))
        }
        .await;
        self.answer_unless(on_behalf, &trail, result).await
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

    async fn get_audit_reach(
        &self,
        request: Request<pb::GetAuditReachRequest>,
    ) -> Reply<pb::GetAuditReachResponse> {
        // Served where Authorize is, to the same internal caller, which
        // records the audit call it makes this for.
        self.check_gate(&request)?;
        let presented = presented_internal_key(&request);
        let ip = self.client_ip_for(&request, &request.get_ref().client_ip)?;
        let token = BearerToken::new(request.get_ref().token.as_str());
        let reach = self
            .app
            .audit_reach_for(presented.as_deref(), &token, ip)
            .await?;
        Ok(Response::new(audit_reach_pb(&reach)))
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

/// A login's answer, with the trail naming who logged in and the token issued.
fn login_response(
    trail: &latchkey_service_kit::audit::Trail,
    identity: IdentityId,
    issued: crate::app::IssuedAccessToken,
) -> pb::LoginResponse {
    trail.verified(&Principal::Identity(identity.clone()));
    trail.target(format!("access_token:{}", issued.record.id));
    pb::LoginResponse {
        identity_id: identity.into_string(),
        access_token: issued.access_token,
        expires_in: issued.expires_in,
        access_token_max_ttl: issued.record.max_ttl_seconds,
        token_type: "Bearer".to_owned(),
        token_id: issued.record.id.into_string(),
    }
}
