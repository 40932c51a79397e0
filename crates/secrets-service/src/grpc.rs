//! The tonic `SecretsService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use latchkey_domain::InvalidInput;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::model::Folder;
use latchkey_domain::path::SecretName;
use latchkey_proto::secrets::v1 as pb;
use latchkey_proto::secrets::v1::secrets_service_server::SecretsService;
use latchkey_service_kit::request::{bearer_token, client_ip};
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

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, SecretsError> {
        Ok(Caller {
            token: bearer_token(request.metadata().as_ref())?,
            ip: client_ip(
                request.remote_addr().map(|a| a.ip()),
                request.metadata().as_ref(),
                &self.trusted_proxies,
            ),
        })
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SecretsService for SecretsGrpc {
    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsResponse> {
        let caller = self.caller(&request)?;
        let (folder, recursive) = parse(request.get_ref())?;
        let (grant, secrets) = self.app.list(&caller, &folder, recursive).await?;
        Ok(Response::new(pb::ListSecretsResponse {
            project_id: grant.project_id.into_string(),
            secrets: secrets.iter().map(Into::into).collect(),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(Into::into),
        }))
    }

    async fn get_secret(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretResponse> {
        let caller = self.caller(&request)?;
        let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
        let (grant, secret) = self.app.get(&caller, &folder, &name).await?;
        Ok(Response::new(pb::GetSecretResponse {
            project_id: grant.project_id.into_string(),
            secret: Some((&secret).into()),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(Into::into),
        }))
    }

    async fn set_secret(
        &self,
        request: Request<pb::SetSecretRequest>,
    ) -> Reply<pb::SetSecretResponse> {
        let caller = self.caller(&request)?;
        let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
        let sealed = request.into_inner().into();
        let secret = self.app.set(&caller, &folder, &name, sealed).await?;
        Ok(Response::new(pb::SetSecretResponse {
            secret: Some((&secret).into()),
        }))
    }

    async fn delete_secret(
        &self,
        request: Request<pb::DeleteSecretRequest>,
    ) -> Reply<pb::DeleteSecretResponse> {
        let caller = self.caller(&request)?;
        let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
        self.app.delete(&caller, &folder, &name).await?;
        Ok(Response::new(pb::DeleteSecretResponse {}))
    }

    async fn list_secrets_raw(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsRawResponse> {
        let caller = self.caller(&request)?;
        let (folder, recursive) = parse(request.get_ref())?;
        let (grant, plain) = self.app.list_raw(&caller, &folder, recursive).await?;
        Ok(Response::new(pb::ListSecretsRawResponse {
            project_id: grant.project_id.into_string(),
            secrets: plain.iter().map(Into::into).collect(),
        }))
    }

    async fn get_secret_raw(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretRawResponse> {
        let caller = self.caller(&request)?;
        let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
        let (grant, plain) = self.app.get_raw(&caller, &folder, &name).await?;
        Ok(Response::new(pb::GetSecretRawResponse {
            project_id: grant.project_id.into_string(),
            secret: Some((&plain).into()),
        }))
    }

    async fn set_secret_raw(
        &self,
        request: Request<pb::SetSecretRawRequest>,
    ) -> Reply<pb::SetSecretRawResponse> {
        let caller = self.caller(&request)?;
        let (folder, name): (Folder, SecretName) = parse(request.get_ref())?;
        let value = &request.get_ref().value;
        let secret = self.app.set_raw(&caller, &folder, &name, value).await?;
        Ok(Response::new(pb::SetSecretRawResponse {
            version: secret.version,
        }))
    }
}

/// A request's arguments in domain types, or `INVALID_ARGUMENT` naming the field.
fn parse<'a, R, T>(req: &'a R) -> Result<T, SecretsError>
where
    T: TryFrom<&'a R, Error = InvalidInput>,
{
    Ok(T::try_from(req)?)
}
