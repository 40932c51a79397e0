//! The tonic `SecretsService`: parse the request into domain types, apply the
//! use case, encode the reply.

use std::sync::Arc;

use latchkey_domain::InvalidInput;
use latchkey_domain::crypto::Sealed;
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::ports::Authorizer;
use latchkey_proto::secrets::v1 as pb;
use latchkey_proto::secrets::v1::secrets_service_server::SecretsService;
use latchkey_service_kit::request::{bearer_token, client_ip};
use latchkey_store::secrets::SecretRecord;
use tonic::{Request, Response, Status};

use crate::app::{Caller, Folder, PlainSecret, SecretsApp};
use crate::error::SecretsError;

/// The gRPC face of [`SecretsApp`].
#[derive(Debug)]
pub struct SecretsGrpc<A> {
    app: Arc<SecretsApp<A>>,
    trusted_proxies: TrustedIps,
}

impl<A> SecretsGrpc<A> {
    /// Serves `app`, honouring `x-forwarded-for` only from `trusted_proxies`.
    #[must_use]
    pub fn new(app: Arc<SecretsApp<A>>, trusted_proxies: TrustedIps) -> Self {
        Self {
            app,
            trusted_proxies,
        }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, SecretsError> {
        Ok(Caller {
            token: bearer_token(request.metadata())?,
            ip: client_ip(
                request.remote_addr().map(|a| a.ip()),
                request.metadata(),
                &self.trusted_proxies,
            ),
        })
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<A: Authorizer> SecretsService for SecretsGrpc<A> {
    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let (grant, records) = self
            .app
            .list(&caller, &folder, req.recursive, false)
            .await?;
        Ok(Response::new(pb::ListSecretsResponse {
            project_id: grant.project_id,
            secrets: records.iter().map(secret_pb).collect(),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(sealed_pb),
        }))
    }

    async fn get_secret(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let name = SecretName::parse(&req.name).map_err(SecretsError::from)?;
        let (grant, record) = self.app.get(&caller, &folder, &name, false).await?;
        Ok(Response::new(pb::GetSecretResponse {
            project_id: grant.project_id,
            secret: Some(secret_pb(&record)),
            encrypted_project_key: grant.encrypted_project_key.as_ref().map(sealed_pb),
        }))
    }

    async fn set_secret(
        &self,
        request: Request<pb::SetSecretRequest>,
    ) -> Reply<pb::SetSecretResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let name = SecretName::parse(&req.name).map_err(SecretsError::from)?;
        let sealed = Sealed {
            ciphertext: req.ciphertext,
            iv: req.iv,
            tag: req.tag,
        };
        let record = self.app.set(&caller, &folder, &name, sealed).await?;
        Ok(Response::new(pb::SetSecretResponse {
            secret: Some(secret_pb(&record)),
        }))
    }

    async fn delete_secret(
        &self,
        request: Request<pb::DeleteSecretRequest>,
    ) -> Reply<pb::DeleteSecretResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let name = SecretName::parse(&req.name).map_err(SecretsError::from)?;
        self.app.delete(&caller, &folder, &name).await?;
        Ok(Response::new(pb::DeleteSecretResponse {}))
    }

    async fn list_secrets_raw(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Reply<pb::ListSecretsRawResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let (grant, records) = self.app.list(&caller, &folder, req.recursive, true).await?;
        let plain = SecretsApp::<A>::decrypt(&grant, records)?;
        Ok(Response::new(pb::ListSecretsRawResponse {
            project_id: grant.project_id,
            secrets: plain.iter().map(raw_pb).collect(),
        }))
    }

    async fn get_secret_raw(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Reply<pb::GetSecretRawResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let name = SecretName::parse(&req.name).map_err(SecretsError::from)?;
        let (grant, record) = self.app.get(&caller, &folder, &name, true).await?;
        let plain = SecretsApp::<A>::decrypt(&grant, vec![record])?;
        Ok(Response::new(pb::GetSecretRawResponse {
            project_id: grant.project_id,
            secret: plain.first().map(raw_pb),
        }))
    }

    async fn set_secret_raw(
        &self,
        request: Request<pb::SetSecretRawRequest>,
    ) -> Reply<pb::SetSecretRawResponse> {
        let caller = self.caller(&request)?;
        let req = request.into_inner();
        let folder = folder(&req.project_id, &req.environment, &req.secret_path)?;
        let name = SecretName::parse(&req.name).map_err(SecretsError::from)?;
        let record = self
            .app
            .set_raw(&caller, &folder, &name, &req.value)
            .await?;
        Ok(Response::new(pb::SetSecretRawResponse {
            version: record.version,
        }))
    }
}

fn folder(project_id: &str, environment: &str, path: &str) -> Result<Folder, SecretsError> {
    let project_id = project_id.trim();
    if !project_id.is_empty() && uuid::Uuid::parse_str(project_id).is_err() {
        return Err(InvalidInput::new(
            "project_id",
            format!("{project_id:?} is not a project id (a UUID)"),
        )
        .into());
    }
    Ok(Folder {
        project_id: Some(project_id.to_owned()).filter(|p| !p.is_empty()),
        environment: Environment::parse(environment)?,
        path: SecretPath::parse(if path.is_empty() { "/" } else { path })?,
    })
}

fn sealed_pb(sealed: &Sealed) -> pb::EncryptedProjectKey {
    pb::EncryptedProjectKey {
        ciphertext: sealed.ciphertext.clone(),
        iv: sealed.iv.clone(),
        tag: sealed.tag.clone(),
    }
}

fn secret_pb(record: &SecretRecord) -> pb::Secret {
    pb::Secret {
        name: record.key.name.as_str().to_owned(),
        environment: record.key.environment.as_str().to_owned(),
        secret_path: record.key.path.as_str().to_owned(),
        ciphertext: record.sealed.ciphertext.clone(),
        iv: record.sealed.iv.clone(),
        tag: record.sealed.tag.clone(),
        version: record.version,
    }
}

fn raw_pb(plain: &PlainSecret) -> pb::SecretRaw {
    pb::SecretRaw {
        name: plain.record.key.name.as_str().to_owned(),
        environment: plain.record.key.environment.as_str().to_owned(),
        secret_path: plain.record.key.path.as_str().to_owned(),
        value: plain.value.clone(),
        version: plain.record.version,
    }
}
