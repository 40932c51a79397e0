//! TLS for the services' listeners, reloaded from its files without a
//! restart.
//!
//! Certificates on Kubernetes are Secret volumes that change under a running
//! pod (cert-manager renews, an operator rotates). [`ReloadingTls`] rereads
//! the files every interval and, when their bytes changed and still make a
//! valid configuration, serves every new connection with the new one;
//! connections already open keep theirs. A broken file is logged and the
//! last good configuration kept.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_stream::{Stream, StreamExt};

use crate::listen::Guarded;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::var;
use crate::config::{ConfigError, Vars};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server's certificate and key, and the CA its callers' certificates
/// must chain to where client certificates are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle for client certificates (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    /// `LATCHKEY_TLS_CERT_FILE` and `LATCHKEY_TLS_KEY_FILE` (both or
    /// neither), and `LATCHKEY_TLS_CLIENT_CA_FILE`; `None` serves plaintext.
    pub fn from_vars(vars: &Vars) -> Result<Option<Self>, ConfigError> {
        let cert = vars.get(var::TLS_CERT_FILE).map(PathBuf::from);
        let key = vars.get(var::TLS_KEY_FILE).map(PathBuf::from);
        let client_ca = vars.get(var::TLS_CLIENT_CA_FILE).map(PathBuf::from);
        let files = match (cert, key) {
            (Some(cert), Some(key)) => Self {
                cert,
                key,
                client_ca,
            },
            (None, None) if client_ca.is_some() => {
                return Err(ConfigError::new(
                    var::TLS_CLIENT_CA_FILE,
                    "client certificates need TLS: set LATCHKEY_TLS_CERT_FILE and LATCHKEY_TLS_KEY_FILE too",
                ));
            }
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    var::TLS_KEY_FILE,
                    "is required with LATCHKEY_TLS_CERT_FILE",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    var::TLS_CERT_FILE,
                    "is required with LATCHKEY_TLS_KEY_FILE",
                ));
            }
        };
        // Checked now so a typo fails at start-up, naming the variable.
        build(&files, files.client_ca.is_some(), GRPC_ALPN)
            .map_err(|e| ConfigError::new(e.variable, e.message))?;
        Ok(Some(files))
    }

    /// The same files without the client CA: TLS that asks for no client
    /// certificate.
    #[must_use]
    pub fn without_client_auth(&self) -> Self {
        Self {
            client_ca: None,
            ..self.clone()
        }
    }
}

/// A TLS acceptor whose configuration follows its files.
#[derive(Clone)]
pub struct ReloadingTls {
    files: ServerTlsFiles,
    alpn: &'static [&'static [u8]],
    current: Arc<RwLock<Loaded>>,
}

/// gRPC is HTTP/2 only.
const GRPC_ALPN: &[&[u8]] = &[b"h2"];
/// HTTP clients (Infisical's SDKs) mostly speak HTTP/1.1.
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

struct Loaded {
    /// The files' bytes the acceptor was built from; compared, never logged.
    source: Vec<u8>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// A file that does not make a TLS configuration.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct TlsError {
    /// The variable naming the file.
    pub variable: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ReloadingTls {
    /// Loads the files; client certificates are required when the files
    /// name a client CA.
    pub fn load(files: ServerTlsFiles) -> Result<Self, TlsError> {
        Self::load_with(files, GRPC_ALPN)
    }

    /// Like [`ReloadingTls::load`], offering HTTP/1.1 as well as HTTP/2
    /// (the HTTP API's port).
    pub fn load_for_http(files: ServerTlsFiles) -> Result<Self, TlsError> {
        Self::load_with(files, HTTP_ALPN)
    }

    fn load_with(files: ServerTlsFiles, alpn: &'static [&'static [u8]]) -> Result<Self, TlsError> {
        let require_client = files.client_ca.is_some();
        let (source, config) = build(&files, require_client, alpn)?;
        Ok(Self {
            files,
            alpn,
            current: Arc::new(RwLock::new(Loaded {
                source,
                acceptor: TlsAcceptor::from(Arc::new(config)),
            })),
        })
    }

    /// Rereads the files; swaps in a new configuration when they changed and
    /// are valid. Returns whether it swapped.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let source = read_all(&self.files)?;
        if self.read_current(|l| l.source == source) {
            return Ok(false);
        }
        let (source, config) = build(&self.files, self.files.client_ca.is_some(), self.alpn)?;
        if let Ok(mut current) = self.current.write() {
            *current = Loaded {
                source,
                acceptor: TlsAcceptor::from(Arc::new(config)),
            };
        }
        Ok(true)
    }

    /// Rereads the files every `every` for as long as the task runs.
    pub fn spawn_reloader(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match tls.reload() {
                    Ok(true) => {
                        tracing::info!(cert = %tls.files.cert.display(), "TLS certificates reloaded")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS files changed but do not load; keeping the previous certificates")
                    }
                }
            }
        })
    }

    /// Handshakes each connection of `accepted` on its own task, so a
    /// slow client holds up no other; the stream ends when the server
    /// drops it.
    #[must_use]
    pub fn incoming(
        &self,
        accepted: impl Stream<Item = io::Result<Guarded<TcpStream>>> + Send + 'static,
    ) -> ReceiverStream<Result<TlsStream<Guarded<TcpStream>>, io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let tls = self.clone();
        tokio::spawn(async move {
            let mut accepted = std::pin::pin!(accepted);
            loop {
                let tcp = tokio::select! {
                    () = tx.closed() => break,
                    next = accepted.next() => match next {
                        Some(Ok(tcp)) => tcp,
                        Some(Err(_)) => continue,
                        None => break,
                    },
                };
                let peer = tcp.peer();
                let acceptor = tls.read_current(|l| l.acceptor.clone());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(peer = %peer, error = %e, "TLS handshake refused");
                        }
                        Err(_) => tracing::info!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }

    fn read_current<T>(&self, f: impl FnOnce(&Loaded) -> T) -> T {
        // A writer never panics while holding the lock, so poisoning cannot
        // happen; recover the value regardless.
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }
}

fn read_file(path: &Path, variable: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        variable,
        message: format!("cannot read {}: {e}", path.display()),
    })
}

fn read_all(files: &ServerTlsFiles) -> Result<Vec<u8>, TlsError> {
    let mut all = read_file(&files.cert, var::TLS_CERT_FILE)?;
    all.extend(read_file(&files.key, var::TLS_KEY_FILE)?);
    if let Some(ca) = &files.client_ca {
        all.extend(read_file(ca, var::TLS_CLIENT_CA_FILE)?);
    }
    Ok(all)
}

/// The rustls configuration of the files (ring, TLS 1.2 and 1.3, ALPN h2).
fn build(
    files: &ServerTlsFiles,
    require_client: bool,
    alpn: &[&[u8]],
) -> Result<(Vec<u8>, rustls::ServerConfig), TlsError> {
    let source = read_all(files)?;
    let bad = |variable: &'static str| {
        move |e: &dyn std::fmt::Display| TlsError {
            variable,
            message: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad(var::TLS_CERT_FILE)(&e))?;
    if certs.is_empty() {
        return Err(bad(var::TLS_CERT_FILE)(&"holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(var::TLS_KEY_FILE)(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(var::TLS_CERT_FILE)(&e))?;
    let builder = match (&files.client_ca, require_client) {
        (Some(ca), true) => {
            let mut roots = RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).map_err(|e| bad(var::TLS_CLIENT_CA_FILE)(&e))?
            {
                roots
                    .add(cert.map_err(|e| bad(var::TLS_CLIENT_CA_FILE)(&e))?)
                    .map_err(|e| bad(var::TLS_CLIENT_CA_FILE)(&e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(var::TLS_CLIENT_CA_FILE)(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| bad(var::TLS_KEY_FILE)(&e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((source, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and key for `localhost`, written to `dir`.
    fn write_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn vars(pairs: &[(&str, &Path)]) -> Vars {
        Vars::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_str().unwrap())))
    }

    #[test]
    fn no_tls_variables_serve_plaintext() {
        assert_eq!(ServerTlsFiles::from_vars(&Vars::default()).unwrap(), None);
    }

    #[test]
    fn a_certificate_without_its_key_is_refused_naming_the_missing_variable() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_cert(dir.path(), "a");

        let no_key = ServerTlsFiles::from_vars(&vars(&[("LATCHKEY_TLS_CERT_FILE", &cert)]));
        let no_cert = ServerTlsFiles::from_vars(&vars(&[("LATCHKEY_TLS_KEY_FILE", &key)]));
        let ca_alone = ServerTlsFiles::from_vars(&vars(&[("LATCHKEY_TLS_CLIENT_CA_FILE", &cert)]));

        assert_eq!(no_key.unwrap_err().variable, "LATCHKEY_TLS_KEY_FILE");
        assert_eq!(no_cert.unwrap_err().variable, "LATCHKEY_TLS_CERT_FILE");
        assert_eq!(
            ca_alone.unwrap_err().variable,
            "LATCHKEY_TLS_CLIENT_CA_FILE"
        );
    }

    #[test]
    fn an_unreadable_or_non_pem_file_is_refused_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = write_cert(dir.path(), "a");
        let garbage = dir.path().join("garbage.key");
        std::fs::write(&garbage, "not a key").unwrap();

        let err = ServerTlsFiles::from_vars(&vars(&[
            ("LATCHKEY_TLS_CERT_FILE", &cert),
            ("LATCHKEY_TLS_KEY_FILE", &garbage),
        ]))
        .unwrap_err();

        assert_eq!(err.variable, "LATCHKEY_TLS_KEY_FILE");
    }

    #[test]
    fn reload_swaps_only_on_a_valid_change_and_keeps_serving_through_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_cert(dir.path(), "a");
        let tls = ReloadingTls::load(ServerTlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        })
        .unwrap();

        let unchanged = tls.reload().unwrap();
        std::fs::write(&key, "half-written").unwrap();
        let broken = tls.reload();
        let (next_cert, next_key) = write_cert(dir.path(), "b");
        std::fs::copy(next_cert, &cert).unwrap();
        std::fs::copy(next_key, &key).unwrap();
        let swapped = tls.reload().unwrap();

        assert!(!unchanged);
        assert_eq!(broken.unwrap_err().variable, "LATCHKEY_TLS_KEY_FILE");
        assert!(swapped);
    }
}
