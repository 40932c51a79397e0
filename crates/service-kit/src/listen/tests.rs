use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_domain::ip::TrustedIps;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_stream::StreamExt;

use super::*;
use crate::tls::{ReloadingTls, ServerTlsFiles};

/// Caps small enough to reach, deadlines long enough not to interfere.
fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        max_per_address: 8,
        ..ConnectionLimits::for_descriptors(1024)
    }
}

/// Deadlines short enough to wait for.
fn short_deadlines() -> ConnectionLimits {
    ConnectionLimits {
        first_byte_timeout: Duration::from_millis(200),
        header_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(300),
        ..limits()
    }
}

/// A listener whose accepted connections are read (and dropped on error or
/// end) by a server task; the handles of the accepted ones come back.
async fn serving(
    connections: &Connections,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Arc<registry::Conn>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = Box::pin(connections.incoming(listener));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(mut stream)) = accepted.next().await {
            let _ = tx.send(stream.conn().clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// How long until the server closes `client` (reads end or fail), at most `within`.
async fn closed_within(client: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 16];
    match tokio::time::timeout(within, client.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Some(start.elapsed()),
        Ok(Ok(_)) | Err(_) => None,
    }
}

#[tokio::test]
async fn every_plaintext_connection_is_accepted_with_tcp_nodelay() {
    let connections = Connections::new(limits(), TrustedIps::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = Box::pin(connections.incoming(listener));
    for _ in 0..3 {
        let client = TcpStream::connect(addr).await.unwrap();
        let server_side = accepted.next().await.unwrap().unwrap();
        assert!(server_side.tcp().nodelay().unwrap());
        assert_eq!(server_side.peer(), client.local_addr().unwrap());
    }
}

#[tokio::test]
async fn every_tls_connection_is_accepted_with_tcp_nodelay() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("c.pem"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = ReloadingTls::load(ServerTlsFiles {
        cert: cert_path,
        key: key_path,
        client_ca: None,
    })
    .unwrap();
    let connections = Connections::new(limits(), TrustedIps::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut accepted = tls.incoming(connections.incoming(listener));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let (client, server_side) = tokio::join!(connector.connect(name, tcp), accepted.next());
    client.unwrap();
    let server_side = server_side.unwrap().unwrap();
    assert!(server_side.get_ref().0.tcp().nodelay().unwrap());
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_first_byte_deadline() {
    let connections = Connections::new(short_deadlines(), TrustedIps::default());
    let (addr, _accepted) = serving(&connections).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut client, Duration::from_secs(3)).await;
    let closed = closed.expect("a silent connection must be closed");
    assert!(closed >= Duration::from_millis(150), "{closed:?}");
    assert!(closed < Duration::from_millis(1500), "{closed:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(connections.open(), 0);
}

#[tokio::test]
async fn a_connection_that_starts_no_request_is_closed_at_the_header_deadline() {
    let connections = Connections::new(short_deadlines(), TrustedIps::default());
    let (addr, _accepted) = serving(&connections).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"POST /api/v3/secrets/raw/X HT")
        .await
        .unwrap();
    let closed = closed_within(&mut client, Duration::from_secs(3)).await;
    let closed = closed.expect("a half-sent request must be closed");
    // Past the first-byte deadline (bytes came), at the header deadline.
    assert!(closed >= Duration::from_millis(350), "{closed:?}");
    assert!(closed < Duration::from_millis(1500), "{closed:?}");
}

#[tokio::test]
async fn a_connection_is_closed_when_idle_and_never_while_a_request_is_in_flight() {
    let connections = Connections::new(short_deadlines(), TrustedIps::default());
    let (addr, mut accepted) = serving(&connections).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let conn = accepted.recv().await.unwrap();
    let in_flight = conn.begin();
    // Well past every deadline, but busy.
    assert_eq!(
        closed_within(&mut client, Duration::from_millis(900)).await,
        None
    );
    drop(in_flight);
    let closed = closed_within(&mut client, Duration::from_secs(3)).await;
    let closed = closed.expect("an idle connection must be closed");
    assert!(closed >= Duration::from_millis(250), "{closed:?}");
    assert!(closed < Duration::from_millis(1500), "{closed:?}");
}

#[tokio::test]
async fn over_the_address_cap_the_oldest_connection_without_a_request_gives_way() {
    let connections = Connections::new(limits(), TrustedIps::default());
    let (addr, mut accepted) = serving(&connections).await;
    let mut clients = Vec::new();
    let mut busy = Vec::new();
    for i in 0..8 {
        let client = TcpStream::connect(addr).await.unwrap();
        let conn = accepted.recv().await.unwrap();
        // The first three are serving a request; the rest sent nothing.
        if i < 3 {
            busy.push(conn.begin());
        }
        clients.push(client);
    }
    assert_eq!(connections.open(), 8);
    let _newcomer = TcpStream::connect(addr).await.unwrap();
    accepted.recv().await.unwrap();
    // The oldest idle one (the fourth) is closed; the busy ones are kept.
    assert!(
        closed_within(&mut clients[3], Duration::from_secs(1))
            .await
            .is_some()
    );
    for client in &mut clients[..3] {
        assert_eq!(closed_within(client, Duration::from_millis(50)).await, None);
    }
    assert_eq!(connections.open(), 8);
}

#[tokio::test]
async fn a_new_connection_is_refused_only_when_every_connection_is_busy() {
    let connections = Connections::new(limits(), TrustedIps::default());
    let (addr, mut accepted) = serving(&connections).await;
    let mut busy = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(TcpStream::connect(addr).await.unwrap());
        busy.push(accepted.recv().await.unwrap().begin());
    }
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut refused, Duration::from_secs(1))
            .await
            .is_some()
    );
    for client in &mut clients {
        assert_eq!(closed_within(client, Duration::from_millis(20)).await, None);
    }
}

#[tokio::test]
async fn over_the_total_cap_the_address_holding_the_most_gives_way() {
    let connections = Connections::new(
        ConnectionLimits {
            max_connections: 6,
            max_per_address: 6,
            ..limits()
        },
        TrustedIps::default(),
    );
    let (addr, mut accepted) = serving(&connections).await;
    let mut hog = Vec::new();
    for _ in 0..5 {
        hog.push(connect_from("127.0.0.2", addr).await);
        accepted.recv().await.unwrap();
    }
    let mut other = connect_from("127.0.0.3", addr).await;
    accepted.recv().await.unwrap();
    let _newcomer = connect_from("127.0.0.4", addr).await;
    accepted.recv().await.unwrap();
    assert!(
        closed_within(&mut hog[0], Duration::from_secs(1))
            .await
            .is_some()
    );
    assert_eq!(
        closed_within(&mut other, Duration::from_millis(50)).await,
        None
    );
}

#[tokio::test]
async fn trusted_proxies_have_no_per_address_cap() {
    let connections = Connections::new(
        limits(),
        TrustedIps::parse(&["127.0.0.5"], "proxies").unwrap(),
    );
    let (addr, mut accepted) = serving(&connections).await;
    let mut clients = Vec::new();
    for _ in 0..12 {
        clients.push(connect_from("127.0.0.5", addr).await);
        accepted.recv().await.unwrap();
    }
    for client in &mut clients {
        assert_eq!(closed_within(client, Duration::from_millis(20)).await, None);
    }
    assert_eq!(connections.open(), 12);
}

#[test]
fn defaults_leave_descriptors_for_everything_else() {
    let limits = ConnectionLimits::for_descriptors(1024);
    assert_eq!(limits.max_connections, 896);
    assert_eq!(limits.max_per_address, 224);
    assert!(limits.header_timeout <= Duration::from_secs(10));
    assert!(ConnectionLimits::for_descriptors(100).max_connections >= 16);
}

#[test]
fn limits_are_read_from_their_variables_and_checked() {
    let vars = Vars::from_pairs([
        (var::MAX_CONNECTIONS, "100"),
        (var::MAX_CONNECTIONS_PER_ADDRESS, "10"),
        (var::HEADER_TIMEOUT_MILLIS, "2000"),
        (var::IPV6_PREFIX_BITS, "56"),
    ]);
    let limits = ConnectionLimits::from_vars(&vars).unwrap();
    assert_eq!(limits.max_connections, 100);
    assert_eq!(limits.max_per_address, 10);
    assert_eq!(limits.header_timeout, Duration::from_secs(2));
    assert_eq!(limits.ipv6_prefix, 56);
    for (name, value, says) in [
        (var::MAX_CONNECTIONS, "0", "at least 1"),
        (var::IDLE_TIMEOUT_SECONDS, "0", "greater than 0"),
        (var::IPV6_PREFIX_BITS, "129", "at most 128"),
        (var::FIRST_BYTE_TIMEOUT_MILLIS, "60000", "longer than"),
    ] {
        let err = ConnectionLimits::from_vars(&Vars::from_pairs([(name, value)])).unwrap_err();
        assert_eq!(err.variable, name);
        assert!(err.message.contains(says), "{name}: {}", err.message);
    }
}
