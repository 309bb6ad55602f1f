//! Deployment: parties as long-running processes over TLS, serving many clients.
//!
//! # Roles and what each process sees
//! - `party-0`, `party-1`, `party-2`: the computing nodes, each started with [`run_party`]
//!   (`ppml party --id I --config parties.toml`). Under `mpc2`, `party-2` is the dealer.
//!   **Party 0 is also the model owner**: it secret-shares the weights to the others once, at
//!   start-up (it knows the weights, which are its own; the others learn only shares and the
//!   public architecture).
//! - clients: any process with a certificate of the deployment's CA (`ppml mpc-certs` issues
//!   them; [`crate::add_client`] adds one later without touching the parties). A client
//!   ([`crate::MpcBackend::remote`]) secret-shares each batch to the parties and alone adds up the
//!   output shares: no party sees an image or a logit. It learns the logits, the architecture
//!   and nothing else about the weights.
//!
//! # Life of a party
//! The parties form their mesh (one TLS connection per ordered pair) and share the weights
//! once, then serve client sessions until stopped, each session on its own thread with its own
//! fresh PRG keys, multiplexed over the mesh ([`crate::mesh`]): persistent connections, because
//! forming a TLS mesh costs several round trips that a session should not pay. At most
//! `max_sessions` sessions run at once; further clients are told the parties are busy. A
//! client that disconnects, stalls or sends garbage loses its own session only. A party that
//! dies breaks the mesh: the other parties end every session with an error to its client
//! (no partial result) and exit with an error, so that the operator (or a supervisor such as
//! systemd with `Restart=on-failure`) restarts all three; they form the mesh and share the
//! weights again. A stop request ([`PartyOptions::stop`], SIGTERM in `ppml party`) stops
//! accepting clients, lets the sessions in flight finish (for up to `timeout`) and returns.
//!
//! # Network threat model
//! TLS 1.3 with mutual authentication against the deployment's CA, parties pinned to the
//! certificates listed in `parties.toml`: a network attacker can neither read nor alter nor
//! impersonate a node; it can delay or cut connections, which the nodes turn into
//! [`MpcError::Timeout`] or [`MpcError::Disconnected`] within `timeout` (no partial result).
//! Traffic sizes and timing are visible (they depend only on public shapes). Denial of service
//! is out of scope (anyone who can reach a party's port can occupy a handshake; any party can
//! stall or abort the computation). Keep `ca.key` offline: whoever holds it can add clients.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppml_nn::Model;

use crate::client::{Client, Opened};
use crate::config::{deploy_err, PartiesConfig};
use crate::error::{MpcError, Result};
use crate::link::Duplex;
use crate::material::PoolRequest;
use crate::mesh::{Closer, LinkReader, LinkWriter, Mesh};
use crate::messages::ToClient;
use crate::net::{Accepted, TlsNode, TlsStream};
use crate::plan::plan;
use crate::ring::FixedPoint;
use crate::service::{PartyState, SessionLimits, Setting};
use crate::topology::CLIENT_ID;

/// How a party process runs.
#[derive(Clone, Debug)]
pub struct PartyOptions {
    /// Sessions served at once (default 16); a client beyond it gets a "busy" error.
    pub max_sessions: usize,
    /// Return after this many client sessions have ended (`None`: serve until stopped).
    pub sessions: Option<usize>,
    /// How long a session may wait for its client's next query (default 300 s).
    pub idle_timeout: Duration,
    /// Set to stop: no new clients, sessions in flight finish (for up to the timeout).
    pub stop: Arc<AtomicBool>,
    /// Written (`ready`) once the mesh is formed and the weights are shared, removed on exit: a
    /// readiness signal for an orchestrator.
    pub ready_file: Option<PathBuf>,
}

impl Default for PartyOptions {
    fn default() -> Self {
        Self {
            max_sessions: 16,
            sessions: None,
            idle_timeout: Duration::from_secs(300),
            stop: Arc::new(AtomicBool::new(false)),
            ready_file: None,
        }
    }
}

/// What a party did before it stopped cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PartyReport {
    /// Client sessions that ended cleanly (the client said goodbye).
    pub sessions: usize,
    /// Client sessions that ended with an error (only those sessions were lost).
    pub failed_sessions: usize,
    /// Queries answered.
    pub queries: usize,
    /// Bytes this party sent the others at start-up.
    pub startup_bytes: u64,
}

fn setting(config: &PartiesConfig) -> Result<Setting> {
    Ok(Setting {
        protocol: config.protocol,
        fp: FixedPoint::new(config.frac_bits)?,
        comparison: config.comparison,
    })
}

/// Accepts connections on `listener` until `stop`: each is authenticated on its own thread and
/// handed over as a party link or a client.
fn accept_loop(
    node: Arc<TlsNode>,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    parties: Sender<(usize, TlsStream<rustls::ServerConnection>)>,
    clients: Sender<TlsStream<rustls::ServerConnection>>,
) {
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                let (node, parties, clients) = (node.clone(), parties.clone(), clients.clone());
                std::thread::spawn(move || match node.accept(sock) {
                    Ok(Accepted::Party(j, s)) => {
                        let _ = parties.send((j, s));
                    }
                    Ok(Accepted::Client(s)) => {
                        let _ = clients.send(s);
                    }
                    // A failed handshake costs only that connection.
                    Err(_) => {}
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Forms party `id`'s mesh: connects to every other party and takes one accepted link from each.
fn form_mesh(
    id: usize,
    node: &TlsNode,
    incoming: &std::sync::mpsc::Receiver<(usize, TlsStream<rustls::ServerConnection>)>,
    config: &PartiesConfig,
) -> Result<Arc<Mesh>> {
    let mut writers: Vec<Option<LinkWriter>> = (0..3).map(|_| None).collect();
    let mut readers: Vec<Option<LinkReader>> = (0..3).map(|_| None).collect();
    let mut closers: Vec<Closer> = Vec::new();
    for j in (0..3).filter(|&j| j != id) {
        let w = node.connect(j)?;
        let sock = w
            .sock
            .try_clone()
            .map_err(|_| MpcError::Disconnected { party: id, peer: j })?;
        closers.push(Box::new(move || {
            let _ = sock.shutdown(std::net::Shutdown::Both);
        }));
        writers[j] = Some(Box::new(w));
    }
    let deadline = Instant::now() + config.connect_timeout;
    while let Some(missing) = (0..3).find(|&j| j != id && readers[j].is_none()) {
        let left = deadline.saturating_duration_since(Instant::now());
        match incoming.recv_timeout(left) {
            Ok((j, s)) => {
                let sock = s
                    .sock
                    .try_clone()
                    .map_err(|_| MpcError::Disconnected { party: id, peer: j })?;
                closers.push(Box::new(move || {
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                }));
                readers[j] = Some(Box::new(s));
            }
            Err(_) => {
                return Err(MpcError::Timeout {
                    party: id,
                    peer: missing,
                    timeout: config.connect_timeout,
                })
            }
        }
    }
    Mesh::from_links(
        id,
        writers,
        readers,
        (config.timeout, config.max_frame_words),
        closers,
    )
}

/// Runs party `id` (0, 1 or 2) of the deployment `config` in this process (see the
/// [module docs](self)): forms the mesh, takes part in start-up (party 0 shares `model`'s
/// weights; the others use only its architecture), then serves client sessions until
/// `options.stop` is set or `options.sessions` sessions have ended. Returns an error if the
/// mesh breaks (a party died).
pub fn run_party(
    id: usize,
    config: &PartiesConfig,
    model: &Model,
    options: &PartyOptions,
) -> Result<PartyReport> {
    if id >= 3 {
        return Err(MpcError::Config {
            field: "id",
            value: id.to_string(),
            reason: "parties are 0, 1 and 2",
        });
    }
    plan(model)?;
    let setting = setting(config)?;
    let (node, _) = config.tls(id)?;
    let node = Arc::new(node);
    let me = &config.parties[id];
    let bind = me.listen.unwrap_or(me.address);
    let listener = TcpListener::bind(bind).map_err(|e| deploy_err(bind.to_string(), e))?;
    let stop_accepting = Arc::new(AtomicBool::new(false));
    let (party_tx, party_rx) = channel();
    let (client_tx, client_rx) = channel();
    let acceptor = {
        let (node, stop) = (node.clone(), stop_accepting.clone());
        std::thread::spawn(move || accept_loop(node, listener, stop, party_tx, client_tx))
    };
    let result = serve(
        id,
        config,
        model,
        options,
        setting,
        (&node, &party_rx, &client_rx),
    );
    stop_accepting.store(true, Ordering::Relaxed);
    let _ = acceptor.join();
    if let Some(f) = &options.ready_file {
        let _ = std::fs::remove_file(f);
    }
    result
}

type Links<'a> = (
    &'a Arc<TlsNode>,
    &'a std::sync::mpsc::Receiver<(usize, TlsStream<rustls::ServerConnection>)>,
    &'a std::sync::mpsc::Receiver<TlsStream<rustls::ServerConnection>>,
);

fn serve(
    id: usize,
    config: &PartiesConfig,
    model: &Model,
    options: &PartyOptions,
    setting: Setting,
    (node, party_rx, client_rx): Links<'_>,
) -> Result<PartyReport> {
    let mesh = form_mesh(id, node, party_rx, config)?;
    let state = Arc::new(PartyState::start(&mesh, model, setting)?);
    tracing::info!(
        party = id,
        startup_bytes = state.startup_stats().bytes_sent,
        "mesh formed and weights shared: ready"
    );
    if let Some(f) = &options.ready_file {
        std::fs::write(f, "ready\n").map_err(|e| deploy_err(f, e))?;
    }
    let limits = SessionLimits {
        timeout: config.timeout,
        idle: options.idle_timeout,
        max_frame_words: config.max_frame_words,
        pool_depth: config.pool_depth,
    };
    let active = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = channel::<Result<usize>>();
    let mut report = PartyReport {
        startup_bytes: state.startup_stats().bytes_sent,
        ..PartyReport::default()
    };
    let mut started = 0usize;
    let quota_reached = |r: &PartyReport| {
        options
            .sessions
            .is_some_and(|n| r.sessions + r.failed_sessions >= n)
    };
    let mut broken = None;
    while !options.stop.load(Ordering::Relaxed) && !quota_reached(&report) {
        while let Ok(r) = done_rx.try_recv() {
            tally(&mut report, r);
        }
        // A session that failed because a party is gone: the deployment is over.
        if mesh.is_broken() && (report.failed_sessions > 0 || !quota_reached(&report)) {
            tracing::error!(party = id, "the link to another party broke");
            broken = Some(MpcError::MeshBroken { party: id });
            break;
        }
        if quota_reached(&report) {
            break;
        }
        let may_start = options.sessions.is_none_or(|n| started < n);
        let mut conn = match client_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(c) if may_start => c,
            Ok(mut c) => {
                let _ = ToClient::Error("this party serves no more sessions".into()).write(&mut c);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if active.load(Ordering::SeqCst) >= options.max_sessions {
            tracing::warn!(
                party = id,
                max = options.max_sessions,
                "busy: a client was refused"
            );
            let _ = ToClient::Error("the parties are busy: too many sessions; try again".into())
                .write(&mut conn);
            continue;
        }
        started += 1;
        active.fetch_add(1, Ordering::SeqCst);
        let (state, mesh, active, done) =
            (state.clone(), mesh.clone(), active.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let r = state
                .serve_client(&mesh, &mut conn, &limits)
                .map(|s| s.queries);
            conn.shutdown();
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(r);
        });
    }
    // Let the sessions in flight finish (a broken mesh ends them quickly).
    let deadline = Instant::now() + config.timeout;
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        if let Ok(r) = done_rx.recv_timeout(Duration::from_millis(20)) {
            tally(&mut report, r);
        }
    }
    match broken {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn tally(report: &mut PartyReport, session: Result<usize>) {
    match session {
        Ok(q) => {
            report.sessions += 1;
            report.queries += q;
        }
        Err(_) => report.failed_sessions += 1,
    }
}

/// Opens a client session with the parties of `config` over TLS (as node `client`, with the
/// `[client]` identity), for a model of `in_len` inputs and `classes` outputs, asking for
/// material made ahead as `pool` says. Returns the client and what opening cost.
pub(crate) fn connect_client(
    config: &PartiesConfig,
    setting: Setting,
    (in_len, classes, pool): (usize, usize, PoolRequest),
) -> Result<(Client, Opened)> {
    let (node, _) = config.tls(CLIENT_ID)?;
    let mut links: Vec<Box<dyn Duplex>> = Vec::with_capacity(3);
    for j in 0..3 {
        links.push(Box::new(node.connect(j)?));
    }
    let (client, opened) = Client::open(
        links,
        setting,
        (in_len, classes, pool),
        (4 * config.timeout, config.max_frame_words),
    )?;
    Ok((client, opened))
}
