//! What every listener applies to what it accepts, and every server waits
//! on: the size limits, the accepted socket's options, the shutdown signal.
//! A leaf: it imports nothing of this crate, so `serve`, `listen` and the
//! status rewrite all take these from one place.

use std::future::Future;

use tokio::net::TcpStream;

/// A shutdown signal many servers can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Fires when `signal` resolves.
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
        });
        Self(rx)
    }

    /// Resolves once the signal fired.
    pub async fn fired(mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}

/// The largest HTTP/2 header list a call may send.
pub const MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;

/// The largest request message the services decode; a secret value is at
/// most 64 KiB, so no valid request comes near it.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The largest response message the services encode (a recursive listing).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Prepares an accepted connection: `TCP_NODELAY`, so a small reply is
/// sent at once instead of waiting on Nagle and the peer's delayed ACK
/// (tens of milliseconds per call). Every listener's accept goes through here.
pub fn prepare_accepted(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
    }
}
