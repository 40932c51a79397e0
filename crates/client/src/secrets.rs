//! Typed secrets calls for either kind of token: a service token's secrets
//! are decrypted here with its key part, an identity token's by the server.

use latchkey_domain::path::{Environment, SecretName, SecretPath};
use latchkey_domain::token::{AnyToken, ServiceTokenSecret};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1 as pb;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::crypto::{PlainSecret, Requested, open_project_key, seal};
use crate::error::ClientError;
use crate::interceptor::Bearer;

/// The generated auth client, calling with a [`Bearer`].
pub type AuthClient = AuthServiceClient<InterceptedService<Channel, Bearer>>;
/// The generated secrets client, calling with a [`Bearer`].
pub type RawSecretsClient = SecretsServiceClient<InterceptedService<Channel, Bearer>>;

/// The token a client calls with, parsed once.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A whole service token: its key part decrypts on this side.
    Service(ServiceTokenSecret),
    /// An identity access token: the server decrypts (projects without e2ee).
    Identity(String),
}

impl Credential {
    /// Parses a token; a service token must be whole (`st.<id>.<secret>.<key>`).
    pub fn parse(token: &str) -> Result<Self, ClientError> {
        match AnyToken::parse(token).map_err(|e| ClientError::Config(e.message))? {
            AnyToken::Service(_) => ServiceTokenSecret::parse(token)
                .map(Credential::Service)
                .map_err(|e| ClientError::Config(e.message)),
            AnyToken::Identity(_) | AnyToken::Jwt(_) => Ok(Credential::Identity(token.to_owned())),
        }
    }

    /// The text sent as the bearer token (a service token without its key part).
    #[must_use]
    pub fn bearer_text(&self) -> String {
        match self {
            Credential::Service(st) => st.access_token(),
            Credential::Identity(t) => t.clone(),
        }
    }
}

/// A folder to read or write: the project (`None`: a service token's own),
/// environment and path, checked and normalised before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The project, required with an identity token.
    pub project_id: Option<String>,
    /// The environment slug.
    pub environment: Environment,
    /// The folder.
    pub path: SecretPath,
}

impl Location {
    /// Parses `environment` and `path`; the errors name the field.
    pub fn new(
        project_id: Option<&str>,
        environment: &str,
        path: &str,
    ) -> Result<Self, latchkey_domain::InvalidInput> {
        Ok(Self {
            project_id: project_id.filter(|p| !p.is_empty()).map(str::to_owned),
            environment: Environment::parse(environment)?,
            path: SecretPath::parse_or_root(path)?,
        })
    }

    fn project(&self) -> String {
        self.project_id.clone().unwrap_or_default()
    }
}

/// Reads and writes secrets, decrypting on this side for service tokens.
#[derive(Debug, Clone)]
pub struct SecretsClient {
    secrets: RawSecretsClient,
    /// Needed to write with a service token (the project key comes from
    /// `LookupToken`, which uses none of the token's uses).
    auth: Option<AuthClient>,
    credential: Credential,
}

impl SecretsClient {
    /// Calls the secrets service over `secrets` with `credential`; give
    /// `auth` (the auth service) to write with a service token.
    pub fn new(
        secrets: Channel,
        auth: Option<Channel>,
        credential: Credential,
        bearer: Bearer,
    ) -> Self {
        Self {
            secrets: SecretsServiceClient::with_interceptor(secrets, bearer.clone()),
            auth: auth.map(|a| AuthServiceClient::with_interceptor(a, bearer)),
            credential,
        }
    }

    /// The generated client underneath, for calls this type does not wrap.
    pub fn raw(&mut self) -> &mut RawSecretsClient {
        &mut self.secrets
    }

    /// The secrets of a folder and, when `recursive`, of the folders below
    /// it that the token may read.
    pub async fn list(
        &mut self,
        at: &Location,
        recursive: bool,
    ) -> Result<Vec<PlainSecret>, ClientError> {
        let request = pb::ListSecretsRequest {
            project_id: at.project(),
            environment: at.environment.as_str().to_owned(),
            secret_path: at.path.as_str().to_owned(),
            recursive,
        };
        match &self.credential {
            Credential::Service(st) => {
                let reply = self.secrets.list_secrets(request).await?.into_inner();
                let key = open_project_key(st, reply.encrypted_project_key.map(Into::into))?;
                Requested::check_project(at.project_id.as_deref(), &reply.project_id)?;
                let asked = requested(at, &reply.project_id, None, recursive);
                reply.secrets.iter().map(|s| asked.open(&key, s)).collect()
            }
            Credential::Identity(_) => Ok(self
                .secrets
                .list_secrets_raw(request)
                .await?
                .into_inner()
                .secrets
                .into_iter()
                .map(PlainSecret::from)
                .collect()),
        }
    }

    /// One secret.
    pub async fn get(
        &mut self,
        at: &Location,
        name: &SecretName,
    ) -> Result<PlainSecret, ClientError> {
        let request = pb::GetSecretRequest {
            project_id: at.project(),
            environment: at.environment.as_str().to_owned(),
            secret_path: at.path.as_str().to_owned(),
            name: name.as_str().to_owned(),
        };
        match &self.credential {
            Credential::Service(st) => {
                let reply = self.secrets.get_secret(request).await?.into_inner();
                let key = open_project_key(st, reply.encrypted_project_key.map(Into::into))?;
                Requested::check_project(at.project_id.as_deref(), &reply.project_id)?;
                let asked = requested(at, &reply.project_id, Some(name.as_str()), false);
                asked.open(&key, &reply.secret.unwrap_or_default())
            }
            Credential::Identity(_) => Ok(self
                .secrets
                .get_secret_raw(request)
                .await?
                .into_inner()
                .secret
                .unwrap_or_default()
                .into()),
        }
    }

    /// Writes each `(name, value)` as the secret's next version; returns
    /// the versions written, in order.
    pub async fn set(
        &mut self,
        at: &Location,
        pairs: &[(SecretName, String)],
    ) -> Result<Vec<u64>, ClientError> {
        let mut versions = Vec::with_capacity(pairs.len());
        match &self.credential {
            Credential::Service(st) => {
                let auth = self.auth.as_mut().ok_or_else(|| {
                    ClientError::Config(
                        "writing with a service token needs the auth service's address".to_owned(),
                    )
                })?;
                let lookup = auth
                    .lookup_token(auth_pb::LookupTokenRequest::default())
                    .await?
                    .into_inner();
                let key = open_project_key(st, lookup.encrypted_project_key.map(Into::into))?;
                Requested::check_project(at.project_id.as_deref(), &lookup.project_id)?;
                for (name, value) in pairs {
                    let (env, path) = (at.environment.as_str(), at.path.as_str());
                    let sealed = seal(&key, &lookup.project_id, env, path, name.as_str(), value)?;
                    let stored = self
                        .secrets
                        .set_secret(pb::SetSecretRequest {
                            project_id: lookup.project_id.clone(),
                            environment: env.to_owned(),
                            secret_path: path.to_owned(),
                            name: name.as_str().to_owned(),
                            ciphertext: sealed.ciphertext,
                            iv: sealed.iv,
                            tag: sealed.tag,
                        })
                        .await?
                        .into_inner();
                    versions.push(stored.secret.map_or(0, |s| s.version));
                }
            }
            Credential::Identity(_) => {
                for (name, value) in pairs {
                    let reply = self
                        .secrets
                        .set_secret_raw(pb::SetSecretRawRequest {
                            project_id: at.project(),
                            environment: at.environment.as_str().to_owned(),
                            secret_path: at.path.as_str().to_owned(),
                            name: name.as_str().to_owned(),
                            value: value.clone(),
                        })
                        .await?
                        .into_inner();
                    versions.push(reply.version);
                }
            }
        }
        Ok(versions)
    }

    /// Deletes a secret.
    pub async fn delete(&mut self, at: &Location, name: &SecretName) -> Result<(), ClientError> {
        self.secrets
            .delete_secret(pb::DeleteSecretRequest {
                project_id: at.project(),
                environment: at.environment.as_str().to_owned(),
                secret_path: at.path.as_str().to_owned(),
                name: name.as_str().to_owned(),
            })
            .await?;
        Ok(())
    }
}

fn requested<'a>(
    at: &'a Location,
    project_id: &'a str,
    name: Option<&'a str>,
    recursive: bool,
) -> Requested<'a> {
    Requested {
        project_id,
        environment: at.environment.as_str(),
        path: at.path.as_str(),
        name,
        recursive,
    }
}
