//! An accepted connection that closes itself when it is late: its first
//! bytes, its first request's headers, or (with no request in flight) its
//! next request; or when the registry closes it for a newer one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::registry::{Conn, Registry};

/// A connection admitted by [`super::Connections`]; reading from it fails
/// with `TimedOut` past its deadline and `ConnectionAborted` once evicted,
/// which makes the server drop it. Dropping it frees its place.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    read_any: bool,
}

impl<IO> Guarded<IO> {
    pub(crate) fn new(io: IO, conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        let accepted = conn.accepted;
        Self {
            io,
            conn,
            registry,
            timer: Box::pin(tokio::time::sleep_until(accepted)),
            armed: None,
            read_any: false,
        }
    }

    /// When this connection must have done something more, and what: `None`
    /// while a request is in flight (the request timeout bounds it).
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        let limits = self.registry.limits();
        if !self.read_any {
            Some((
                self.conn.accepted + limits.first_byte_timeout,
                "no bytes before the first-byte deadline",
            ))
        } else if !self.conn.started() {
            Some((
                self.conn.accepted + limits.header_timeout,
                "no complete request headers before the header deadline",
            ))
        } else if self.conn.in_flight() > 0 {
            None
        } else {
            Some((
                self.conn.last_active() + limits.idle_timeout,
                "idle past the idle timeout",
            ))
        }
    }
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        self.registry.remove(&self.conn);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.conn.evicted() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to admit a newer connection",
            )));
        }
        this.conn.register(cx.waker());
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_any = true;
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some((at, why)) = this.deadline() else {
            return Poll::Pending;
        };
        if this.armed != Some(at) {
            this.timer.as_mut().reset(at);
            this.armed = Some(at);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(peer = %this.conn.sockets.1, reason = why, "connection closed");
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// tonic reads the peer (`remote_addr`) and, through TLS, the client
/// certificates (`peer_certs`) from exactly this type.
impl Connected for Guarded<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: Some(self.conn.sockets.0),
            remote_addr: Some(self.conn.sockets.1),
        }
    }
}

/// A connection as served: plain or TLS over a [`Guarded`] stream.
pub trait Accepted: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The guarded TCP stream underneath.
    fn guarded(&self) -> &Guarded<TcpStream>;
}

impl Accepted for Guarded<TcpStream> {
    fn guarded(&self) -> &Guarded<TcpStream> {
        self
    }
}

impl Accepted for tokio_rustls::server::TlsStream<Guarded<TcpStream>> {
    fn guarded(&self) -> &Guarded<TcpStream> {
        self.get_ref().0
    }
}

impl Guarded<TcpStream> {
    /// The client's TCP address.
    #[must_use]
    pub fn peer(&self) -> std::net::SocketAddr {
        self.conn.sockets.1
    }

    /// The TCP stream.
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }

    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}
