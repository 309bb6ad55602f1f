//! The relay: listeners, one supervisor thread per connection, and the handle that stops them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::error::LinkError;
use crate::pace::Pacer;
use crate::pipe::{read_side, write_side, Queue};
use crate::profile::LinkProfile;

/// How a relay treats connections, beyond the link profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayOptions {
    /// How long the relay keeps trying to reach a route's target for a connection it accepted
    /// (nodes of a deployment start in any order: a connection may arrive before the target
    /// listens). When it gives up, it closes the accepted connection.
    pub connect_patience: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            connect_patience: Duration::from_secs(60),
        }
    }
}

/// Counters of one route, since the relay started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteStats {
    /// Where the route listens (the bound address: a port 0 is resolved).
    pub listen: SocketAddr,
    /// Where it forwards to.
    pub target: SocketAddr,
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed because the target could not be reached within the patience.
    pub unreachable: u64,
    /// Bytes delivered to the target.
    pub bytes_to_target: u64,
    /// Bytes delivered back to the connecting side.
    pub bytes_from_target: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    unreachable: AtomicU64,
    to_target: AtomicU64,
    from_target: AtomicU64,
}

struct Route {
    listen: SocketAddr,
    target: SocketAddr,
    counters: Counters,
}

/// What the relay's threads share.
struct Shared {
    profile: LinkProfile,
    options: RelayOptions,
    stop: AtomicBool,
    /// Live connections, so that stopping can close them.
    live: Mutex<HashMap<u64, Live>>,
    next_id: AtomicU64,
    /// Supervisor threads of connections, joined when the relay stops.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// The sockets and queues of one connection (clones, to shut down from outside).
struct Live {
    sockets: Vec<TcpStream>,
    queues: Vec<Arc<Queue>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A user-space link emulator: listens on addresses and forwards every accepted connection to
/// its route's target, shaping each direction to a [`LinkProfile`] (see the [crate docs](crate)).
#[derive(Clone, Copy, Debug)]
pub struct Relay;

impl Relay {
    /// Starts relaying with default options: for each `(listen, target)` route, binds `listen`
    /// (port 0 picks a free port; see [`RelayHandle::listen_addrs`]) and forwards to `target`.
    /// The relay runs on its own threads until the handle is dropped.
    pub fn start(
        profile: LinkProfile,
        routes: &[(SocketAddr, SocketAddr)],
    ) -> Result<RelayHandle, LinkError> {
        Self::start_with(profile, routes, RelayOptions::default())
    }

    /// [`Relay::start`] with explicit options.
    pub fn start_with(
        profile: LinkProfile,
        routes: &[(SocketAddr, SocketAddr)],
        options: RelayOptions,
    ) -> Result<RelayHandle, LinkError> {
        if routes.is_empty() {
            return Err(LinkError::NoRoutes);
        }
        let mut bound = Vec::with_capacity(routes.len());
        for &(addr, target) in routes {
            let listener =
                TcpListener::bind(addr).map_err(|source| LinkError::Bind { addr, source })?;
            let listen = listener
                .local_addr()
                .map_err(|source| LinkError::Bind { addr, source })?;
            bound.push((
                listener,
                Arc::new(Route {
                    listen,
                    target,
                    counters: Counters::default(),
                }),
            ));
        }
        let shared = Arc::new(Shared {
            profile,
            options,
            stop: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            workers: Mutex::new(Vec::new()),
        });
        let mut handle = RelayHandle {
            shared: Arc::clone(&shared),
            routes: bound.iter().map(|(_, r)| Arc::clone(r)).collect(),
            listeners: Vec::new(),
        };
        for (listener, route) in bound {
            let shared = Arc::clone(&shared);
            let t = std::thread::Builder::new()
                .name(format!("relay {}", route.listen))
                .spawn(move || accept_loop(&listener, &route, &shared))
                .map_err(|source| LinkError::Thread { source })?;
            // On an error above, dropping `handle` stops the listeners started so far.
            handle.listeners.push(t);
        }
        Ok(handle)
    }
}

fn accept_loop(listener: &TcpListener, route: &Arc<Route>, shared: &Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((sock, _)) = accepted else {
            // A transient failure (a connection reset before accept, out of descriptors):
            // back off briefly rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        route.counters.connections.fetch_add(1, Ordering::Relaxed);
        let (route, s) = (Arc::clone(route), Arc::clone(shared));
        let spawned = std::thread::Builder::new()
            .name(format!("relay conn {}", route.listen))
            .spawn(move || serve(sock, &route, &s));
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        // A connection whose thread cannot start is dropped (closed) by the failed spawn.
        if let Ok(w) = spawned {
            workers.push(w);
        }
    }
}

/// Connects to `target`, retrying until `patience` runs out or the relay stops.
fn connect_upstream(target: SocketAddr, shared: &Shared) -> Option<TcpStream> {
    let deadline = Instant::now() + shared.options.connect_patience;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match TcpStream::connect_timeout(
            &target,
            left.clamp(Duration::from_millis(1), Duration::from_secs(1)),
        ) {
            Ok(s) => return Some(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// Forwards one accepted connection until both directions have ended.
fn serve(client: TcpStream, route: &Route, shared: &Shared) {
    let Some(upstream) = connect_upstream(route.target, shared) else {
        route.counters.unreachable.fetch_add(1, Ordering::Relaxed);
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    // Small writes go out at once (the relay adds the delay, not Nagle's algorithm).
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let pacer = Pacer::new(shared.profile.clone());
    let (chunk, limit) = (pacer.chunk_limit(), pacer.queue_limit());
    let up = Arc::new(Queue::new(limit));
    let down = Arc::new(Queue::new(limit));
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut live = lock(&shared.live);
        let sockets = [client.try_clone(), upstream.try_clone()]
            .into_iter()
            .flatten()
            .collect();
        live.insert(
            id,
            Live {
                sockets,
                queues: vec![Arc::clone(&up), Arc::clone(&down)],
            },
        );
    }
    // The relay may have stopped before the connection was registered.
    if shared.stop.load(Ordering::SeqCst) {
        close(&[&up, &down], &[&client, &upstream]);
    }
    let c = &route.counters;
    std::thread::scope(|scope| {
        let name = |half: &str| format!("relay {half} {}", route.listen);
        let started = [
            spawn_in(scope, name("up-read"), || read_side(&client, &up, chunk)),
            spawn_in(scope, name("up-write"), || {
                write_side(&client, &upstream, &up, pacer.clone(), &c.to_target)
            }),
            spawn_in(scope, name("down-read"), || {
                read_side(&upstream, &down, chunk)
            }),
        ];
        if started.iter().any(Result::is_err) {
            // Without all four halves the connection cannot work: close it.
            close(&[&up, &down], &[&client, &upstream]);
            return;
        }
        write_side(&upstream, &client, &down, pacer.clone(), &c.from_target);
    });
    lock(&shared.live).remove(&id);
}

/// Starts a named thread in `scope`.
fn spawn_in<'scope, F>(
    scope: &'scope Scope<'scope, '_>,
    name: String,
    f: F,
) -> std::io::Result<ScopedJoinHandle<'scope, ()>>
where
    F: FnOnce() + Send + 'scope,
{
    std::thread::Builder::new()
        .name(name)
        .spawn_scoped(scope, f)
}

/// Aborts a connection's queues and shuts its sockets down (which ends blocked reads).
fn close(queues: &[&Queue], sockets: &[&TcpStream]) {
    for q in queues {
        q.abort();
    }
    for s in sockets {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// A running relay; dropping it (or [`RelayHandle::stop`]) stops listening, closes every
/// connection and joins the relay's threads.
pub struct RelayHandle {
    shared: Arc<Shared>,
    routes: Vec<Arc<Route>>,
    listeners: Vec<JoinHandle<()>>,
}

impl RelayHandle {
    /// The bound listening address of each route, in the order given.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.routes.iter().map(|r| r.listen).collect()
    }

    /// The profile applied.
    pub fn profile(&self) -> &LinkProfile {
        &self.shared.profile
    }

    /// Each route's counters, in the order given.
    pub fn stats(&self) -> Vec<RouteStats> {
        self.routes
            .iter()
            .map(|r| RouteStats {
                listen: r.listen,
                target: r.target,
                connections: r.counters.connections.load(Ordering::Relaxed),
                unreachable: r.counters.unreachable.load(Ordering::Relaxed),
                bytes_to_target: r.counters.to_target.load(Ordering::Relaxed),
                bytes_from_target: r.counters.from_target.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Stops the relay (the same as dropping the handle).
    pub fn stop(self) {}
}

/// An address that reaches a listener bound to `addr` (an unspecified IP becomes loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake each blocked `accept`; a listener that cannot be woken is left detached.
        let listeners = std::mem::take(&mut self.listeners);
        for (t, r) in listeners.into_iter().zip(&self.routes) {
            if TcpStream::connect_timeout(&reachable(r.listen), Duration::from_secs(1)).is_ok() {
                let _ = t.join();
            }
        }
        for live in lock(&self.shared.live).values() {
            let queues: Vec<&Queue> = live.queues.iter().map(|q| &**q).collect();
            let sockets: Vec<&TcpStream> = live.sockets.iter().collect();
            close(&queues, &sockets);
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in workers {
            let _ = w.join();
        }
    }
}
