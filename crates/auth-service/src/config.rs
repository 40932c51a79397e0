//! The auth service's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use latchkey_domain::attempts::FailureBudget;
use latchkey_domain::crypto::RootKey;
use latchkey_domain::ip::TrustedIps;
use latchkey_service_kit::audit::AuditSettings;
use latchkey_service_kit::config::{
    ConfigError, InternalKey, InternalLink, Mode, Vars, data_dir, database_url, secret_or_dev_file,
    state_cache_ttl, trusted_proxies,
};
use latchkey_service_kit::serve::Listening;

use crate::limiter::FailureLimits;

/// The variables only the auth service reads; the shared ones (data
/// directory, database, TLS, health, telemetry) are in
/// [`latchkey_service_kit::config`].
pub mod var {
    /// The public listen address.
    pub const AUTH_ADDR: &str = "LATCHKEY_AUTH_ADDR";
    /// The root key (64 hex characters), or `_FILE`.
    pub const ROOT_KEY: &str = "LATCHKEY_ROOT_KEY";
    /// The previous root key during a rotation, or `_FILE`.
    pub const ROOT_KEY_SECONDARY: &str = "LATCHKEY_ROOT_KEY_SECONDARY";
    /// A second port that alone serves `Authorize`.
    pub const INTERNAL_ADDR: &str = "LATCHKEY_INTERNAL_ADDR";
    /// Where the bootstrap admin's token is written.
    pub const ADMIN_TOKEN_FILE: &str = "LATCHKEY_ADMIN_TOKEN_FILE";
    /// Seconds between reaper runs.
    pub const REAPER_INTERVAL_SECONDS: &str = "LATCHKEY_REAPER_INTERVAL_SECONDS";
    /// Verified tokens remembered per replica.
    pub const VERIFY_CACHE_CAPACITY: &str = "LATCHKEY_VERIFY_CACHE_CAPACITY";
    /// Verifications that may wait for an argon2 worker.
    pub const VERIFY_QUEUE_CAPACITY: &str = "LATCHKEY_VERIFY_QUEUE_CAPACITY";
    /// How long an expired token answers `TOKEN_EXPIRED` before it is reaped.
    pub const EXPIRED_GRACE_SECONDS: &str = "LATCHKEY_EXPIRED_GRACE_SECONDS";
    /// Failed verifications allowed per token id before the limit.
    pub const TOKEN_FAILURE_BURST: &str = "LATCHKEY_TOKEN_FAILURE_BURST";
    /// Seconds to earn back one failed verification per token id.
    pub const TOKEN_FAILURE_REFILL_SECONDS: &str = "LATCHKEY_TOKEN_FAILURE_REFILL_SECONDS";
    /// Failed verifications allowed per client IP before the limit.
    pub const IP_FAILURE_BURST: &str = "LATCHKEY_IP_FAILURE_BURST";
    /// Seconds to earn back one failed verification per client IP.
    pub const IP_FAILURE_REFILL_SECONDS: &str = "LATCHKEY_IP_FAILURE_REFILL_SECONDS";
    /// Token ids and IPs the failure limiter tracks.
    pub const FAILURE_LIMITER_CAPACITY: &str = "LATCHKEY_FAILURE_LIMITER_CAPACITY";
}

/// The defaults of [`var`], where one is not derived at start-up.
pub mod default {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    /// `127.0.0.1:50051`.
    pub const AUTH_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 50051));
    /// The SQLite file in the data directory.
    pub const DATABASE_FILE: &str = "auth.db";
    /// The development root key's file in the data directory.
    pub const ROOT_KEY_FILE: &str = "root.key";
    /// The bootstrap admin token's file in the data directory.
    pub const ADMIN_TOKEN_FILE: &str = "admin-token";
    /// One reaper run a minute.
    pub const REAPER_INTERVAL_SECONDS: u64 = 60;
    /// Verified tokens remembered per replica.
    pub const VERIFY_CACHE_CAPACITY: usize = 100_000;
    /// Seven days.
    pub const EXPIRED_GRACE_SECONDS: i64 = 7 * 24 * 3600;
    /// Ten failures per token id, then one every six seconds.
    pub const TOKEN_FAILURE_BURST: u32 = 10;
    /// See [`TOKEN_FAILURE_BURST`].
    pub const TOKEN_FAILURE_REFILL_SECONDS: i64 = 6;
    /// Thirty failures per client IP, then one every two seconds.
    pub const IP_FAILURE_BURST: u32 = 30;
    /// See [`IP_FAILURE_BURST`].
    pub const IP_FAILURE_REFILL_SECONDS: i64 = 2;
}

/// Everything the auth service needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LATCHKEY_AUTH_ADDR`, default `127.0.0.1:50051`.
    pub listen_addr: SocketAddr,
    /// `DATABASE_URL`, default SQLite `auth.db` in the data directory.
    pub database_url: String,
    /// `LATCHKEY_ROOT_KEY`/`_FILE` (64 hex characters); generated into
    /// `root.key` in the data directory in development.
    pub root_key: RootKey,
    /// `LATCHKEY_ROOT_KEY_SECONDARY`/`_FILE`: the previous root key during a
    /// rotation. It still opens project keys, and each start rewraps those
    /// under the primary.
    pub root_key_secondary: Option<RootKey>,
    /// `LATCHKEY_INTERNAL_KEY`/`_FILE`; the secrets service presents it to call `Authorize`.
    pub internal_key: InternalKey,
    /// `LATCHKEY_ADMIN_TOKEN_FILE`, default `admin-token` in the data directory.
    pub admin_token_file: PathBuf,
    /// `LATCHKEY_REAPER_INTERVAL_SECONDS`, default 60.
    pub reaper_interval: Duration,
    /// `LATCHKEY_TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedIps,
    /// `LATCHKEY_VERIFY_CACHE_CAPACITY`: verified tokens remembered per replica, default 100000 (about 90 bytes each).
    pub verify_cache_capacity: usize,
    /// `LATCHKEY_INTERNAL_ADDR`: a second port that alone serves `Authorize`
    /// (mTLS when `LATCHKEY_TLS_CLIENT_CA_FILE` is set); unset, the public
    /// port serves it to internal-key holders.
    pub internal_addr: Option<SocketAddr>,
    /// TLS, the health port and the shutdown drain bound.
    pub listening: Listening,
    /// `LATCHKEY_STATE_CACHE_MILLIS`: how stale a row `Authorize` reads may be
    /// on a replica that did not change it, and how often batched use counts
    /// are written; default 1000, 0 reads the database on every call.
    pub state_cache_ttl: Duration,
    /// `LATCHKEY_INTERNAL_TLS`: in production the internal port must be mTLS
    /// unless this says a mesh provides it.
    pub internal_link: InternalLink,
    /// `LATCHKEY_EXPIRED_GRACE_SECONDS`: how long an expired token answers
    /// `TOKEN_EXPIRED` before it is reaped, default 604800 (7 days).
    pub expired_grace: Duration,
    /// `LATCHKEY_TOKEN_FAILURE_BURST` / `_REFILL_SECONDS` (10, then one per
    /// 6 s), `LATCHKEY_IP_FAILURE_BURST` / `_REFILL_SECONDS` (30, then one
    /// per 2 s), `LATCHKEY_FAILURE_LIMITER_CAPACITY` (100000 keys): failed
    /// verifications allowed per token id and per client IP; a burst of 0
    /// disables that limit.
    pub failure_limits: FailureLimits,
    /// `LATCHKEY_VERIFY_QUEUE_CAPACITY`: verifications that may wait for an
    /// argon2 worker, default 16 per core.
    pub verify_queue_capacity: Option<usize>,
    /// `LATCHKEY_AUDIT` (default `required`) and the replica's host.
    pub audit: AuditSettings,
}

impl Config {
    /// Reads and validates the configuration.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let mode = Mode::from_vars(vars)?;
        let data_dir = data_dir(vars);
        let database_url = database_url(vars, &data_dir, default::DATABASE_FILE)?;
        let root_hex = secret_or_dev_file(
            vars,
            mode,
            var::ROOT_KEY,
            &data_dir,
            default::ROOT_KEY_FILE,
            || RootKey::generate(&mut rand::rngs::OsRng).to_hex(),
        )?;
        let root_key = RootKey::from_hex(&root_hex)
            .map_err(|e| ConfigError::new(var::ROOT_KEY, e.to_string()))?;
        let internal_addr = match vars.get(var::INTERNAL_ADDR) {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|e| {
                ConfigError::new(var::INTERNAL_ADDR, format!("{raw:?} is not host:port: {e}"))
            })?),
        };
        let listening = Listening::from_vars(vars)?;
        // Client certificates guard the internal port; without one the
        // setting would silently protect nothing.
        if internal_addr.is_none()
            && listening
                .tls
                .as_ref()
                .is_some_and(|t| t.client_ca.is_some())
        {
            return Err(ConfigError::new(
                latchkey_service_kit::config::var::TLS_CLIENT_CA_FILE,
                "client certificates are asked for on the internal port: set LATCHKEY_INTERNAL_ADDR too",
            ));
        }
        let internal_mtls = internal_addr.is_some()
            && listening
                .tls
                .as_ref()
                .is_some_and(|t| t.client_ca.is_some());
        let internal_link = InternalLink::from_vars(vars)?.require(
            mode,
            internal_mtls,
            var::INTERNAL_ADDR,
            "serve Authorize on LATCHKEY_INTERNAL_ADDR with LATCHKEY_TLS_CERT_FILE, LATCHKEY_TLS_KEY_FILE and LATCHKEY_TLS_CLIENT_CA_FILE (mTLS)",
        )?;
        let root_key_secondary = vars
            .secret(var::ROOT_KEY_SECONDARY)?
            .map(|hex| {
                RootKey::from_hex(&hex)
                    .map_err(|e| ConfigError::new(var::ROOT_KEY_SECONDARY, e.to_string()))
            })
            .transpose()?;
        let defaults = FailureLimits::default();
        let budget = |(burst_var, burst): (&str, u32), (refill_var, refill): (&str, i64)| {
            let burst = vars.parse_or(burst_var, burst)?;
            let refill: i64 = vars.parse_or(refill_var, refill)?;
            if refill < 1 {
                return Err(ConfigError::new(refill_var, "must be at least 1"));
            }
            Ok::<_, ConfigError>(FailureBudget::new(burst, chrono::Duration::seconds(refill)))
        };
        let failure_limits = FailureLimits {
            per_token: budget(
                (var::TOKEN_FAILURE_BURST, default::TOKEN_FAILURE_BURST),
                (
                    var::TOKEN_FAILURE_REFILL_SECONDS,
                    default::TOKEN_FAILURE_REFILL_SECONDS,
                ),
            )?,
            per_ip: budget(
                (var::IP_FAILURE_BURST, default::IP_FAILURE_BURST),
                (
                    var::IP_FAILURE_REFILL_SECONDS,
                    default::IP_FAILURE_REFILL_SECONDS,
                ),
            )?,
            capacity: vars.parse_or(var::FAILURE_LIMITER_CAPACITY, defaults.capacity)?,
            ipv6_prefix: listening.limits.ipv6_prefix,
        };
        let interval: u64 = vars.parse_or(
            var::REAPER_INTERVAL_SECONDS,
            default::REAPER_INTERVAL_SECONDS,
        )?;
        if interval == 0 {
            return Err(ConfigError::new(
                var::REAPER_INTERVAL_SECONDS,
                "must be at least 1",
            ));
        }
        Ok(Self {
            listen_addr: vars.parse_or(var::AUTH_ADDR, default::AUTH_ADDR)?,
            database_url,
            root_key,
            root_key_secondary,
            internal_key: InternalKey::from_vars(vars, mode, &data_dir)?,
            admin_token_file: vars
                .get(var::ADMIN_TOKEN_FILE)
                .map_or_else(|| data_dir.join(default::ADMIN_TOKEN_FILE), PathBuf::from),
            reaper_interval: Duration::from_secs(interval),
            trusted_proxies: trusted_proxies(vars)?,
            verify_cache_capacity: vars
                .parse_or(var::VERIFY_CACHE_CAPACITY, default::VERIFY_CACHE_CAPACITY)?,
            internal_addr,
            listening,
            state_cache_ttl: state_cache_ttl(vars)?,
            internal_link,
            failure_limits,
            verify_queue_capacity: vars
                .get(var::VERIFY_QUEUE_CAPACITY)
                .map(|_| vars.parse_or(var::VERIFY_QUEUE_CAPACITY, 0usize))
                .transpose()?,
            expired_grace: Duration::from_secs(vars.parse_or(
                var::EXPIRED_GRACE_SECONDS,
                default::EXPIRED_GRACE_SECONDS.unsigned_abs(),
            )?),
            audit: AuditSettings::from_vars(vars)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_without_a_root_key_is_refused_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let vars = Vars::from_pairs([
            ("LATCHKEY_ENV", "production"),
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
            ("LATCHKEY_INTERNAL_KEY", &"k".repeat(32)),
        ]);
        assert_eq!(
            Config::from_vars(&vars).unwrap_err().variable,
            "LATCHKEY_ROOT_KEY"
        );
    }

    #[test]
    fn development_generates_keys_and_defaults_to_sqlite_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let vars = Vars::from_pairs([("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap())]);
        let config = Config::from_vars(&vars).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:50051");
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(dir.path().join("root.key").exists());
        assert!(dir.path().join("internal.key").exists());
        assert_eq!(config.admin_token_file, dir.path().join("admin-token"));
    }

    #[test]
    fn malformed_root_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vars = Vars::from_pairs([
            ("LATCHKEY_DATA_DIR", dir.path().to_str().unwrap()),
            ("LATCHKEY_ROOT_KEY", "abc"),
        ]);
        assert_eq!(
            Config::from_vars(&vars).unwrap_err().variable,
            "LATCHKEY_ROOT_KEY"
        );
    }

    #[test]
    fn production_refuses_a_plaintext_internal_port_unless_a_mesh_is_declared() {
        let dir = tempfile::tempdir().unwrap();
        let pki = latchkey_test_support::Pki::new();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        let base = [
            ("LATCHKEY_ENV", "production".to_owned()),
            ("LATCHKEY_DATA_DIR", path(dir.path())),
            ("LATCHKEY_INTERNAL_KEY", "k".repeat(32)),
            ("LATCHKEY_ROOT_KEY", "ab".repeat(32)),
        ];
        let with = |extra: &[(&'static str, String)]| {
            Config::from_vars(&Vars::from_pairs(base.iter().chain(extra).cloned()))
        };
        let tls = [
            ("LATCHKEY_TLS_CERT_FILE", path(&pki.server_cert)),
            ("LATCHKEY_TLS_KEY_FILE", path(&pki.server_key)),
        ];
        let mut mtls = tls.to_vec();
        mtls.push(("LATCHKEY_TLS_CLIENT_CA_FILE", path(&pki.ca)));
        mtls.push(("LATCHKEY_INTERNAL_ADDR", "127.0.0.1:0".to_owned()));

        let plaintext = with(&[]).unwrap_err();
        let tls_only = with(&tls).unwrap_err();
        let mesh = with(&[("LATCHKEY_INTERNAL_TLS", "mesh".to_owned())]).unwrap();

        assert_eq!(plaintext.variable, "LATCHKEY_INTERNAL_ADDR");
        assert!(
            plaintext.message.contains("plaintext internal link")
                && plaintext.message.contains("LATCHKEY_INTERNAL_TLS=mesh"),
            "{}",
            plaintext.message
        );
        assert_eq!(
            tls_only.variable, "LATCHKEY_INTERNAL_ADDR",
            "TLS without mTLS"
        );
        assert_eq!(with(&mtls).unwrap().internal_link, InternalLink::Mtls);
        assert_eq!(mesh.internal_link, InternalLink::Mesh);
    }

    #[test]
    fn a_client_ca_without_an_internal_port_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = latchkey_test_support::Pki::new();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        let mut pairs = vec![
            ("LATCHKEY_DATA_DIR", path(dir.path())),
            ("LATCHKEY_TLS_CERT_FILE", path(&pki.server_cert)),
            ("LATCHKEY_TLS_KEY_FILE", path(&pki.server_key)),
            ("LATCHKEY_TLS_CLIENT_CA_FILE", path(&pki.ca)),
        ];

        let without = Config::from_vars(&Vars::from_pairs(pairs.clone()));
        pairs.push(("LATCHKEY_INTERNAL_ADDR", "127.0.0.1:0".to_owned()));
        let with = Config::from_vars(&Vars::from_pairs(pairs));

        assert_eq!(without.unwrap_err().variable, "LATCHKEY_TLS_CLIENT_CA_FILE");
        assert!(with.unwrap().internal_addr.is_some());
    }
}
