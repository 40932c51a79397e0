//! Throwaway certificates for TLS tests: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and a client certificate, as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA and the certificates it signed, in a temporary folder.
#[derive(Debug)]
pub struct Pki {
    _dir: tempfile::TempDir,
    /// The CA certificate.
    pub ca: PathBuf,
    /// Server certificate for `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// Client certificate (client authentication).
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl Pki {
    /// A new CA with a server and a client certificate.
    #[must_use]
    pub fn new() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_pem = ca.self_signed(&ca_key).expect("CA cert").pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |names: &[&str], usage: ExtendedKeyUsagePurpose| {
            let mut params =
                CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                    .expect("leaf params");
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().expect("leaf key");
            (
                params.signed_by(&key, &issuer).expect("leaf cert").pem(),
                key.serialize_pem(),
            )
        };
        let server = leaf(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(&["latchkey-secrets"], ExtendedKeyUsagePurpose::ClientAuth);
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Pki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server.0),
            server_key: write("server.key", &server.1),
            client_cert: write("client.pem", &client.0),
            client_key: write("client.key", &client.1),
            _dir: dir,
        }
    }

    /// The CA certificate's PEM.
    #[must_use]
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.ca)
    }

    /// The client certificate and key's PEM.
    #[must_use]
    pub fn client_identity(&self) -> (Vec<u8>, Vec<u8>) {
        (read(&self.client_cert), read(&self.client_key))
    }

    /// Replaces this server certificate and key with `other`'s, as a
    /// certificate rotation does on a mounted Secret.
    pub fn swap_server_from(&self, other: &Pki) {
        std::fs::copy(&other.server_cert, &self.server_cert).expect("copy cert");
        std::fs::copy(&other.server_key, &self.server_key).expect("copy key");
    }

    /// Replaces this client certificate and key with `other`'s.
    pub fn swap_client_from(&self, other: &Pki) {
        std::fs::copy(&other.client_cert, &self.client_cert).expect("copy cert");
        std::fs::copy(&other.client_key, &self.client_key).expect("copy key");
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read PEM")
}
