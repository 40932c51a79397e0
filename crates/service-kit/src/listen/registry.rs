//! Which connections are open, by client address, and which one gives way
//! when a cap is reached.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use latchkey_domain::ip::{TrustedIps, client_key};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::ConnectionLimits;
use super::guarded::Guarded;

/// One open connection, shared by its stream and the registry.
#[derive(Debug)]
pub(crate) struct Conn {
    id: u64,
    key: IpAddr,
    /// Local and remote address: how a request finds its connection.
    pub(crate) sockets: (SocketAddr, SocketAddr),
    pub(crate) accepted: Instant,
    started: AtomicBool,
    in_flight: AtomicUsize,
    /// When the last request ended, in milliseconds after `accepted`.
    last_active_ms: AtomicU64,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Conn {
    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    pub(crate) fn last_active(&self) -> Instant {
        self.accepted
            + std::time::Duration::from_millis(self.last_active_ms.load(Ordering::Acquire))
    }

    /// A request began on this connection; it ends when the guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.started.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Remembers who to wake when the connection must look at its deadline again.
    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = lock(&self.waker);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.wake();
    }

    /// Evictable: no request yet (oldest first), or none in flight.
    fn idle_since(&self) -> Option<(bool, Instant)> {
        if self.evicted() || self.in_flight() > 0 {
            return None;
        }
        Some((self.started(), self.last_active()))
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        let ms = u64::try_from(conn.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        conn.last_active_ms.store(ms, Ordering::Release);
        if conn.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Its idle deadline starts now.
            conn.wake();
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_key: HashMap<IpAddr, Vec<Arc<Conn>>>,
}

/// The process-wide registry.
#[derive(Debug)]
pub(crate) struct Registry {
    limits: ConnectionLimits,
    exempt: TrustedIps,
    next_id: AtomicU64,
    open: Mutex<Open>,
    by_socket: Mutex<HashMap<(SocketAddr, SocketAddr), Arc<Conn>>>,
    refused: AtomicU64,
    evicted: AtomicU64,
}

impl Registry {
    pub(crate) fn new(limits: ConnectionLimits, exempt: TrustedIps) -> Self {
        Self {
            limits,
            exempt,
            next_id: AtomicU64::new(0),
            open: Mutex::new(Open::default()),
            by_socket: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    pub(crate) fn open(&self) -> usize {
        lock(&self.open).total
    }

    /// Takes `stream` in, closing another connection if a cap requires it,
    /// or refuses it (dropped, so closed) when every candidate is busy.
    pub(crate) fn admit(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<Guarded<TcpStream>> {
        let local = stream.local_addr().ok()?;
        let key = client_key(peer.ip(), self.limits.ipv6_prefix);
        let capped = self.exempt.is_empty() || !self.exempt.allows(peer.ip());
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            key,
            sockets: (local, peer),
            accepted: Instant::now(),
            started: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        {
            let mut open = lock(&self.open);
            let address_full =
                capped && open.by_key.get(&key).map_or(0, Vec::len) >= self.limits.max_per_address;
            let victim_key = if address_full {
                Some(key)
            } else if open.total >= self.limits.max_connections {
                busiest_with_idle(&open)
            } else {
                None
            };
            if address_full || open.total >= self.limits.max_connections {
                let victim =
                    victim_key.and_then(|k| open.by_key.get(&k).and_then(|c| oldest_idle(c)));
                let Some(victim) = victim else {
                    drop(open);
                    self.refuse(peer, address_full);
                    return None;
                };
                remove_from(&mut open, &victim);
                victim.evict();
                self.evicted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = %victim.sockets.1, "connection closed to admit a new one");
            }
            open.total += 1;
            open.by_key.entry(key).or_default().push(conn.clone());
        }
        lock(&self.by_socket).insert(conn.sockets, conn.clone());
        Some(Guarded::new(stream, conn, self.clone()))
    }

    /// The connection a request arrived on.
    pub(crate) fn find(&self, local: SocketAddr, remote: SocketAddr) -> Option<Arc<Conn>> {
        lock(&self.by_socket).get(&(local, remote)).cloned()
    }

    /// Forgets a closed connection (idempotent: an evicted one left `open` already).
    pub(crate) fn remove(&self, conn: &Arc<Conn>) {
        remove_from(&mut lock(&self.open), conn);
        let mut by_socket = lock(&self.by_socket);
        if by_socket
            .get(&conn.sockets)
            .is_some_and(|c| c.id == conn.id)
        {
            by_socket.remove(&conn.sockets);
        }
    }

    fn refuse(&self, peer: SocketAddr, address_full: bool) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed);
        // One line per thousand refusals: a flood must not flood the logs.
        if refused.is_multiple_of(1000) {
            tracing::warn!(
                peer = %peer,
                refused = refused + 1,
                cap = if address_full { "per address" } else { "in all" },
                "connection refused: every open connection is busy"
            );
        }
    }
}

fn remove_from(open: &mut Open, conn: &Arc<Conn>) {
    if let Some(conns) = open.by_key.get_mut(&conn.key) {
        if let Some(i) = conns.iter().position(|c| c.id == conn.id) {
            conns.remove(i);
            open.total -= 1;
        }
        if conns.is_empty() {
            open.by_key.remove(&conn.key);
        }
    }
}

/// The connection to close for a new one: the oldest that has not started
/// a request, else the one idle the longest; none when all are busy.
fn oldest_idle(conns: &[Arc<Conn>]) -> Option<Arc<Conn>> {
    conns
        .iter()
        .filter_map(|c| c.idle_since().map(|(started, since)| (started, since, c)))
        .min_by_key(|(started, since, _)| (*started, *since))
        .map(|(_, _, c)| c.clone())
}

/// The address holding the most connections among those with one to close.
fn busiest_with_idle(open: &Open) -> Option<IpAddr> {
    open.by_key
        .iter()
        .filter(|(_, conns)| conns.iter().any(|c| c.idle_since().is_some()))
        .max_by_key(|(_, conns)| conns.len())
        .map(|(key, _)| *key)
}

/// The registry's locks guard plain maps and counters that no panic can
/// leave half-changed, so a poisoned lock is still sound to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
