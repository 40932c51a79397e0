//! The secrets service's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_domain::ip::TrustedIps;
use latchkey_service_kit::audit::AuditSettings;
use latchkey_service_kit::serve::Listening;

use crate::auth_client::AuthTlsFiles;
use latchkey_service_kit::config::{
    ConfigError, InternalKey, InternalLink, Mode, Vars, data_dir, database_url, state_cache_ttl,
    trusted_proxies,
};

/// The variables only the secrets service reads; the shared ones are in
/// [`latchkey_service_kit::config`].
pub mod var {
    /// The listen address.
    pub const SECRETS_ADDR: &str = "LATCHKEY_SECRETS_ADDR";
    /// The auth service, `http://` or `https://`.
    pub const AUTH_URL: &str = "LATCHKEY_AUTH_URL";
    /// How long to wait for `Authorize`, in milliseconds.
    pub const AUTH_TIMEOUT_MS: &str = "LATCHKEY_AUTH_TIMEOUT_MS";
    /// The CA the auth service's certificate chains to.
    pub const AUTH_CA_FILE: &str = "LATCHKEY_AUTH_CA_FILE";
    /// This service's client certificate, for mTLS to the auth service.
    pub const AUTH_CLIENT_CERT_FILE: &str = "LATCHKEY_AUTH_CLIENT_CERT_FILE";
    /// The private key of [`AUTH_CLIENT_CERT_FILE`].
    pub const AUTH_CLIENT_KEY_FILE: &str = "LATCHKEY_AUTH_CLIENT_KEY_FILE";
    /// The Infisical-compatible HTTP API's listen address; unset, not served.
    pub const HTTP_ADDR: &str = "LATCHKEY_HTTP_ADDR";
    /// Memory for cached ciphertext, in bytes.
    pub const SECRETS_CACHE_BYTES: &str = "LATCHKEY_SECRETS_CACHE_BYTES";
}

/// The defaults of [`var`].
pub mod default {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    /// `127.0.0.1:50052`.
    pub const SECRETS_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 50052));
    /// The auth service as `make run` starts it.
    pub const AUTH_URL: &str = "http://127.0.0.1:50051";
    /// Two seconds.
    pub const AUTH_TIMEOUT_MS: u64 = 2000;
    /// The SQLite file in the data directory.
    pub const DATABASE_FILE: &str = "secrets.db";
    /// 64 MiB.
    pub const SECRETS_CACHE_BYTES: usize = 64 << 20;
}

/// Everything the secrets service needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LATCHKEY_SECRETS_ADDR`, default `127.0.0.1:50052`.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`, default SQLite `secrets.db` in the data directory.
    pub database_url: String,
    /// `LATCHKEY_AUTH_URL`, default `http://127.0.0.1:50051`.
    pub auth_url: String,
    /// `LATCHKEY_INTERNAL_KEY`/`_FILE`, presented to the auth service.
    pub internal_key: InternalKey,
    /// `LATCHKEY_AUTH_TIMEOUT_MS`: how long to wait for `Authorize`, default 2000.
    pub auth_timeout: Duration,
    /// `LATCHKEY_TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedIps,
    /// TLS to the auth service, when `LATCHKEY_AUTH_URL` is `https://`.
    pub auth_tls: Option<AuthTlsFiles>,
    /// TLS, the health port and the shutdown drain bound.
    pub listening: Listening,
    /// `LATCHKEY_INTERNAL_TLS`: in production the call to the auth service
    /// must be mTLS unless this says a mesh provides it.
    pub internal_link: InternalLink,
    /// `LATCHKEY_HTTP_ADDR`: where the Infisical-compatible HTTP API
    /// listens (same TLS files as gRPC); unset, it is not served.
    pub http_addr: Option<SocketAddr>,
    /// `LATCHKEY_STATE_CACHE_MILLIS`: how long this replica serves a read
    /// from memory, so how stale it may be for a change another replica
    /// made; default 1000, 0 reads the database on every call.
    pub state_cache_ttl: Duration,
    /// `LATCHKEY_SECRETS_CACHE_BYTES`: memory for cached ciphertext, default
    /// 64 MiB; 0 disables the cache.
    pub secrets_cache_bytes: usize,
    /// `LATCHKEY_AUDIT` (default `required`) and the replica's host.
    pub audit: AuditSettings,
}

impl Config {
    /// Reads and validates the configuration.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let mode = Mode::from_vars(vars)?;
        let data_dir = data_dir(vars);
        let auth_url = vars.get_or(var::AUTH_URL, default::AUTH_URL).to_owned();
        if !(auth_url.starts_with("http://") || auth_url.starts_with("https://")) {
            return Err(ConfigError::new(
                var::AUTH_URL,
                format!("{auth_url:?} must start with http:// or https://"),
            ));
        }
        let timeout_ms: u64 = vars.parse_or(var::AUTH_TIMEOUT_MS, default::AUTH_TIMEOUT_MS)?;
        let file = |name: &str| vars.get(name).map(std::path::PathBuf::from);
        let files = AuthTlsFiles {
            ca: file(var::AUTH_CA_FILE),
            client_cert: file(var::AUTH_CLIENT_CERT_FILE),
            client_key: file(var::AUTH_CLIENT_KEY_FILE),
        };
        if files.client_cert.is_some() != files.client_key.is_some() {
            return Err(ConfigError::new(
                if files.client_cert.is_some() {
                    var::AUTH_CLIENT_KEY_FILE
                } else {
                    var::AUTH_CLIENT_CERT_FILE
                },
                "the client certificate and its key go together (mTLS to the auth service)",
            ));
        }
        let auth_tls = if auth_url.starts_with("https://") {
            Some(files)
        } else if files != AuthTlsFiles::default() {
            return Err(ConfigError::new(
                var::AUTH_URL,
                format!("{auth_url:?} is plaintext but auth TLS files are set; use https://"),
            ));
        } else {
            None
        };
        let internal_key = InternalKey::from_vars(vars, mode, &data_dir)?;
        let internal_mtls = auth_tls
            .as_ref()
            .is_some_and(|t| t.client_cert.is_some() && t.client_key.is_some());
        let internal_link = InternalLink::from_vars(vars)?.require(
            mode,
            internal_mtls,
            var::AUTH_URL,
            "call the auth service at an https:// LATCHKEY_AUTH_URL with LATCHKEY_AUTH_CLIENT_CERT_FILE and LATCHKEY_AUTH_CLIENT_KEY_FILE (mTLS)",
        )?;
        Ok(Self {
            listen_addr: vars.parse_or(var::SECRETS_ADDR, default::SECRETS_ADDR)?,
            database_url: database_url(vars, &data_dir, default::DATABASE_FILE)?,
            auth_url,
            internal_key,
            auth_timeout: Duration::from_millis(timeout_ms.max(1)),
            trusted_proxies: trusted_proxies(vars)?,
            auth_tls,
            listening: Listening::from_vars(vars)?,
            internal_link,
            http_addr: vars
                .get(var::HTTP_ADDR)
                .map(|_| vars.parse_or(var::HTTP_ADDR, default::SECRETS_ADDR))
                .transpose()?,
            state_cache_ttl: state_cache_ttl(vars)?,
            audit: AuditSettings::from_vars(vars)?,
            secrets_cache_bytes: vars
                .parse_or(var::SECRETS_CACHE_BYTES, default::SECRETS_CACHE_BYTES)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_url_must_be_http_or_https() {
        let dir = tempfile::tempdir().unwrap();
        let vars = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
            ("LATCHKEY_AUTH_URL", "127.0.0.1:50051"),
        ]);
        assert_eq!(
            Config::from_vars(&vars).unwrap_err().variable,
            "LATCHKEY_AUTH_URL"
        );
    }

    #[test]
    fn production_requires_the_internal_key() {
        let dir = tempfile::tempdir().unwrap();
        let vars = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
            ("LATCHKEY_ENV", "production"),
        ]);
        assert_eq!(
            Config::from_vars(&vars).unwrap_err().variable,
            "LATCHKEY_INTERNAL_KEY"
        );
    }

    #[test]
    fn production_refuses_a_plaintext_link_to_the_auth_service_unless_a_mesh_is_declared() {
        let dir = tempfile::tempdir().unwrap();
        let key = "k".repeat(32);
        let base = [
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
            ("LATCHKEY_ENV", "production"),
            ("LATCHKEY_INTERNAL_KEY", key.as_str()),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            Config::from_vars(&Vars::from_pairs(base.iter().chain(extra).copied()))
        };

        let plaintext = with(&[]).unwrap_err();
        let tls_only = with(&[("LATCHKEY_AUTH_URL", "https://auth:50053")]).unwrap_err();
        let mtls = with(&[
            ("LATCHKEY_AUTH_URL", "https://auth:50053"),
            ("LATCHKEY_AUTH_CLIENT_CERT_FILE", "/client.pem"),
            ("LATCHKEY_AUTH_CLIENT_KEY_FILE", "/client.key"),
        ])
        .unwrap();
        let mesh = with(&[("LATCHKEY_INTERNAL_TLS", "mesh")]).unwrap();
        let bogus = with(&[("LATCHKEY_INTERNAL_TLS", "none")]).unwrap_err();

        assert_eq!(plaintext.variable, "LATCHKEY_AUTH_URL");
        assert!(
            plaintext.message.contains("plaintext internal link")
                && plaintext.message.contains("LATCHKEY_INTERNAL_TLS=mesh"),
            "{}",
            plaintext.message
        );
        assert_eq!(
            tls_only.variable, "LATCHKEY_AUTH_URL",
            "TLS without a client certificate"
        );
        assert_eq!(mtls.internal_link, InternalLink::Mtls);
        assert_eq!(mesh.internal_link, InternalLink::Mesh);
        assert_eq!(bogus.variable, "LATCHKEY_INTERNAL_TLS");
        // Development keeps its plaintext loopback default.
        let dev = Config::from_vars(&Vars::from_pairs([(
            "LATCHKEY_DATA_DIR",
            dir.path().to_str().unwrap(),
        )]));
        assert!(dev.is_ok());
    }

    #[test]
    fn auth_tls_files_need_an_https_auth_url_and_come_as_a_pair() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let plaintext = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", data),
            ("LATCHKEY_AUTH_URL", "http://auth:50053"),
            ("LATCHKEY_AUTH_CA_FILE", "/ca.pem"),
        ]);
        let half = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", data),
            ("LATCHKEY_AUTH_URL", "https://auth:50053"),
            ("LATCHKEY_AUTH_CLIENT_CERT_FILE", "/client.pem"),
        ]);
        let full = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", data),
            ("LATCHKEY_AUTH_URL", "https://auth:50053"),
            ("LATCHKEY_AUTH_CLIENT_CERT_FILE", "/client.pem"),
            ("LATCHKEY_AUTH_CLIENT_KEY_FILE", "/client.key"),
        ]);

        assert_eq!(
            Config::from_vars(&plaintext).unwrap_err().variable,
            "LATCHKEY_AUTH_URL"
        );
        assert_eq!(
            Config::from_vars(&half).unwrap_err().variable,
            "LATCHKEY_AUTH_CLIENT_KEY_FILE"
        );
        let tls = Config::from_vars(&full).unwrap().auth_tls.unwrap();
        assert_eq!(tls.client_key.unwrap().to_str(), Some("/client.key"));
    }
}
