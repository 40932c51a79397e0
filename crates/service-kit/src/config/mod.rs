//! Configuration variables, read once at start-up.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A configuration error naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `variable`.
    #[must_use]
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

/// The variables both services read.
pub mod var {
    /// `development` or `production` (which requires every key).
    pub const ENV: &str = "LATCHKEY_ENV";
    /// `mtls`, or `mesh` where a service mesh provides the internal mTLS.
    pub const INTERNAL_TLS: &str = "LATCHKEY_INTERNAL_TLS";
    /// Where development keys, SQLite files and the admin token live.
    pub const DATA_DIR: &str = "LATCHKEY_DATA_DIR";
    /// The database, or `_FILE`.
    pub const DATABASE_URL: &str = "DATABASE_URL";
    /// The key the secrets service presents on `Authorize`, or `_FILE`.
    pub const INTERNAL_KEY: &str = "LATCHKEY_INTERNAL_KEY";
    /// Peers whose `x-forwarded-for` is believed.
    pub const TRUSTED_PROXIES: &str = "LATCHKEY_TRUSTED_PROXIES";
    /// PEM certificate chain of the listening ports.
    pub const TLS_CERT_FILE: &str = "LATCHKEY_TLS_CERT_FILE";
    /// PEM private key of the listening ports.
    pub const TLS_KEY_FILE: &str = "LATCHKEY_TLS_KEY_FILE";
    /// CA whose client certificates the internal port requires.
    pub const TLS_CLIENT_CA_FILE: &str = "LATCHKEY_TLS_CLIENT_CA_FILE";
    /// A plaintext port serving only `grpc.health.v1`.
    pub const HEALTH_ADDR: &str = "LATCHKEY_HEALTH_ADDR";
    /// How often the TLS files are reread.
    pub const TLS_RELOAD_MILLIS: &str = "LATCHKEY_TLS_RELOAD_MILLIS";
    /// How long in-flight calls may finish after SIGTERM.
    pub const SHUTDOWN_GRACE_SECONDS: &str = "LATCHKEY_SHUTDOWN_GRACE_SECONDS";
    /// `json` for JSON logs.
    pub const LOG_FORMAT: &str = "LATCHKEY_LOG_FORMAT";
    /// How stale a replica's cached rows may be, in milliseconds: the auth
    /// service's token and project rows, the secrets service's ciphertext.
    pub const STATE_CACHE_MILLIS: &str = "LATCHKEY_STATE_CACHE_MILLIS";
}

/// The defaults of [`var`], where one is not derived at start-up.
pub mod default {
    /// One second.
    pub const STATE_CACHE_MILLIS: u64 = 1000;
}

/// `LATCHKEY_STATE_CACHE_MILLIS`: the staleness bound of a replica's caches
/// for changes another replica made (0 disables caching).
pub fn state_cache_ttl(vars: &Vars) -> Result<std::time::Duration, ConfigError> {
    Ok(std::time::Duration::from_millis(vars.parse_or(
        var::STATE_CACHE_MILLIS,
        default::STATE_CACHE_MILLIS,
    )?))
}

/// A snapshot of configuration variables. Services read the process
/// environment once; tests build one from pairs and never touch the environment.
#[derive(Debug, Clone, Default)]
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// The process environment.
    #[must_use]
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// Variables from pairs.
    #[must_use]
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A variable, unset when empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A variable or its default.
    #[must_use]
    pub fn get_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// A variable parsed with `FromStr`, or its default.
    pub fn parse_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(name, format!("{raw:?} is not valid: {e}"))),
        }
    }

    /// A secret from `NAME`, or from the file named by `NAME_FILE` (as
    /// Kubernetes Secret volumes provide), trimmed.
    pub fn secret(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.get(name), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (Some(value), None) => Ok(Some(value.trim().to_owned())),
            (None, Some(path)) => fs::read_to_string(path)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|e| ConfigError::new(file_var, format!("cannot read {path}: {e}"))),
            (None, None) => Ok(None),
        }
    }
}

/// Whether the service runs for development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Missing keys are generated into the data directory.
    Development,
    /// Every key must be provided.
    Production,
}

impl Mode {
    /// From `LATCHKEY_ENV`: `development` (default) or `production`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        match vars.get_or(var::ENV, "development") {
            "development" | "dev" => Ok(Mode::Development),
            "production" | "prod" => Ok(Mode::Production),
            other => Err(ConfigError::new(
                var::ENV,
                format!("{other:?} is neither \"development\" nor \"production\""),
            )),
        }
    }
}

/// Who protects the link between the secrets and the auth service
/// (`Authorize` carries the internal key, client IPs and, for raw calls,
/// project keys in clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalLink {
    /// The services themselves, with mTLS: required in production.
    Mtls,
    /// A service mesh's mTLS, as `LATCHKEY_INTERNAL_TLS=mesh` declares;
    /// logged as a warning at every start.
    Mesh,
}

impl InternalLink {
    /// From `LATCHKEY_INTERNAL_TLS`: `mtls` (default) or `mesh`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        match vars.get_or(var::INTERNAL_TLS, "mtls") {
            "mtls" => Ok(InternalLink::Mtls),
            "mesh" => Ok(InternalLink::Mesh),
            other => Err(ConfigError::new(
                var::INTERNAL_TLS,
                format!(
                    "{other:?} is neither \"mtls\" (the services' own mTLS) nor \"mesh\" (a service mesh provides mTLS)"
                ),
            )),
        }
    }

    /// In production, refuses to start with a plaintext internal link:
    /// `mtls_configured` says whether this service's side of the link is
    /// mTLS; otherwise `variable` and `how` say what to set.
    pub fn require(
        self,
        mode: Mode,
        mtls_configured: bool,
        variable: &str,
        how: &str,
    ) -> Result<Self, ConfigError> {
        if mode == Mode::Production && self == InternalLink::Mtls && !mtls_configured {
            return Err(ConfigError::new(
                variable,
                format!(
                    "production refuses a plaintext internal link: {how}, or set LATCHKEY_INTERNAL_TLS=mesh if a service mesh provides mTLS"
                ),
            ));
        }
        Ok(self)
    }

    /// Logs, at every start, that a mesh is trusted with the internal link.
    pub fn warn_if_mesh(self) {
        if self == InternalLink::Mesh {
            tracing::warn!(
                "LATCHKEY_INTERNAL_TLS=mesh: this service does not encrypt its internal link itself; \
                 a service mesh must provide mTLS between the secrets and the auth service"
            );
        }
    }
}

/// The data directory from `LATCHKEY_DATA_DIR` (default `./latchkey-data`).
#[must_use]
pub fn data_dir(vars: &Vars) -> PathBuf {
    PathBuf::from(vars.get_or(var::DATA_DIR, "latchkey-data"))
}

/// The database URL from `DATABASE_URL`, defaulting to an SQLite file in the
/// data directory (created with the directory on first start).
pub fn database_url(vars: &Vars, data_dir: &Path, file: &str) -> Result<String, ConfigError> {
    if let Some(url) = vars.secret(var::DATABASE_URL)? {
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                var::DATABASE_URL,
                "use a sqlite:// or postgres:// URL",
            ));
        }
        return Ok(url);
    }
    ensure_private_dir(data_dir).map_err(|e| {
        ConfigError::new(
            var::DATA_DIR,
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    Ok(format!(
        "sqlite://{}?mode=rwc",
        data_dir.join(file).display()
    ))
}

/// A secret from `NAME`/`NAME_FILE`; in development, when unset, the content
/// of `data_dir/file`, created with `generate()` and mode 0600 on first use.
pub fn secret_or_dev_file(
    vars: &Vars,
    mode: Mode,
    name: &str,
    data_dir: &Path,
    file: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, ConfigError> {
    if let Some(value) = vars.secret(name)? {
        return Ok(value);
    }
    if mode == Mode::Production {
        return Err(ConfigError::new(
            name,
            format!("required in production: set {name} or {name}_FILE"),
        ));
    }
    load_or_create(&data_dir.join(file), generate).map_err(|e| {
        ConfigError::new(
            name,
            format!("cannot use {}: {e}", data_dir.join(file).display()),
        )
    })
}

/// Trusted proxies from `LATCHKEY_TRUSTED_PROXIES` (comma-separated addresses
/// and CIDRs); empty trusts no proxy, so `x-forwarded-for` is ignored.
pub fn trusted_proxies(vars: &Vars) -> Result<latchkey_domain::ip::TrustedIps, ConfigError> {
    let entries: Vec<&str> = vars
        .get_or(var::TRUSTED_PROXIES, "")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    latchkey_domain::ip::TrustedIps::parse(&entries, var::TRUSTED_PROXIES)
        .map_err(|e| ConfigError::new(var::TRUSTED_PROXIES, e.message))
}

mod files;
mod internal_key;

use files::ensure_private_dir;
pub use files::{load_or_create, write_private};
pub use internal_key::InternalKey;

#[cfg(test)]
mod tests;
