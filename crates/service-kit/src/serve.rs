//! Reflection, health and listening for both services.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::accept::{MAX_HEADER_LIST_BYTES, Shutdown};
use crate::config::var;
use crate::rpc_span::RpcLayer;
use tonic_health::server::HealthReporter;

use crate::config::{ConfigError, Vars};
use crate::guard::{GuardLayer, MethodRules};
use crate::listen::{ConnectionLimits, Connections};
use crate::tls::{ReloadingTls, ServerTlsFiles};

/// The reflection services, `v1` and `v1alpha` (grpcurl builds that speak
/// only `v1alpha` are common), advertising `service` (a fully qualified
/// name such as `latchkey.auth.v1.AuthService`) and the health service.
pub fn reflection(
    service: &str,
) -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(latchkey_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service)
            .with_service_name("latchkey.audit.v1.AuditService")
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// The standard health service and its reporter.
#[must_use]
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// The error of building reflection.
pub type ReflectionError = tonic_reflection::server::Error;

/// Resolves on SIGINT or SIGTERM, so the server drains in-flight calls and stops.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight calls");
}

/// How a service listens, shared by both: TLS, the plaintext health port,
/// and how long shutdown may drain.
#[derive(Debug, Clone)]
pub struct Listening {
    /// `LATCHKEY_TLS_CERT_FILE`/`_KEY_FILE`/`_CLIENT_CA_FILE`; `None` is plaintext.
    pub tls: Option<ServerTlsFiles>,
    /// `LATCHKEY_TLS_RELOAD_MILLIS`: how often TLS files are reread, default 10000.
    pub tls_reload: Duration,
    /// `LATCHKEY_HEALTH_ADDR`: a plaintext port serving only the health
    /// service, for kubelet's gRPC probes, which speak no TLS.
    pub health_addr: Option<SocketAddr>,
    /// `LATCHKEY_SHUTDOWN_GRACE_SECONDS`: after SIGTERM, how long in-flight
    /// calls may take to finish before the server closes, default 20.
    pub shutdown_grace: Duration,
    /// The connection caps and deadlines of every port.
    pub limits: ConnectionLimits,
}

impl Listening {
    /// Reads the variables.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let health_addr = match vars.get(var::HEALTH_ADDR) {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|e| {
                ConfigError::new(var::HEALTH_ADDR, format!("{raw:?} is not host:port: {e}"))
            })?),
        };
        let reload: u64 = vars.parse_or(var::TLS_RELOAD_MILLIS, 10_000)?;
        Ok(Self {
            tls: ServerTlsFiles::from_vars(vars)?,
            tls_reload: Duration::from_millis(reload.max(10)),
            health_addr,
            shutdown_grace: Duration::from_secs(vars.parse_or(var::SHUTDOWN_GRACE_SECONDS, 20)?),
            limits: ConnectionLimits::from_vars(vars)?,
        })
    }
}

/// Serves `routes` on `listener` (over TLS when given) through
/// `connections`, under `rules` (token before message, message caps), one span per RPC, until `shutdown`, then lets in-flight
/// calls finish for at most `grace` before closing.
pub async fn serve_router(
    routes: Routes,
    rules: &MethodRules,
    listener: TcpListener,
    connections: &Connections,
    tls: Option<&ReloadingTls>,
    shutdown: Shutdown,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    let signal = shutdown.clone().fired();
    let router = grpc_server(connections.limits())
        .layer(connections.activity())
        .layer(RpcLayer)
        .layer(GuardLayer::new(rules.clone()))
        .add_routes(routes);
    let accepted = connections.incoming(listener);
    let server: std::pin::Pin<
        Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>,
    > = match tls {
        Some(tls) => Box::pin(router.serve_with_incoming_shutdown(tls.incoming(accepted), signal)),
        None => Box::pin(router.serve_with_incoming_shutdown(accepted, signal)),
    };
    let bound = async {
        shutdown.fired().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = bound => {
            tracing::warn!(grace_seconds = grace.as_secs(), "calls still in flight at the end of the drain bound; closing");
            Ok(())
        }
    }
}

/// tonic's server with the limits that it enforces itself: the request
/// timeout, streams per connection, HTTP/2 keepalive and the header list.
fn grpc_server(limits: &ConnectionLimits) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        // Well above any real header (tokens past MAX_TOKEN_BYTES are refused
        // by name), so only absurd ones meet the transport's own refusal.
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .timeout(limits.request_timeout)
        .max_concurrent_streams(limits.max_streams)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
}

/// Serves only `health` on `listener`, plaintext, through `connections`, until `shutdown`.
pub async fn serve_health(
    listener: TcpListener,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    connections: &Connections,
    shutdown: Shutdown,
) -> Result<(), HealthServeError> {
    grpc_server(connections.limits())
        .layer(connections.activity())
        .add_service(health)
        .serve_with_incoming_shutdown(connections.incoming(listener), shutdown.fired())
        .await
        .map_err(HealthServeError::Transport)
}

/// How many connections the kernel may hold for a listener before they
/// are accepted (capped by `net.core.somaxconn`). A plain bind asks for
/// 128, so a burst of a few hundred clients, a service's replicas starting
/// at once, had some connections dropped and reset before the service
/// ever saw them.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`], or says which address could not be bound.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As std and tokio do for listeners: a restart rebinds at once.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| BindError { addr, source })
}

/// A listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Why the health port stopped.
#[derive(Debug, thiserror::Error)]
pub enum HealthServeError {
    /// The server failed.
    #[error("health: {0}")]
    Transport(tonic::transport::Error),
}

/// The container health check (`latchkey-auth health`): asks this
/// service's own health endpoint, at `LATCHKEY_HEALTH_ADDR` or else the
/// plaintext address in `addr_var`, whether `service` is serving. True
/// only for `SERVING`; an image without a shell needs no other probe tool.
pub async fn health_check(vars: &Vars, addr_var: &str, default: SocketAddr, service: &str) -> bool {
    let raw = vars.get(var::HEALTH_ADDR).or_else(|| vars.get(addr_var));
    let mut addr = match raw.map(str::parse::<SocketAddr>) {
        None => default,
        Some(Ok(addr)) => addr,
        Some(Err(e)) => {
            eprintln!("health: {addr_var}: {e}");
            return false;
        }
    };
    // A wildcard listen address is reached on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => endpoint
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2)),
        Err(e) => {
            eprintln!("health: {addr}: {e}");
            return false;
        }
    };
    let answer = async {
        let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map(|r| r.into_inner().status)
            .map_err(|s| s.message().to_owned())
    }
    .await;
    match answer {
        Ok(status)
            if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 =>
        {
            true
        }
        Ok(status) => {
            eprintln!("health: {service} at {addr} is not serving (status {status})");
            false
        }
        Err(e) => {
            eprintln!("health: {addr}: {e}");
            false
        }
    }
}
