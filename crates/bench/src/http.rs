//! A minimal keep-alive HTTP/1.1 client for the HTTP API scenario: one
//! connection per worker, as the gRPC scenarios share one channel, so the
//! comparison is of serving a request, not of opening connections.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BoxError;

/// Idle connections to one address.
#[derive(Clone)]
pub(crate) struct Pool {
    addr: String,
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

impl Pool {
    /// A pool of connections to `addr` (`host:port`), opened as needed.
    pub(crate) fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            idle: Arc::default(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        let stream = TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (send, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(send)
    }

    /// `GET target` with `token` as the bearer; the whole body is read.
    pub(crate) async fn get(&self, target: &str, token: &str) -> Result<(), tonic::Status> {
        self.send(hyper::Method::GET, target, token, Bytes::new())
            .await
    }

    /// `method target` with `token` as the bearer and a JSON `body`; the
    /// whole answer is read.
    pub(crate) async fn send(
        &self,
        method: hyper::Method,
        target: &str,
        token: &str,
        body: Bytes,
    ) -> Result<(), tonic::Status> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut send = match idle {
            Some(send) => send,
            None => self
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?,
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(target)
            .header(hyper::header::HOST, &self.addr)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(send);
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(tonic::Status::unknown(format!("HTTP {status}")))
        }
    }
}
