//! Marks each request in flight on the connection it arrived on, so a
//! connection is idle only with no request in flight.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::registry::{Conn, Registry};

/// The connection of a request, put in its extensions by [`super::serve_http`].
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle(pub(crate) Arc<Conn>);

/// The layer of [`ActivityService`].
#[derive(Debug, Clone)]
pub struct ActivityLayer {
    registry: Arc<Registry>,
}

impl ActivityLayer {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl<S> tower::Layer<S> for ActivityLayer {
    type Service = ActivityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ActivityService {
            inner,
            registry: self.registry.clone(),
        }
    }
}

/// Holds a request's connection busy until its response is ready.
#[derive(Debug, Clone)]
pub struct ActivityService<S> {
    inner: S,
    registry: Arc<Registry>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for ActivityService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let in_flight = self.connection(&request).map(|conn| conn.begin());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}

impl<S> ActivityService<S> {
    fn connection<B>(&self, request: &http::Request<B>) -> Option<Arc<Conn>> {
        let extensions = request.extensions();
        if let Some(ConnHandle(conn)) = extensions.get::<ConnHandle>() {
            return Some(conn.clone());
        }
        let info = tcp_info(extensions)?;
        self.registry.find(info.local_addr?, info.remote_addr?)
    }
}

/// The TCP addresses tonic left on a request, over TLS or not.
pub(crate) fn tcp_info(extensions: &http::Extensions) -> Option<&TcpConnectInfo> {
    extensions.get::<TcpConnectInfo>().or_else(|| {
        extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(TlsConnectInfo::get_ref)
    })
}
