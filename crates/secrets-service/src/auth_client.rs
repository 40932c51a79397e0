//! `Authorizer` over gRPC: asks the auth service and fails closed.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use std::net::IpAddr;

use latchkey_domain::audit::AuditKey;
use latchkey_domain::audit::reach::AuditReader;
use latchkey_domain::model::{IdentityId, ProjectId};
use latchkey_domain::ports::{
    AuthorizationRequest, AuthorizeError, Authorizer, BearerToken, Grant, LoggedIn,
    LoginCredentials, Renewed, ServiceTokenDetails,
};
use latchkey_domain::scope::ScopeCache;
use latchkey_domain::{AccessError, InvalidInput, Reason};
use latchkey_proto::INTERNAL_KEY_HEADER;
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::convert::auth::audit_reach;
use latchkey_proto::convert::auth::{grant_scopes, service_token_details};
use latchkey_service_kit::config::InternalKey;
use latchkey_service_kit::status::access_error_of;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_types::StatusExt;

/// TLS to the auth service: the CA its certificate chains to (else the
/// system roots) and, for mTLS, this service's client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthTlsFiles {
    /// `LATCHKEY_AUTH_CA_FILE`.
    pub ca: Option<PathBuf>,
    /// `LATCHKEY_AUTH_CLIENT_CERT_FILE`.
    pub client_cert: Option<PathBuf>,
    /// `LATCHKEY_AUTH_CLIENT_KEY_FILE`.
    pub client_key: Option<PathBuf>,
}

impl AuthTlsFiles {
    /// The files' bytes, to notice a change; never logged.
    fn read(&self) -> std::io::Result<Vec<Vec<u8>>> {
        [&self.ca, &self.client_cert, &self.client_key]
            .into_iter()
            .flatten()
            .map(std::fs::read)
            .collect()
    }

    fn config(&self) -> std::io::Result<ClientTlsConfig> {
        let mut config = match &self.ca {
            Some(ca) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca)?))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(Identity::from_pem(
                std::fs::read(cert)?,
                std::fs::read(key)?,
            ));
        }
        Ok(config)
    }
}

/// The auth service's `Authorize`, called with the internal key.
#[derive(Debug, Clone)]
pub struct GrpcAuthorizer {
    client: Arc<RwLock<AuthServiceClient<Channel>>>,
    internal_key: InternalKey,
    /// Grants' scope lists, compiled once per distinct list rather than on
    /// every call (the same token's grant arrives thousands of times a second).
    scopes: Arc<ScopeCache>,
}

impl GrpcAuthorizer {
    /// A client of the auth service at `url` (connected lazily, so the
    /// secrets service starts even while the auth service is down).
    pub fn new(
        url: &str,
        internal_key: InternalKey,
        timeout: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: Arc::new(RwLock::new(AuthServiceClient::new(channel(
                url, timeout, None,
            )?))),
            internal_key,
            scopes: Arc::default(),
        })
    }

    /// The same over TLS from `files`, which are reread every `reload`: a
    /// renewed client certificate or CA is used from the next connection.
    pub fn with_tls(
        url: &str,
        internal_key: InternalKey,
        timeout: Duration,
        files: AuthTlsFiles,
        reload: Duration,
    ) -> Result<Self, AuthClientError> {
        let config = files.config().map_err(AuthClientError::Files)?;
        let authorizer = Self {
            client: Arc::new(RwLock::new(AuthServiceClient::new(channel(
                url,
                timeout,
                Some(config),
            )?))),
            internal_key,
            scopes: Arc::default(),
        };
        let client = Arc::downgrade(&authorizer.client);
        let url = url.to_owned();
        let mut seen = files.read().map_err(AuthClientError::Files)?;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reload);
            tick.tick().await;
            loop {
                tick.tick().await;
                // Stops with the last authorizer.
                let Some(client) = client.upgrade() else {
                    break;
                };
                let Ok(now) = files.read() else {
                    tracing::warn!("auth client TLS files unreadable; keeping the previous ones");
                    continue;
                };
                if now == seen {
                    continue;
                }
                match files
                    .config()
                    .map_err(AuthClientError::Files)
                    .and_then(|c| Ok(channel(&url, timeout, Some(c))?))
                {
                    Ok(fresh) => {
                        if let Ok(mut current) = client.write() {
                            *current = AuthServiceClient::new(fresh);
                        }
                        seen = now;
                        tracing::info!("auth client TLS certificates reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "auth client TLS files changed but do not load; keeping the previous ones")
                    }
                }
            }
        });
        Ok(authorizer)
    }

    fn client(&self) -> AuthServiceClient<Channel> {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Why the auth client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthClientError {
    /// The TLS files could not be read.
    #[error("auth client TLS files: {0}")]
    Files(std::io::Error),
    /// The URL or the TLS settings are not usable.
    #[error("auth client: {0}")]
    Transport(#[from] tonic::transport::Error),
}

fn channel(
    url: &str,
    timeout: Duration,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(timeout)
        .timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect_lazy())
}

#[async_trait::async_trait]
impl Authorizer for GrpcAuthorizer {
    async fn authorize(&self, req: AuthorizationRequest) -> Result<Grant, AuthorizeError> {
        let request = self.internal(pb::AuthorizeRequest::from(&req))?;
        let mut reply = self
            .client()
            .authorize(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        let malformed = |e: InvalidInput| {
            tracing::warn!(field = %e.field, "auth service sent a malformed grant");
            unavailable(&format!("the auth service sent a malformed {}", e.field))
        };
        let listed = std::mem::take(&mut reply.scopes);
        let mut grant = Grant::try_from(reply).map_err(malformed)?;
        grant.scopes = self
            .scopes
            .get_or_parse(&scope_key(&listed), || grant_scopes(&listed))
            .map_err(malformed)?;
        Ok(grant)
    }

    async fn describe(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<ServiceTokenDetails>, AuthorizeError> {
        let mut request = self.internal(pb::LookupTokenRequest {
            client_ip: ip_text(client_ip),
        })?;
        let bearer =
            MetadataValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                AccessError::new(Reason::TokenMalformed, "the token is not valid header text")
            })?;
        request.metadata_mut().insert("authorization", bearer);
        let reply = self
            .client()
            .lookup_token(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        service_token_details(reply).map_err(|e| {
            tracing::warn!(field = %e.field, "auth service sent a malformed token description");
            unavailable(&format!("the auth service sent a malformed {}", e.field)).into()
        })
    }

    async fn renew(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<Renewed, AuthorizeError> {
        let request = self.internal(pb::RenewAccessTokenRequest {
            access_token: token.expose().to_owned(),
            client_ip: ip_text(client_ip),
        })?;
        let reply = self
            .client()
            .renew_access_token(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        Ok(Renewed {
            access_token: BearerToken::new(&reply.access_token),
            expires_in: reply.expires_in,
            max_ttl: reply.access_token_max_ttl,
        })
    }

    async fn login(
        &self,
        credentials: LoginCredentials,
        client_ip: Option<IpAddr>,
    ) -> Result<LoggedIn, AuthorizeError> {
        let client_ip = ip_text(client_ip);
        let reply = match credentials {
            LoginCredentials::UniversalAuth {
                client_id,
                client_secret,
            } => {
                let request = self.internal(pb::LoginUniversalAuthRequest {
                    client_id,
                    client_secret,
                    client_ip,
                })?;
                self.client().login_universal_auth(request).await
            }
            LoginCredentials::KubernetesAuth { identity_id, jwt } => {
                let request = self.internal(pb::LoginKubernetesAuthRequest {
                    identity_id,
                    jwt,
                    client_ip,
                })?;
                self.client().login_kubernetes_auth(request).await
            }
        }
        .map_err(|status| authorize_error(&status))?
        .into_inner();
        Ok(LoggedIn {
            identity_id: IdentityId::from_stored(reply.identity_id),
            token: Renewed {
                access_token: BearerToken::new(&reply.access_token),
                expires_in: reply.expires_in,
                max_ttl: reply.access_token_max_ttl,
            },
        })
    }

    async fn revoke(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<(), AuthorizeError> {
        let request = self.internal(pb::RevokeAccessTokenRequest {
            access_token: token.expose().to_owned(),
            token_id: String::new(),
            client_ip: ip_text(client_ip),
        })?;
        self.client()
            .revoke_access_token(request)
            .await
            .map_err(|status| authorize_error(&status))?;
        Ok(())
    }

    async fn count_encryptions(
        &self,
        project_id: &ProjectId,
        count: u64,
    ) -> Result<(), AuthorizeError> {
        let request = self.internal(pb::CountEncryptionsRequest {
            project_id: project_id.as_str().to_owned(),
            count,
        })?;
        self.client()
            .count_encryptions(request)
            .await
            .map_err(|status| authorize_error(&status))?;
        Ok(())
    }

    async fn audit_key(&self) -> Result<AuditKey, AuthorizeError> {
        let request = self.internal(pb::GetAuditKeyRequest {})?;
        let reply = self
            .client()
            .get_audit_key(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        let bytes: [u8; 32] = reply
            .audit_key
            .try_into()
            .map_err(|_| unavailable("the auth service sent an audit key that is not 32 bytes"))?;
        Ok(AuditKey::from_bytes(bytes))
    }

    async fn audit_reach(
        &self,
        token: BearerToken,
        client_ip: Option<IpAddr>,
    ) -> Result<AuditReader, AuthorizeError> {
        let request = self.internal(pb::GetAuditReachRequest {
            token: token.expose().to_owned(),
            client_ip: ip_text(client_ip),
        })?;
        let reply = self
            .client()
            .get_audit_reach(request)
            .await
            .map_err(|status| authorize_error(&status))?
            .into_inner();
        audit_reach(reply).map_err(|e| {
            unavailable(&format!(
                "the auth service sent an audit reach that does not parse: {e}"
            ))
            .into()
        })
    }
}

impl GrpcAuthorizer {
    /// `body` as an internal call: the internal key, and the current span's
    /// trace context so the auth service's span joins this call's trace.
    fn internal<T>(&self, body: T) -> Result<tonic::Request<T>, AuthorizeError> {
        let mut request = tonic::Request::new(body);
        let key = MetadataValue::try_from(self.internal_key.expose()).map_err(|_| {
            unavailable("the internal key is not valid metadata; check LATCHKEY_INTERNAL_KEY")
        })?;
        request.metadata_mut().insert(INTERNAL_KEY_HEADER, key);
        latchkey_service_kit::telemetry::inject_trace_context(request.metadata_mut());
        Ok(request)
    }
}

/// A client address as the auth service's internal `client_ip` fields take it.
fn ip_text(ip: Option<IpAddr>) -> String {
    ip.map(|ip| ip.to_string()).unwrap_or_default()
}

/// A scope list's cache key: its environments and globs, which hold no `\0`.
fn scope_key(scopes: &[pb::Scope]) -> String {
    scopes
        .iter()
        .flat_map(|s| [s.environment.as_str(), s.secret_path.as_str()])
        .collect::<Vec<_>>()
        .join("\0")
}

/// A status from `Authorize` as the domain error: denials and bad input keep
/// their meaning; anything else means no decision, so the call fails closed.
fn authorize_error(status: &tonic::Status) -> AuthorizeError {
    if let Some(denial) = access_error_of(status) {
        return denial.into();
    }
    match status.code() {
        tonic::Code::InvalidArgument => {
            let field = status.get_error_details().bad_request().and_then(|b| {
                b.field_violations
                    .first()
                    .map(|v| (v.field.clone(), v.description.clone()))
            });
            match field {
                Some((field, description)) => InvalidInput::new(field, description).into(),
                None => InvalidInput::new("request", status.message()).into(),
            }
        }
        tonic::Code::NotFound => AuthorizeError::NotFound(status.message().to_owned()),
        code => {
            tracing::warn!(code = ?code, "auth service did not answer Authorize");
            unavailable(&format!(
                "the auth service could not authorize the call ({code:?}); try again later"
            ))
            .into()
        }
    }
}

fn unavailable(message: &str) -> AccessError {
    AccessError::new(Reason::AuthUnavailable, message)
}
