//! Serving a tower service over HTTP/1.1 and HTTP/2 (prior knowledge or
//! ALPN) on guarded connections, with the limits of the registry.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio_stream::{Stream, StreamExt};

use super::activity::ConnHandle;
use super::{Accepted, Connections};
use crate::accept::{MAX_HEADER_LIST_BYTES, Shutdown};

/// The TCP peer of an HTTP request, in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Serves `service` on the connections of `incoming` until `shutdown`,
/// then lets requests in flight finish for at most `grace`. Each request
/// carries its [`PeerAddr`]; HTTP/1.1 request headers are due within the
/// header deadline, HTTP/2 streams are capped and idle connections pinged.
pub async fn serve_http<S, B, IO>(
    service: S,
    incoming: impl Stream<Item = io::Result<IO>>,
    connections: &Connections,
    shutdown: Shutdown,
    grace: Duration,
) where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    IO: Accepted,
{
    let limits = connections.limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(usize::try_from(MAX_HEADER_LIST_BYTES).unwrap_or(usize::MAX));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Some(limits.keepalive_interval))
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_header_list_size(MAX_HEADER_LIST_BYTES);
    let service = tower::Layer::layer(&connections.activity(), service);
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    {
        let mut incoming = pin!(incoming);
        let signal = shutdown.clone().fired();
        let mut signal = pin!(signal);
        loop {
            let io = tokio::select! {
                () = &mut signal => break,
                io = incoming.next() => match io {
                    Some(Ok(io)) => io,
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "connection not served");
                        continue;
                    }
                    None => break,
                },
            };
            let conn = io.guarded().conn().clone();
            let peer = PeerAddr(conn.sockets.1);
            let service = service.clone();
            let per_request = tower::service_fn(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(peer);
                request.extensions_mut().insert(ConnHandle(conn.clone()));
                tower::ServiceExt::oneshot(service.clone(), request)
            });
            let builder = builder.clone();
            let mut closing = closing_rx.clone();
            tokio::spawn(async move {
                let connection = builder
                    .serve_connection(TokioIo::new(io), TowerToHyperService::new(per_request));
                let mut connection = pin!(connection);
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "HTTP connection ended");
                        }
                    }
                    () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
                drop(closing);
            });
        }
    }
    // Stopped accepting: ask every connection to finish, then wait for them
    // within the grace period.
    let _ = closing.send(true);
    drop(closing_rx);
    let drained = closing.closed();
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            grace_seconds = grace.as_secs(),
            "HTTP requests still in flight at the end of the drain bound; closing"
        );
    }
}
