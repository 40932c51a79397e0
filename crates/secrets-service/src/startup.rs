//! Wiring and serving the secrets service.

use std::future::Future;
use std::sync::Arc;

use latchkey_domain::ports::{Authorizer, Clock, SystemClock};
use latchkey_proto::audit::v1::audit_service_server::AuditServiceServer;
use latchkey_proto::secrets::v1::secrets_service_server::SecretsServiceServer;
use latchkey_service_kit::accept::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Shutdown};
use latchkey_service_kit::audit::api::AuditApi;
use latchkey_service_kit::audit::retention::spawn_retention;
use latchkey_service_kit::audit::{AuditLog, KeySource};
use latchkey_service_kit::guard::MethodRules;
use latchkey_service_kit::listen::Connections;
use latchkey_service_kit::serve::{
    BindError, ReflectionError, bind, health, reflection, serve_health, serve_router,
};
use latchkey_service_kit::tls::ReloadingTls;
use latchkey_store::StartupLock;
use latchkey_store::audit::AuditStore;
use latchkey_store::secrets::SecretStore;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::app::SecretsApp;
use crate::audit_gate::AuthorizerAuditGate;
use crate::auth_client::GrpcAuthorizer;
use crate::config::Config;
use crate::grpc::SecretsGrpc;
use crate::store::CachedSecretStore;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] latchkey_store::StoreError),
    /// Reflection could not be built from the descriptors.
    #[error("reflection: {0}")]
    Reflection(#[from] ReflectionError),
    /// The gRPC server failed, or the auth URL is not a valid endpoint.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The client to the auth service could not be built.
    #[error("{0}")]
    AuthClient(#[from] crate::auth_client::AuthClientError),
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

/// The sockets the secrets service serves on, bound by its caller.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC (`LATCHKEY_SECRETS_ADDR`).
    pub grpc: TcpListener,
    /// The Infisical-compatible HTTP API (`LATCHKEY_HTTP_ADDR`).
    pub http: Option<TcpListener>,
    /// Plaintext health for kubelet's probes (`LATCHKEY_HEALTH_ADDR`).
    pub health: Option<TcpListener>,
}

impl Listeners {
    /// Binds every address `config` names.
    pub fn bind(config: &Config) -> Result<Self, BindError> {
        Ok(Self {
            grpc: bind(config.listen_addr)?,
            http: config.http_addr.map(bind).transpose()?,
            health: config.listening.health_addr.map(bind).transpose()?,
        })
    }
}

impl From<TcpListener> for Listeners {
    fn from(grpc: TcpListener) -> Self {
        Self {
            grpc,
            http: None,
            health: None,
        }
    }
}

/// A started secrets service: store connected and migrated, ready to serve.
#[derive(Debug, Clone)]
pub struct Running {
    /// The use cases, shared with the server.
    pub app: Arc<SecretsApp>,
    /// The audit table and who may read it, for the audit API.
    audit: (AuditStore, Arc<dyn Authorizer>),
    /// The clock events and retention go by.
    clock: Arc<dyn Clock>,
}

/// The client of the auth service that `config` describes (lazy: the
/// secrets service starts while the auth service is down).
pub fn authorizer(config: &Config) -> Result<GrpcAuthorizer, StartError> {
    Ok(match &config.auth_tls {
        None => GrpcAuthorizer::new(
            &config.auth_url,
            config.internal_key.clone(),
            config.auth_timeout,
        )?,
        Some(files) => GrpcAuthorizer::with_tls(
            &config.auth_url,
            config.internal_key.clone(),
            config.auth_timeout,
            files.clone(),
            config.listening.tls_reload,
        )?,
    })
}

/// Connects the store and runs its migrations; any [`Authorizer`] (tests use fakes).
pub async fn start(
    config: &Config,
    authorizer: Arc<dyn Authorizer>,
    clock: Arc<dyn Clock>,
) -> Result<Running, StartError> {
    config.internal_link.warn_if_mesh();
    // Replicas starting together migrate one at a time.
    let lock = StartupLock::acquire(&config.database_url, "secrets").await?;
    let store = SecretStore::connect(&config.database_url).await;
    lock.release().await;
    let ttl = chrono::Duration::from_std(config.state_cache_ttl)
        .unwrap_or_else(|_| chrono::Duration::seconds(1));
    let store = store?;
    let audit_store = store.audit();
    let audit = AuditLog::start(
        config.audit.mode,
        Arc::new(audit_store.clone()),
        audit_key_source(authorizer.clone()),
        config.audit.replica("secrets"),
        clock.clone(),
        config.audit.taps("secrets")?,
    );
    let retention_clock = clock.clone();
    let store = CachedSecretStore::new(store, clock, ttl, config.secrets_cache_bytes);
    Ok(Running {
        app: Arc::new(SecretsApp::new(store, authorizer.clone(), audit)),
        audit: (audit_store, authorizer),
        clock: retention_clock,
    })
}

/// The audit key, asked of the auth service (which derives it from the
/// root key) until it answers.
fn audit_key_source(authorizer: Arc<dyn Authorizer>) -> KeySource {
    Box::new(move || {
        let authorizer = authorizer.clone();
        Box::pin(async move { authorizer.audit_key().await.map_err(|e| e.to_string()) })
    })
}

/// Starts with the auth client and the system clock, then serves on
/// `listeners` until `shutdown`.
pub async fn run(
    config: Config,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let authorizer = Arc::new(authorizer(&config)?);
    let running = start(&config, authorizer, Arc::new(SystemClock)).await?;
    serve(&running, &config, listeners, shutdown).await
}

/// Serves `running` on `listeners` until `shutdown` resolves.
pub async fn serve(
    running: &Running,
    config: &Config,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let Listeners {
        grpc: listener,
        http: http_listener,
        health: health_listener,
    } = listeners.into();
    let app = running.app.clone();
    let (reflection_v1, reflection_v1alpha) = reflection("latchkey.secrets.v1.SecretsService")?;
    let (reporter, health_service) = health();
    reporter
        .set_serving::<SecretsServiceServer<SecretsGrpc>>()
        .await;
    let shutdown = Shutdown::on(shutdown);
    let listening = &config.listening;
    let tls = listening
        .tls
        .as_ref()
        .map(|files| ReloadingTls::load(files.without_client_auth()))
        .transpose()?;
    let reloader = tls.as_ref().map(|t| t.spawn_reloader(listening.tls_reload));
    // One registry for every port: the descriptor limit is the process's.
    let connections = Connections::new(listening.limits.clone(), config.trusted_proxies.clone());
    let retention = config.audit.retention.map(|keep| {
        spawn_retention(
            running.audit.0.clone(),
            audit_key_source(running.audit.1.clone()),
            keep,
            running.clock.clone(),
        )
    });
    let rules = method_rules().audited(app.audit().clone(), config.trusted_proxies.clone());
    let public = serve_router(
        Routes::new(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                SecretsServiceServer::new(SecretsGrpc::new(
                    app.clone(),
                    config.trusted_proxies.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
            )
            .add_service(
                AuditServiceServer::new(AuditApi::new(
                    running.audit.0.clone(),
                    Arc::new(AuthorizerAuditGate(running.audit.1.clone())),
                    app.audit().clone(),
                    config.trusted_proxies.clone(),
                ))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
            ),
        &rules,
        listener,
        &connections,
        tls.as_ref(),
        shutdown.clone(),
        listening.shutdown_grace,
    );
    let http_tls = match &http_listener {
        Some(_) => listening
            .tls
            .as_ref()
            .map(|files| ReloadingTls::load_for_http(files.without_client_auth()))
            .transpose()?,
        None => None,
    };
    let http_reloader = http_tls
        .as_ref()
        .map(|t| t.spawn_reloader(listening.tls_reload));
    let http = async {
        if let Some(listener) = http_listener {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(addr = %addr, "Infisical-compatible HTTP API listening");
            }
            crate::http::serve(
                crate::http::router(running.app.clone(), config.trusted_proxies.clone()),
                listener,
                &connections,
                http_tls.as_ref(),
                shutdown.clone(),
                listening.shutdown_grace,
            )
            .await;
        }
        Ok::<_, StartError>(())
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
        health,
        http
    )
    .map(drop);
    for task in [reloader, http_reloader, retention].into_iter().flatten() {
        task.abort();
    }
    result
}

/// Every call takes a bearer token; a write holds at most one value of
/// `MAX_VALUE_BYTES` (or its ciphertext, IV and tag) with its folder and
/// name, every other request ids, a path and a name.
fn method_rules() -> MethodRules {
    use latchkey_domain::model::MAX_VALUE_BYTES;
    use latchkey_domain::path::MAX_PATH_LEN;
    const WRITE: usize = MAX_VALUE_BYTES + MAX_PATH_LEN + 8 * 1024;
    MethodRules::new(
        "/latchkey.secrets.v1.SecretsService/",
        &[],
        16 * 1024,
        &[
            ("/latchkey.secrets.v1.SecretsService/SetSecret", WRITE),
            ("/latchkey.secrets.v1.SecretsService/SetSecretRaw", WRITE),
        ],
    )
}
