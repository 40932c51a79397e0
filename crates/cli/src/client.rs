//! Connections to the services, with the caller's token attached, and the
//! CLI's error type.

use latchkey_domain::Reason;
use latchkey_domain::error::StatusClass;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

/// A failure, with the exit code class it belongs to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad flags or input, refused before any call.
    #[error("error: {0}")]
    Input(String),
    /// A denial or failure reported by a service.
    #[error("error: {reason}: {message}{hint}")]
    Server {
        reason: String,
        message: String,
        hint: String,
        exit: u8,
    },
    /// A service could not be reached.
    #[error(
        "error: cannot reach {addr}: {cause}\nhint: is `make run` running? Set --auth-addr/--secrets-addr or LATCHKEY_AUTH_ADDR/LATCHKEY_SECRETS_ADDR."
    )]
    Unreachable { addr: String, cause: String },
    /// Data from the server did not decrypt with the token's key.
    #[error("error: {0}")]
    Crypto(String),
}

impl CliError {
    /// Exit codes: 2 input, 3 authentication, 4 permission, 5 unavailable, 1 anything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Server { exit, .. } => *exit,
            CliError::Unreachable { .. } => 5,
            CliError::Crypto(_) => 1,
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let reason = status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_else(|| format!("{:?}", status.code()).to_uppercase());
        let known = Reason::from_wire(&reason);
        let exit = match known.map(Reason::status_class) {
            Some(StatusClass::Unauthenticated) => 3,
            Some(StatusClass::PermissionDenied | StatusClass::FailedPrecondition) => 4,
            Some(StatusClass::Unavailable) => 5,
            None => match status.code() {
                tonic::Code::InvalidArgument => 2,
                tonic::Code::Unauthenticated => 3,
                tonic::Code::PermissionDenied => 4,
                tonic::Code::Unavailable => 5,
                _ => 1,
            },
        };
        let hint = match known {
            Some(Reason::TokenExpired) => {
                "\nhint: the token expired; create a new one with `latchkey service-token create`"
            }
            Some(Reason::TokenMalformed) => {
                "\nhint: pass the whole token with --token or LATCHKEY_TOKEN"
            }
            Some(Reason::ScopeDenied) => {
                "\nhint: ask for a path inside the token's scopes, or create a token whose --scope covers it"
            }
            Some(Reason::IpNotTrusted) => {
                "\nhint: the IP above is the one the server saw; add it to the token's or project's trusted IPs"
            }
            Some(Reason::E2eeEnabled) => {
                "\nhint: use a service token (client-side decryption) or a project without e2ee"
            }
            Some(Reason::AuthUnavailable) => {
                "\nhint: the secrets service cannot reach the auth service; check that both are running"
            }
            _ => "",
        };
        CliError::Server {
            reason,
            message: status.message().to_owned(),
            hint: hint.to_owned(),
            exit,
        }
    }
}

/// Attaches `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug)]
pub(crate) struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub(crate) type AuthClient = AuthServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type SecretsClient = SecretsServiceClient<InterceptedService<Channel, Bearer>>;

async fn channel(addr: &str) -> Result<Channel, CliError> {
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let unreachable = |cause: String| CliError::Unreachable {
        addr: url.clone(),
        cause,
    };
    Endpoint::from_shared(url.clone())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))
}

fn bearer(token: Option<&str>) -> Result<Bearer, CliError> {
    token
        .map(|t| {
            MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| {
                CliError::Input("the token holds characters that cannot be sent".to_owned())
            })
        })
        .transpose()
        .map(Bearer)
}

pub(crate) async fn auth(addr: &str, token: Option<&str>) -> Result<AuthClient, CliError> {
    Ok(AuthServiceClient::with_interceptor(
        channel(addr).await?,
        bearer(token)?,
    ))
}

pub(crate) async fn secrets(addr: &str, token: Option<&str>) -> Result<SecretsClient, CliError> {
    Ok(SecretsServiceClient::with_interceptor(
        channel(addr).await?,
        bearer(token)?,
    ))
}
