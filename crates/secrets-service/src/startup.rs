//! Wiring and serving the secrets service.

use std::future::Future;
use std::sync::Arc;

use latchkey_domain::ports::Authorizer;
use latchkey_proto::secrets::v1::secrets_service_server::SecretsServiceServer;
use latchkey_service_kit::serve::{
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, ReflectionError, Shutdown, health, reflection,
    serve_health, serve_router,
};
use latchkey_service_kit::tls::ReloadingTls;
use latchkey_store::StartupLock;
use latchkey_store::secrets::SecretStore;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::app::SecretsApp;
use crate::auth_client::GrpcAuthorizer;
use crate::config::Config;
use crate::grpc::SecretsGrpc;

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
}

/// Connects the store and the auth client, then serves until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    config.internal_link.warn_if_mesh();
    let authorizer = match &config.auth_tls {
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
    };
    run_with(config, listener, Arc::new(authorizer), shutdown).await
}

/// Like [`run`] with any [`Authorizer`] (tests use fakes).
pub async fn run_with<A: Authorizer>(
    config: Config,
    listener: TcpListener,
    authorizer: Arc<A>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    // Replicas starting together migrate one at a time.
    let lock = StartupLock::acquire(&config.database_url, "secrets").await?;
    let store = SecretStore::connect(&config.database_url).await;
    lock.release().await;
    let store = store?;
    let app = Arc::new(SecretsApp::new(
        store,
        authorizer,
        Arc::new(latchkey_domain::ports::SystemClock),
    ));
    let (reflection_v1, reflection_v1alpha) = reflection("latchkey.secrets.v1.SecretsService")?;
    let (reporter, health_service) = health();
    reporter
        .set_serving::<SecretsServiceServer<SecretsGrpc<A>>>()
        .await;
    let shutdown = Shutdown::on(shutdown);
    let listening = &config.listening;
    let tls = listening
        .tls
        .as_ref()
        .map(|files| ReloadingTls::load(files.without_client_auth()))
        .transpose()?;
    let reloader = tls.as_ref().map(|t| t.spawn_reloader(listening.tls_reload));
    let public = serve_router(
        Routes::new(health_service.clone())
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                SecretsServiceServer::new(SecretsGrpc::new(app, config.trusted_proxies.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES)
                    .max_encoding_message_size(MAX_RESPONSE_BYTES),
            ),
        listener,
        tls.as_ref(),
        shutdown.clone(),
        listening.shutdown_grace,
    );
    let health = async {
        match listening.health_addr {
            Some(addr) => serve_health(addr, health_service.clone(), shutdown.clone()).await,
            None => Ok(()),
        }
    };
    let result = tokio::try_join!(public, health).map(drop);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    Ok(result?)
}
