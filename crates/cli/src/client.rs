//! Connections to the services, with the caller's token attached, and the
//! CLI's error type.

use std::path::PathBuf;

use latchkey_domain::Reason;
use latchkey_domain::crypto::{Sealed, WireKey};
use latchkey_domain::error::StatusClass;
use latchkey_domain::token::ServiceTokenSecret;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::secrets::v1::secrets_service_client::SecretsServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
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
    /// The connection broke during a call: usually TLS settings that do
    /// not match the server's.
    #[error(
        "error: the connection failed: {cause}\nhint: check the address and TLS settings: --tls or --ca-cert for a TLS server, --client-cert and --client-key where it requires mTLS, http:// for a plaintext one"
    )]
    Connection { cause: String },
    /// Data from the server did not decrypt with the token's key.
    #[error("error: {0}")]
    Crypto(String),
    /// The service token's key part does not open its project key: the
    /// servers never see the key part, so only the client can tell.
    #[error(
        "error: TOKEN_KEY_DAMAGED: the key part of this service token (after its last '.') does not open the token's project key\nhint: the token was damaged or mistyped: copy it whole again, as it was issued"
    )]
    DamagedKeyPart,
    /// `latchkey run` could not start the command.
    #[error("error: cannot run {program:?}: {cause}")]
    Spawn {
        program: String,
        cause: String,
        exit: u8,
    },
}

impl CliError {
    /// Exit codes: 2 input, 3 authentication, 4 permission, 5 unavailable,
    /// 126/127 a command `latchkey run` could not start (as shells do), 1
    /// anything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Server { exit, .. } => *exit,
            CliError::Unreachable { .. } | CliError::Connection { .. } => 5,
            CliError::Crypto(_) => 1,
            CliError::DamagedKeyPart => 3,
            CliError::Spawn { exit, .. } => *exit,
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let info = status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone());
        // A status the server sent has no source; one with a source was made
        // on this side from a broken connection.
        if info.is_none() && std::error::Error::source(&status).is_some() {
            return CliError::Connection {
                cause: error_chain(status.message(), std::error::Error::source(&status)),
            };
        }
        let reason = info.unwrap_or_else(|| format!("{:?}", status.code()).to_uppercase());
        let known = Reason::from_wire(&reason);
        let exit = match known.map(Reason::status_class) {
            Some(StatusClass::Unauthenticated) => 3,
            Some(StatusClass::PermissionDenied | StatusClass::FailedPrecondition) => 4,
            // Temporary, like an unavailable service: retry after the delay.
            Some(StatusClass::Unavailable | StatusClass::ResourceExhausted) => 5,
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
                "\nhint: the token expired; create a new one (`latchkey service-token create`, or `latchkey identity token create` for an identity)"
            }
            Some(Reason::TokenMalformed) => {
                "\nhint: pass the whole token with --token, LATCHKEY_TOKEN or `latchkey login`"
            }
            Some(Reason::TokenInvalid) => {
                "\nhint: the token is unknown or mistyped; check that it was copied whole, or create a new one"
            }
            Some(Reason::TokenRevoked) => {
                "\nhint: the token was deleted or revoked; create a new one"
            }
            Some(Reason::TokenInactive) => {
                "\nhint: the token is deactivated; an admin can run `latchkey service-token activate <id>`"
            }
            Some(Reason::TokenUsesExhausted) => {
                "\nhint: the token used all its uses; create a new access token"
            }
            Some(Reason::ScopeDenied) => {
                "\nhint: the message lists the token's scopes and the path asked for; ask for a path inside them, or create a token whose --scope covers it"
            }
            Some(Reason::IpNotTrusted) => {
                "\nhint: the IP above is the one the server saw; add it to the token's or project's trusted IPs"
            }
            Some(Reason::PermissionDenied) => {
                "\nhint: the token lacks the permission or role this needs; see the message for which"
            }
            Some(Reason::E2eeEnabled) => {
                "\nhint: the project is end-to-end encrypted; use a service token (decrypts on this machine) or a project without e2ee"
            }
            Some(Reason::AuthUnavailable) => {
                "\nhint: the secrets service cannot reach the auth service; check that both are running"
            }
            Some(Reason::TooManyFailedAttempts) => {
                "\nhint: too many failed verifications from this address or for this token; wait as long as the message says, and check that the token was copied whole"
            }
            None => "",
        };
        CliError::Server {
            reason,
            message: status.message().to_owned(),
            hint: hint.to_owned(),
            exit,
        }
    }
}

/// Attaches `authorization: Bearer <token>` to every call, and the W3C
/// trace context from `TRACEPARENT`/`TRACESTATE` (OpenTelemetry's carriers
/// for command-line tools), so a script's trace continues into the services.
#[derive(Clone, Debug)]
pub(crate) struct Bearer {
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    trace: Vec<(&'static str, MetadataValue<tonic::metadata::Ascii>)>,
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        for (key, value) in &self.trace {
            request.metadata_mut().insert(*key, value.clone());
        }
        Ok(request)
    }
}

pub(crate) type AuthClient = AuthServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type SecretsClient = SecretsServiceClient<InterceptedService<Channel, Bearer>>;

/// TLS settings from `--tls`, `--ca-cert`, `--client-cert` and `--client-key`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsFiles {
    /// Use TLS even for addresses without `https://`.
    pub(crate) enabled: bool,
    /// PEM CA bundle to trust instead of the system roots.
    pub(crate) ca_cert: Option<PathBuf>,
    /// PEM client certificate, for mTLS.
    pub(crate) client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub(crate) client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// The tonic TLS config, or `None` for plaintext. A CA or client
    /// certificate implies TLS.
    pub(crate) fn config(&self) -> Result<Option<ClientTlsConfig>, CliError> {
        if !self.enabled && self.ca_cert.is_none() && self.client_cert.is_none() {
            return Ok(None);
        }
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| CliError::Input(format!("{flag} {}: {e}", path.display())))
        };
        let mut config = match &self.ca_cert {
            Some(path) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("--ca-cert", path)?)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read("--client-cert", cert)?,
                    read("--client-key", key)?,
                ));
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(CliError::Input(
                    "--client-cert needs --client-key (mTLS uses both)".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(CliError::Input(
                    "--client-key needs --client-cert (mTLS uses both)".to_owned(),
                ));
            }
        }
        Ok(Some(config))
    }
}

/// The URL for `addr`: a bare `host:port` gets `https://` under TLS and
/// `http://` otherwise.
fn url(addr: &str, tls: bool) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

async fn channel(addr: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, CliError> {
    let url = url(addr, tls.is_some());
    let bad_tls =
        |e: tonic::transport::Error| CliError::Input(format!("TLS settings for {url}: {e}"));
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::Input(format!("address {url:?} is not a valid URL: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5));
    match tls {
        Some(tls) => endpoint = endpoint.tls_config(tls.clone()).map_err(bad_tls)?,
        None if url.starts_with("https://") => {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(bad_tls)?;
        }
        None => {}
    }
    endpoint.connect().await.map_err(|e| CliError::Unreachable {
        addr: url.clone(),
        cause: error_chain(&e.to_string(), std::error::Error::source(&e)),
    })
}

/// An error's text and its sources': a transport error alone says only
/// "transport error", its sources say what failed (refused, certificate,
/// handshake).
fn error_chain(head: &str, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut cause = head.to_owned();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = inner.source();
    }
    cause
}

fn bearer(token: Option<&str>) -> Result<Bearer, CliError> {
    let token = token
        .map(|t| {
            // Only a service token's access part is sent: its key part never leaves.
            let t = latchkey_domain::token::access_token_part(t);
            let mut value = MetadataValue::try_from(format!("Bearer {t}")).map_err(|_| {
                CliError::Input("the token holds characters that cannot be sent".to_owned())
            })?;
            // Debug prints "Sensitive", and HTTP/2 never indexes it in HPACK tables.
            value.set_sensitive(true);
            Ok::<_, CliError>(value)
        })
        .transpose()?;
    let trace = [("traceparent", "TRACEPARENT"), ("tracestate", "TRACESTATE")]
        .into_iter()
        .filter_map(|(key, var)| {
            let value = std::env::var(var).ok()?;
            MetadataValue::try_from(value).ok().map(|v| (key, v))
        })
        .collect();
    Ok(Bearer { token, trace })
}

/// A client of the auth service at `addr`, calling with `token`.
pub(crate) async fn auth(
    addr: &str,
    tls: Option<&ClientTlsConfig>,
    token: Option<&str>,
) -> Result<AuthClient, CliError> {
    Ok(AuthServiceClient::with_interceptor(
        channel(addr, tls).await?,
        bearer(token)?,
    ))
}

/// A client of the secrets service at `addr`, calling with `token`.
pub(crate) async fn secrets(
    addr: &str,
    tls: Option<&ClientTlsConfig>,
    token: Option<&str>,
) -> Result<SecretsClient, CliError> {
    Ok(SecretsServiceClient::with_interceptor(
        channel(addr, tls).await?,
        bearer(token)?,
    ))
}

/// The project key, decrypted with the token's key part.
pub(crate) fn open_project_key(
    token: &ServiceTokenSecret,
    encrypted: Option<Sealed>,
) -> Result<WireKey, CliError> {
    let sealed = encrypted
        .ok_or_else(|| CliError::Crypto("the server sent no encrypted project key".to_owned()))?;
    let bytes = token
        .key()
        .open(&sealed, b"")
        .map_err(|_| CliError::DamagedKeyPart)?;
    WireKey::from_bytes(&bytes).map_err(|e| CliError::Crypto(e.to_string()))
}

/// The envelope `LookupToken` returns, as the domain's type.
pub(crate) fn lookup_sealed(k: latchkey_proto::auth::v1::EncryptedProjectKey) -> Sealed {
    Sealed {
        ciphertext: k.ciphertext,
        iv: k.iv,
        tag: k.tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_metadata_debug_prints_no_token_and_sends_no_key_part() {
        let access = "st.0b7e6a50-2f1c-4d1e-9b8a-1c2d3e4f5a6b.00112233445566778899aabbccddeeff";
        let full = format!("{access}.ffeeddccbbaa99887766554433221100");
        let bearer = bearer(Some(&full)).unwrap();
        let debug = format!("{bearer:?}");
        assert!(!debug.contains("00112233"), "{debug}");
        let sent = bearer.token.as_ref().unwrap();
        assert!(sent.is_sensitive());
        assert_eq!(sent.to_str().unwrap(), format!("Bearer {access}"));
    }
}
