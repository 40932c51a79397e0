//! Wiring and serving: connect the store, create the bootstrap admin, serve
//! gRPC with reflection and health, and reap expired tokens in the background.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use latchkey_domain::audit::AuditKey;
use latchkey_domain::ports::Clock;
use latchkey_proto::audit::v1::audit_service_server::AuditServiceServer;
use latchkey_proto::auth::v1::auth_service_server::AuthServiceServer;
use latchkey_service_kit::accept::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Shutdown};
use latchkey_service_kit::audit::AuditLog;
use latchkey_service_kit::audit::api::AuditApi;
use latchkey_service_kit::audit::retention::spawn_retention;
use latchkey_service_kit::guard::MethodRules;
use latchkey_service_kit::listen::Connections;
use latchkey_service_kit::serve::{
    BindError, ReflectionError, bind, health, reflection, serve_health, serve_router,
};
use latchkey_service_kit::tls::ReloadingTls;
use latchkey_store::StartupLock;
use latchkey_store::audit::AuditStore;
use latchkey_store::auth::AuthStore;

use crate::store::CachedAuthStore;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::app::AuthApp;
use crate::config::Config;
use crate::config::default::EXPIRED_GRACE_SECONDS;
use crate::error::AuthError;
use crate::grpc::{AppAuditGate, AuthGrpc, AuthorizeGate};
use crate::verifier::Verifier;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] latchkey_store::StoreError),
    /// The bootstrap admin could not be created.
    #[error("bootstrap admin: {0}")]
    Bootstrap(#[from] AuthError),
    /// Reflection could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] ReflectionError),
    /// The gRPC server failed.
    #[error("serve: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The TLS files do not load.
    #[error("TLS: {0}")]
    Tls(#[from] latchkey_service_kit::tls::TlsError),
    /// The health port failed.
    #[error("{0}")]
    Health(#[from] latchkey_service_kit::serve::HealthServeError),
    /// An address could not be bound.
    #[error("{0}")]
    Bind(#[from] BindError),
    /// `LATCHKEY_AUDIT_FILE` could not be opened.
    #[error("audit: {0}")]
    AuditFile(#[from] latchkey_service_kit::audit::AuditFileError),
}

/// The sockets the auth service serves on, bound by its caller.
#[derive(Debug)]
pub struct Listeners {
    /// Clients: every call but `Authorize` when there is an internal port.
    pub public: TcpListener,
    /// `Authorize` for the secrets service (`LATCHKEY_INTERNAL_ADDR`).
    pub internal: Option<TcpListener>,
    /// Plaintext health for kubelet's probes (`LATCHKEY_HEALTH_ADDR`).
    pub health: Option<TcpListener>,
}

impl Listeners {
    /// Binds every address `config` names.
    pub fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Self {
            public: bind(config.listen_addr)?,
            internal: config.internal_addr.map(bind).transpose()?,
            health: config.listening.health_addr.map(bind).transpose()?,
        })
    }
}

impl From<TcpListener> for Listeners {
    fn from(public: TcpListener) -> Self {
        Self {
            public,
            internal: None,
            health: None,
        }
    }
}

/// A started auth service, ready to serve.
#[derive(Debug, Clone)]
pub struct Running {
    /// The use cases, shared with the server (tests read counters and run the reaper).
    pub app: Arc<AuthApp>,
    /// Where the bootstrap admin token was written, when this start created it.
    pub admin_token_file: Option<PathBuf>,
    /// The audit table, served by the audit API.
    pub audit_store: AuditStore,
}

/// Connects the store, runs migrations and creates the bootstrap admin.
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    config.internal_link.warn_if_mesh();
    // Replicas starting together migrate and bootstrap one at a time.
    let lock = StartupLock::acquire(&config.database_url, "auth").await?;
    let store = AuthStore::connect(&config.database_url).await?;
    let audit_key = AuditKey::derive(&config.root_key);
    let audit_store = store.audit();
    let audit = AuditLog::start(
        config.audit.mode,
        Arc::new(audit_store.clone()),
        Box::new(move || {
            let key = audit_key.clone();
            Box::pin(async move { Ok(key) })
        }),
        config.audit.replica("auth"),
        clock.clone(),
        config.audit.taps("auth")?,
    );
    let app = Arc::new(
        AuthApp::new(
            CachedAuthStore::new(
                store,
                clock.clone(),
                chrono::Duration::from_std(config.state_cache_ttl)
                    .unwrap_or_else(|_| chrono::Duration::seconds(1)),
            ),
            config.root_key.clone(),
            config.internal_key.clone(),
            clock,
            Verifier::with_queue(config.verify_cache_capacity, config.verify_queue_capacity),
        )
        .with_secondary_root_key(config.root_key_secondary.clone())
        .with_failure_limits(config.failure_limits)
        .with_expired_grace(
            chrono::Duration::from_std(config.expired_grace)
                .unwrap_or_else(|_| chrono::Duration::seconds(EXPIRED_GRACE_SECONDS)),
        )
        .with_audit(audit),
    );
    let prepared = async {
        let rewrapped = app.rewrap_project_keys().await?;
        if rewrapped > 0 {
            tracing::info!(
                projects = rewrapped,
                "project keys rewrapped under the new root key"
            );
        }
        app.bootstrap_admin(&config.admin_token_file).await
    }
    .await;
    lock.release().await;
    let admin_token_file = prepared?;
    Ok(Running {
        app,
        admin_token_file,
        audit_store,
    })
}

/// Serves `running` on `listener` until `shutdown` resolves, reaping expired
/// tokens every `config.reaper_interval`.
pub async fn serve(
    running: &Running,
    config: &Config,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (reflection_v1, reflection_v1alpha) = reflection("latchkey.auth.v1.AuthService")?;
    let (reporter, health_service) = health();
    reporter.set_serving::<AuthServiceServer<AuthGrpc>>().await;
    let reaper = {
        let app = running.app.clone();
        let every = config.reaper_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = app.reap().await {
                    tracing::warn!(error = %e, "reaper failed; retrying next interval");
                }
            }
        })
    };
    let retention = config.audit.retention.map(|keep| {
        let key = running.app.audit_key();
        spawn_retention(
            running.audit_store.clone(),
            Box::new(move || {
                let key = key.clone();
                Box::pin(async move { Ok(key) })
            }),
            keep,
            running.app.clock(),
        )
    });
    let flusher = {
        let app = running.app.clone();
        let every = config
            .state_cache_ttl
            .max(std::time::Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = app.flush_uses().await {
                    tracing::warn!(error = %e, "writing batched use counts failed; retrying next interval");
                }
            }
        })
    };
    let mut listeners = listeners.into();
    let health_listener = listeners.health.take();
    let shutdown = Shutdown::on(shutdown);
    let listening = &config.listening;
    // Clients get TLS without client certificates; the internal port asks
    // for one when a client CA is configured.
    let public_tls = listening
        .tls
        .as_ref()
        .map(|files| ReloadingTls::load(files.without_client_auth()))
        .transpose()?;
    let internal_tls = listening
        .tls
        .as_ref()
        .filter(|_| listeners.internal.is_some())
        .map(|files| ReloadingTls::load(files.clone()))
        .transpose()?;
    let reloaders: Vec<_> = public_tls
        .iter()
        .chain(internal_tls.iter())
        .map(|tls| tls.spawn_reloader(listening.tls_reload))
        .collect();
    // One registry for every port: the descriptor limit is the process's.
    let connections = Connections::new(listening.limits.clone(), config.trusted_proxies.clone());
    let grpc = AuthGrpc::new(running.app.clone(), config.trusted_proxies.clone());
    let public_gate = if listeners.internal.is_some() {
        AuthorizeGate::Elsewhere
    } else {
        AuthorizeGate::InternalKey
    };
    let rules = method_rules().audited(running.app.audit().clone(), config.trusted_proxies.clone());
    let public = serve_router(
        Routes::new(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(limited(AuthServiceServer::new(
                grpc.clone().with_gate(public_gate),
            )))
            .add_service(
                AuditServiceServer::new(AuditApi::new(
                    running.audit_store.clone(),
                    Arc::new(AppAuditGate(running.app.clone())),
                    running.app.audit().clone(),
                    config.trusted_proxies.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
            ),
        &rules,
        listeners.public,
        &connections,
        public_tls.as_ref(),
        shutdown.clone(),
        listening.shutdown_grace,
    );
    let internal = async {
        let Some(listener) = listeners.internal else {
            return Ok(());
        };
        let gate = if listening
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some())
        {
            AuthorizeGate::ClientCertificate
        } else {
            AuthorizeGate::InternalKey
        };
        serve_router(
            Routes::new(health_service.clone()).add_service(limited(AuthServiceServer::new(
                grpc.clone().with_gate(gate),
            ))),
            &rules,
            listener,
            &connections,
            internal_tls.as_ref(),
            shutdown.clone(),
            listening.shutdown_grace,
        )
        .await
    };
    let health = async {
        match health_listener {
            Some(listener) => serve_health(
                listener,
                health_service.clone(),
                &connections,
                shutdown.clone(),
            )
            .await
            .map_err(StartError::from),
            None => Ok(()),
        }
    };
    let result = tokio::try_join!(
        async { public.await.map_err(StartError::from) },
        async { internal.await.map_err(StartError::from) },
        health
    )
    .map(drop);
    for reloader in reloaders {
        reloader.abort();
    }
    reaper.abort();
    flusher.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    // Calls have drained: write the last batched uses before stopping.
    if let Err(e) = running.app.flush_uses().await {
        tracing::warn!(error = %e, "writing batched use counts at shutdown failed");
    }
    result
}

/// Starts and serves on `listeners` until `shutdown`.
pub async fn run(
    config: Config,
    listeners: impl Into<Listeners>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let running = start(&config, clock).await?;
    serve(&running, &config, listeners, shutdown).await
}

/// Which calls take a bearer token, and each message's real maximum: a
/// scoped request holds at most `MAX_SCOPES` globs of `MAX_PATH_LEN` with
/// their environments, and `MAX_TRUSTED_IPS` addresses; every other
/// request holds ids, names, one path and at most one token.
fn method_rules() -> MethodRules {
    use latchkey_domain::identity::kubernetes_auth::{
        MAX_ALLOWED, MAX_ENTRY_BYTES, MAX_JWT_BYTES, MAX_KEYS_BYTES,
    };
    use latchkey_domain::ip::MAX_TRUSTED_IPS;
    use latchkey_domain::path::MAX_PATH_LEN;
    use latchkey_domain::scope::MAX_SCOPES;
    const SCOPED: usize = MAX_SCOPES * (MAX_PATH_LEN + 128) + MAX_TRUSTED_IPS * 64 + 8 * 1024;
    const TRUSTED_IPS: usize = MAX_TRUSTED_IPS * 64 + 8 * 1024;
    const KUBERNETES: usize = MAX_KEYS_BYTES + 5 * MAX_ALLOWED * MAX_ENTRY_BYTES + TRUSTED_IPS;
    const PREFIX: &str = "/latchkey.auth.v1.AuthService/";
    MethodRules::new(
        PREFIX,
        // Their credentials are elsewhere: the internal key (and the token
        // checked, in the message), or the access token to renew or revoke.
        &[
            "Authorize",
            "CountEncryptions",
            "GetAuditKey",
            "GetAuditReach",
            "RenewAccessToken",
            "RevokeAccessToken",
            "LoginUniversalAuth",
            "LoginKubernetesAuth",
        ],
        16 * 1024,
        &[
            ("/latchkey.auth.v1.AuthService/CreateServiceToken", SCOPED),
            ("/latchkey.auth.v1.AuthService/AddIdentityToProject", SCOPED),
            (
                "/latchkey.auth.v1.AuthService/SetProjectTrustedIps",
                TRUSTED_IPS,
            ),
            ("/latchkey.auth.v1.AuthService/AttachTokenAuth", TRUSTED_IPS),
            ("/latchkey.auth.v1.AuthService/UpdateTokenAuth", TRUSTED_IPS),
            (
                "/latchkey.auth.v1.AuthService/AttachKubernetesAuth",
                KUBERNETES,
            ),
            (
                "/latchkey.auth.v1.AuthService/UpdateKubernetesAuth",
                KUBERNETES,
            ),
            (
                "/latchkey.auth.v1.AuthService/LoginKubernetesAuth",
                MAX_JWT_BYTES + 8 * 1024,
            ),
            (
                "/latchkey.auth.v1.AuthService/AttachUniversalAuth",
                2 * TRUSTED_IPS,
            ),
            (
                "/latchkey.auth.v1.AuthService/UpdateUniversalAuth",
                2 * TRUSTED_IPS,
            ),
        ],
    )
}

/// The service with the message size limits set explicitly.
fn limited(server: AuthServiceServer<AuthGrpc>) -> AuthServiceServer<AuthGrpc> {
    server
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
}
