//! The tonic `SecretsService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use latchkey_domain::InvalidInput;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::Folder;
use latchkey_domain::path::SecretName;
use latchkey_proto::secrets::v1 as pb;
use latchkey_proto::secrets::v1::secrets_service_server::SecretsService;
use latchkey_service_kit::audit::Trail;
use latchkey_service_kit::request::bearer_token;
use tonic::{Request, Response, Status};

use crate::app::{Caller, SecretsApp};
use crate::error::SecretsError;

/// The gRPC face of [`SecretsApp`].
#[derive(Debug)]
pub struct SecretsGrpc {
    app: Arc<SecretsApp>,
    trusted_proxies: TrustedIps,
}

impl SecretsGrpc {
    /// Serves `app`, honouring `x-forwarded-for` only from `trusted_proxies`.
    #[must_use]
    pub fn new(app: Arc<SecretsApp>, trusted_proxies: TrustedIps) -> Self {
        Self {
            app,
            trusted_proxies,
        }
    }

    /// The call's audit trail, and its caller when its token is well formed.
    fn caller<T>(&self, request: &Request<T>) -> (Arc<Trail>, Result<Caller, SecretsError>) {
        let trail =
            Arc::new(Trail::of_grpc(request, &self.trusted_proxies).watched_by(self.app.audit()));
        let caller = bearer_token(request.metadata().as_ref())
            .map(|token| Caller::new(token, trail.clone()))
            .map_err(SecretsError::from);
        (trail, caller)
    }

    /// Records the call, then answers it: `AUDIT_UNAVAILABLE` instead when
    /// its event could not be recorded.
    async fn answer<T>(&self, trail: &Trail, result: Result<T, SecretsError>) -> Reply<T> {
        let refused = result.as_ref().err().map(|e| e.outcome().reason());
        self.app
            .audit()
            .close(trail, refused)
            .await
            .map_err(SecretsError::from)?;
        Ok(Response::new(result?))
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SecretsService for SecretsGrpc {
    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, recursive) = parse(request.get_ref())?;
            let (grant, secrets) = self.app.list(&caller, &folder, recursive).await?;
            Ok(pb::ListSecretsResponse {
                project_id: grant.project_id.into_string(),
                secrets: secrets.iter().map(Into::into).collect(),
                encrypted_project_key: grant.encrypted_project_key.as_ref().map(Into::into),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_secret(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
            let (grant, secret) = self.app.get(&caller, &folder, &name).await?;
            Ok(pb::GetSecretResponse {
                project_id: grant.project_id.into_string(),
                secret: Some((&secret).into()),
                encrypted_project_key: grant.encrypted_project_key.as_ref().map(Into::into),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn set_secret(
        &self,
        request: Request<pb::SetSecretRequest>,
    ) -> Reply<pb::SetSecretResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
            let sealed = request.into_inner().into();
            let secret = self.app.set(&caller, &folder, &name, sealed).await?;
            Ok(pb::SetSecretResponse {
                secret: Some((&secret).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn delete_secret(
        &self,
        request: Request<pb::DeleteSecretRequest>,
    ) -> Reply<pb::DeleteSecretResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
            self.app.delete(&caller, &folder, &name).await?;
            Ok(pb::DeleteSecretResponse {})
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn list_secrets_raw(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsRawResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, recursive) = parse(request.get_ref())?;
            let (grant, plain) = self.app.list_raw(&caller, &folder, recursive).await?;
            Ok(pb::ListSecretsRawResponse {
                project_id: grant.project_id.into_string(),
                secrets: plain.iter().map(Into::into).collect(),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn get_secret_raw(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretRawResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
            let (grant, plain) = self.app.get_raw(&caller, &folder, &name).await?;
            Ok(pb::GetSecretRawResponse {
                project_id: grant.project_id.into_string(),
                secret: Some((&plain).into()),
            })
        }
        .await;
        self.answer(&trail, result).await
    }

    async fn set_secret_raw(
        &self,
        request: Request<pb::SetSecretRawRequest>,
    ) -> Reply<pb::SetSecretRawResponse> {
        let (trail, caller) = self.caller(&request);
        let result = async {
            let caller = caller?;
            let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
            let value = &request.get_ref().value;
            let secret = self.app.set_raw(&caller, &folder, &name, value).await?;
            Ok(pb::SetSecretRawResponse {
                version: secret.version,
            })
        }
        .await;
        self.answer(&trail, result).await
    }
}

/// A request's arguments in domain types, or `INVALID_ARGUMENT` naming the field.
fn parse<'a, R, T>(req: &'a R) -> Result<T, SecretsError>
where
    T: TryFrom<&'a R, Error = InvalidInput>,
{
    Ok(T::try_from(req)?)
}
