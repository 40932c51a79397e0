//! Connections to the services through `latchkey-client`, with the TLS
//! files and trace context the CLI's flags and environment give.

use std::path::PathBuf;

use latchkey_client::{AuthClient, Bearer, Credential, SecretsClient, Tls, channel};
use latchkey_proto::audit::v1::audit_service_client::AuditServiceClient;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;

use crate::error::CliError;

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
    /// The files read into the client's TLS settings; errors name the flag.
    pub(crate) fn load(&self) -> Result<Tls, CliError> {
        let read = |flag: &str, path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| CliError::Input(format!("{flag} {}: {e}", path.display())))
        };
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                Some((read("--client-cert", cert)?, read("--client-key", key)?))
            }
            (None, None) => None,
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
        };
        Ok(Tls {
            enabled: self.enabled,
            ca_pem: self
                .ca_cert
                .as_ref()
                .map(|path| read("--ca-cert", path))
                .transpose()?,
            identity,
        })
    }
}

/// The bearer for `token`, with the W3C trace context from
/// `TRACEPARENT`/`TRACESTATE` (OpenTelemetry's carriers for command-line
/// tools), so a script's trace continues into the services.
fn bearer(token: Option<&str>) -> Result<Bearer, CliError> {
    let var = |name: &str| std::env::var(name).ok();
    Ok(Bearer::new(token)?
        .with_trace_context(var("TRACEPARENT").as_deref(), var("TRACESTATE").as_deref()))
}

/// A client of the auth service at `addr`, calling with `token`.
pub(crate) async fn auth(
    addr: &str,
    tls: &Tls,
    token: Option<&str>,
) -> Result<AuthClient, CliError> {
    Ok(AuthServiceClient::with_interceptor(
        channel::connect(addr, tls).await?,
        bearer(token)?,
    ))
}

/// A client of either service's audit API at `addr`, calling with `token`.
pub(crate) async fn audit(
    addr: &str,
    tls: &Tls,
    token: Option<&str>,
) -> Result<AuditClient, CliError> {
    Ok(AuditServiceClient::with_interceptor(
        channel::connect(addr, tls).await?,
        bearer(token)?,
    ))
}

/// The generated audit client, calling with a bearer.
pub(crate) type AuditClient = AuditServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// A secrets client at `secrets_addr` calling with `credential`; with
/// `auth_addr`, one that can also write with a service token.
pub(crate) async fn secrets(
    secrets_addr: &str,
    auth_addr: Option<&str>,
    tls: &Tls,
    credential: Credential,
) -> Result<SecretsClient, CliError> {
    let bearer = bearer(Some(&credential.bearer_text()))?;
    let secrets = channel::connect(secrets_addr, tls).await?;
    let auth = match auth_addr {
        Some(addr) => Some(channel::connect(addr, tls).await?),
        None => None,
    };
    Ok(SecretsClient::new(secrets, auth, credential, bearer))
}
