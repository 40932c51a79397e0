//! Channels to the services: plaintext or TLS, with the caller's
//! certificate for mTLS.

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{ClientError, error_chain};

/// How long dialling a service may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// TLS settings, as PEM bytes (reading files is the caller's business, so
/// its errors can name its own flags or variables).
#[derive(Clone, Default)]
pub struct Tls {
    /// Use TLS even for addresses without `https://`.
    pub enabled: bool,
    /// A CA bundle to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its private key, for mTLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("enabled", &self.enabled)
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl Tls {
    /// No TLS unless the address says `https://`.
    #[must_use]
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Whether connections use TLS: asked for, or implied by a CA or a
    /// client certificate.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.enabled || self.ca_pem.is_some() || self.identity.is_some()
    }

    fn config(&self) -> ClientTlsConfig {
        let mut config = match &self.ca_pem {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

/// The URL for `addr`: a bare `host:port` gets `https://` under TLS and
/// `http://` otherwise.
#[must_use]
pub fn url(addr: &str, tls: &Tls) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else if tls.is_on() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// Dials `addr` now, so an unreachable service is reported before any call.
pub async fn connect(addr: &str, tls: &Tls) -> Result<Channel, ClientError> {
    let url = url(addr, tls);
    endpoint(&url, tls)?
        .connect()
        .await
        .map_err(|e| ClientError::Unreachable {
            addr: url.clone(),
            cause: error_chain(&e.to_string(), std::error::Error::source(&e)),
        })
}

/// A channel that dials `addr` on first use (a service starting while the
/// other is down).
pub fn connect_lazy(addr: &str, tls: &Tls) -> Result<Channel, ClientError> {
    Ok(endpoint(&url(addr, tls), tls)?.connect_lazy())
}

fn endpoint(url: &str, tls: &Tls) -> Result<Endpoint, ClientError> {
    let bad_tls =
        |e: tonic::transport::Error| ClientError::Config(format!("TLS settings for {url}: {e}"));
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| ClientError::Config(format!("address {url:?} is not a valid URL: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    if tls.is_on() || url.starts_with("https://") {
        endpoint.tls_config(tls.config()).map_err(bad_tls)
    } else {
        Ok(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_gets_the_scheme_its_tls_settings_imply() {
        assert_eq!(url("h:1", &Tls::plaintext()), "http://h:1");
        let ca = Tls {
            ca_pem: Some(b"pem".to_vec()),
            ..Tls::default()
        };
        assert_eq!(url("h:1", &ca), "https://h:1");
        assert_eq!(url("http://h:1", &ca), "http://h:1");
    }

    #[test]
    fn an_address_that_is_no_url_is_a_config_error_naming_it() {
        let err = connect_lazy("http://bad host:1", &Tls::plaintext()).unwrap_err();
        assert!(
            matches!(&err, ClientError::Config(m) if m.contains("bad host")),
            "{err:?}"
        );
    }

    #[test]
    fn tls_debug_shows_no_key_material() {
        let tls = Tls {
            enabled: true,
            ca_pem: None,
            identity: Some((b"CERT".to_vec(), b"SECRET-KEY".to_vec())),
        };
        let debug = format!("{tls:?}");
        assert!(!debug.contains("SECRET-KEY"), "{debug}");
    }
}
