//! The Infisical-compatible HTTP API: a second transport over the same use
//! cases as gRPC, so every scope, permission, IP, expiry and use-limit rule
//! is the auth service's `Authorize`, as for gRPC. Infisical's own clients
//! (SDKs, CLI, Kubernetes operator) read and write through it unchanged;
//! `INFISICAL-COMPAT.md` is the reference for what they send and read.
//!
//! - `encrypted`: the older clients' encrypted reads (`GET /api/v3/secrets`).
//! - `error`: denials and bad input as Infisical's JSON error bodies.
//! - `params`: query strings and bodies to domain types.
//! - `raw`: the plaintext secrets endpoints (`/api/v3/secrets/raw`, `/api/v4/secrets`).
//! - `service_token`: `GET /api/v2/service-token`, what a service token is.
//! - `reply`: the caller, the query string and JSON replies.
//! - `token_auth`: Token Auth renew and revoke for machine identity tokens.
//! - `trace`: the per-request span, trace context and metrics.

mod encrypted;
mod error;
mod params;
mod raw;
mod reply;
mod service_token;
mod token_auth;
mod trace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use latchkey_domain::ip::TrustedIps;
use latchkey_domain::ports::Authorizer;
use latchkey_service_kit::serve::{MAX_REQUEST_BYTES, Shutdown, prepare_accepted};
use latchkey_service_kit::tls::ReloadingTls;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::app::SecretsApp;

/// What every handler shares.
#[derive(Debug)]
struct Http<A> {
    app: Arc<SecretsApp<A>>,
    trusted_proxies: TrustedIps,
}

/// The HTTP routes over `app`, honouring `x-forwarded-for` only from
/// `trusted_proxies`.
pub fn router<A: Authorizer>(app: Arc<SecretsApp<A>>, trusted_proxies: TrustedIps) -> Router {
    let state = Arc::new(Http {
        app,
        trusted_proxies,
    });
    Router::new()
        .route("/api/v1/auth/token/renew", post(token_auth::renew::<A>))
        .route("/api/v1/auth/token/revoke", post(token_auth::revoke::<A>))
        .route("/api/v2/service-token", get(service_token::describe::<A>))
        .route("/api/v3/secrets", get(encrypted::list::<A>))
        .route("/api/v3/secrets/{name}", get(encrypted::get::<A>))
        .route("/api/v3/secrets/raw", get(raw::list::<A>))
        .route(
            "/api/v3/secrets/raw/{name}",
            get(raw::get::<A>)
                .post(raw::create::<A>)
                .patch(raw::update::<A>)
                .delete(raw::delete::<A>),
        )
        .route("/api/v4/secrets", get(raw::list::<A>))
        .route(
            "/api/v4/secrets/{name}",
            get(raw::get::<A>)
                .post(raw::create::<A>)
                .patch(raw::update::<A>)
                .delete(raw::delete::<A>),
        )
        .fallback(error::unknown_route)
        .layer(axum::middleware::from_fn(trace::trace))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// Serves `router` on `listener` (over TLS when given) until `shutdown`,
/// then lets requests in flight finish for at most `grace`.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Option<&ReloadingTls>,
    shutdown: Shutdown,
    grace: Duration,
) -> std::io::Result<()> {
    let service = router.into_make_service_with_connect_info::<Peer>();
    let signal = shutdown.clone().fired();
    let server: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        Some(tls) => {
            let local = listener.local_addr()?;
            let listener = TlsListener {
                accepted: tls.incoming(listener),
                local,
            };
            Box::pin(
                axum::serve(listener, service)
                    .with_graceful_shutdown(signal)
                    .into_future(),
            )
        }
        None => Box::pin(
            axum::serve(PlainListener(listener), service)
                .with_graceful_shutdown(signal)
                .into_future(),
        ),
    };
    let bound = async {
        shutdown.fired().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = bound => {
            tracing::warn!(grace_seconds = grace.as_secs(), "HTTP requests still in flight at the end of the drain bound; closing");
            Ok(())
        }
    }
}

/// The TCP peer of a connection, for the client-IP rules.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

macro_rules! peer_of {
    ($($listener:ty),*) => {$(
        impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, $listener>>
            for Peer
        {
            fn connect_info(stream: axum::serve::IncomingStream<'_, $listener>) -> Self {
                Peer(*stream.remote_addr())
            }
        }
    )*};
}

peer_of!(PlainListener, TlsListener);

/// Plain TCP connections, each [`prepare_accepted`] (`TCP_NODELAY`).
struct PlainListener(TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    prepare_accepted(&stream);
                    return (stream, peer);
                }
                Err(e) => {
                    // Out of descriptors, most likely: back off, as axum does.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// TLS connections, handshaken by [`ReloadingTls::incoming`] (which sets
/// `TCP_NODELAY` on each) as an axum listener.
struct TlsListener {
    accepted: ReceiverStream<std::io::Result<TlsStream<TcpStream>>>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.accepted.next().await {
                Some(Ok(stream)) => match stream.get_ref().0.peer_addr() {
                    Ok(peer) => return (stream, peer),
                    Err(e) => tracing::info!(error = %e, "accepted connection has no peer"),
                },
                Some(Err(e)) => tracing::warn!(error = %e, "TLS accept failed"),
                // The acceptor stops only with the process.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener as _;
    use latchkey_service_kit::tls::ServerTlsFiles;
    use rustls::pki_types::ServerName;

    use super::*;

    #[tokio::test]
    async fn every_plaintext_http_connection_is_accepted_with_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = PlainListener(listener);
        for _ in 0..3 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (server_side, peer) = listener.accept().await;
            assert!(server_side.nodelay().unwrap());
            assert_eq!(peer, client.local_addr().unwrap());
        }
    }

    /// Python's `requests` and Node offer only `http/1.1` over TLS; the
    /// gRPC ports offer only `h2`.
    #[tokio::test]
    async fn tls_http_connections_get_tcp_nodelay_and_negotiate_http_1_1() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("c.key"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let tls = ReloadingTls::load_for_http(ServerTlsFiles {
            cert: cert_path,
            key: key_path,
            client_ca: None,
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let mut listener = TlsListener {
            accepted: tls.incoming(listener),
            local,
        };
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(local).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let (client, (server_side, _)) =
            tokio::join!(connector.connect(name, tcp), listener.accept());
        let client = client.unwrap();
        assert_eq!(client.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert!(server_side.get_ref().0.nodelay().unwrap());
    }
}
