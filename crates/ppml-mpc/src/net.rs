//! The TCP transport: a full mesh of mutually authenticated TLS 1.3 connections (rustls with the
//! `ring` provider).
//!
//! Every ordered pair of nodes `(i, j)` has its own connection, opened by `i` (TLS client) to
//! `j`'s listening address (TLS server) and used only for messages from `i` to `j`. Each incoming
//! connection is drained by a reader thread into a channel, so `send` never waits for the peer's
//! application code (an exchange of large messages cannot deadlock) and `recv` waits on the
//! channel with the configured timeout.
//!
//! Authentication: every node has a certificate signed by the deployment's CA (see
//! [`crate::deploy::generate_certs`]) whose subject alternative name is its node name
//! (`party-0`, `party-1`, `party-2`, `client`). A connecting node checks the server's chain and
//! name; an accepting node checks the client's chain and then pins the end-entity certificate to
//! one of the configured nodes' certificates, which identifies the peer. Unknown or wrong
//! certificates fail the handshake with [`MpcError::Tls`].
//!
//! Frames: an 8-byte little-endian word count, then the words (little-endian). A count above the
//! configured bound is [`MpcError::FrameTooLarge`]; a connection that ends inside a frame is
//! [`MpcError::Disconnected`]; bytes that are not valid TLS records are [`MpcError::Tls`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::error::{MpcError, Result};
use crate::transport::{Transport, TransportStats};

/// Default bound on one frame: 2^26 words (512 MiB).
pub const DEFAULT_MAX_FRAME_WORDS: u64 = 1 << 26;

/// One node of the mesh as every other node sees it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The node's name, also the DNS name in its certificate (`party-0`, ..., `client`).
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its certificate (DER), pinned by the others.
    pub cert: CertificateDer<'static>,
}

/// Everything a node needs to join the mesh.
#[derive(Debug)]
pub struct TlsSettings {
    /// The CA certificate(s) trusted for the other nodes' chains.
    pub ca: Vec<CertificateDer<'static>>,
    /// This node's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// This node's private key.
    pub key: PrivateKeyDer<'static>,
    /// Timeout for `recv`, socket writes and each handshake.
    pub timeout: Duration,
    /// How long to keep trying to reach peers that are not up yet (and to wait for theirs).
    pub connect_timeout: Duration,
    /// Largest accepted frame, in words.
    pub max_frame_words: u64,
}

type Incoming = Receiver<Result<Vec<u64>>>;

/// A node's endpoint of the TLS mesh. Node ids are indices into the peer list given to
/// [`TcpTransport::connect`].
pub struct TcpTransport {
    id: usize,
    names: Vec<String>,
    writers: Vec<Option<rustls::StreamOwned<ClientConnection, TcpStream>>>,
    readers: Vec<Option<Incoming>>,
    sockets: Vec<TcpStream>,
    timeout: Duration,
    stats: TransportStats,
    sent_since_recv: bool,
}

fn tls_err(party: usize, peer: &str, e: impl std::fmt::Display) -> MpcError {
    MpcError::Tls {
        party,
        peer: peer.to_string(),
        reason: e.to_string(),
    }
}

fn io_err(party: usize, peer: usize, name: &str, e: &std::io::Error) -> MpcError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => MpcError::Timeout {
            party,
            peer,
            timeout: Duration::ZERO,
        },
        ErrorKind::InvalidData => tls_err(party, name, e),
        _ => MpcError::Disconnected { party, peer },
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn configs(id: usize, s: &TlsSettings) -> Result<(Arc<ClientConfig>, Arc<ServerConfig>)> {
    let me = "this node";
    let mut roots = RootCertStore::empty();
    for c in &s.ca {
        roots.add(c.clone()).map_err(|e| tls_err(id, me, e))?;
    }
    let roots = Arc::new(roots);
    let client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(id, me, e))?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(s.chain.clone(), s.key.clone_key())
        .map_err(|e| tls_err(id, me, e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| tls_err(id, me, e))?;
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(id, me, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(s.chain.clone(), s.key.clone_key())
        .map_err(|e| tls_err(id, me, e))?;
    // The server side of a connection never writes after the handshake: no session tickets.
    server.send_tls13_tickets = 0;
    Ok((Arc::new(client), Arc::new(server)))
}

/// Drives a handshake to completion on a blocking socket (with its timeouts set).
macro_rules! handshake {
    ($conn:expr, $sock:expr, $deadline:expr) => {{
        let mut r: std::io::Result<()> = Ok(());
        while $conn.is_handshaking() {
            if Instant::now() > $deadline {
                r = Err(ErrorKind::TimedOut.into());
                break;
            }
            if let Err(e) = $conn.complete_io($sock) {
                r = Err(e);
                break;
            }
        }
        while r.is_ok() && $conn.wants_write() {
            if let Err(e) = $conn.write_tls($sock) {
                r = Err(e);
            }
        }
        r
    }};
}

/// Reads one frame (a little-endian word count, then the words) of at most `max_words` words;
/// `Ok(None)` on a clean end of stream between frames. Public for the fuzz targets.
pub fn read_frame(r: &mut impl Read, max_words: u64) -> std::io::Result<Option<Vec<u64>>> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let words = u64::from_le_bytes(head);
    if words > max_words {
        return Err(std::io::Error::new(
            ErrorKind::FileTooLarge,
            format!("{words}"),
        ));
    }
    let len = usize::try_from(words).map_err(|_| std::io::Error::from(ErrorKind::FileTooLarge))?;
    // Grow the buffer as bytes arrive: an announced size alone allocates at most 1 MiB.
    let total = 8 * len;
    let mut bytes = Vec::new();
    while bytes.len() < total {
        let start = bytes.len();
        bytes.resize(start + (total - start).min(1 << 20), 0);
        r.read_exact(&mut bytes[start..])?;
    }
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect(),
    ))
}

fn write_frame(w: &mut impl Write, msg: &[u64]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 * msg.len() + 8);
    bytes.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    for v in msg {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    w.write_all(&bytes)?;
    w.flush()
}

impl TcpTransport {
    /// Joins the mesh as node `id` of `peers`: listens on `listener` (bound to
    /// `peers[id].address`, or to where a relay or proxy at that address forwards), connects to
    /// every other node (retrying until `connect_timeout` while a peer is not up yet), accepts
    /// one connection from each, and authenticates every connection. Fails with a typed error,
    /// never hangs beyond the connect timeout plus one handshake timeout.
    pub fn connect(
        id: usize,
        peers: &[Peer],
        listener: TcpListener,
        settings: &TlsSettings,
    ) -> Result<Self> {
        let n = peers.len();
        if id >= n {
            return Err(MpcError::Config {
                field: "id",
                value: id.to_string(),
                reason: "not a node of the mesh",
            });
        }
        let (client_cfg, server_cfg) = configs(id, settings)?;
        let deadline = Instant::now() + settings.connect_timeout;
        listener
            .set_nonblocking(true)
            .map_err(|e| tls_err(id, "listener", e))?;
        // Connections made so far live in `mesh`, whose `Drop` shuts them down on failure.
        let mut mesh = Self {
            id,
            names: peers.iter().map(|p| p.name.clone()).collect(),
            writers: (0..n).map(|_| None).collect(),
            readers: (0..n).map(|_| None).collect(),
            sockets: Vec::new(),
            timeout: settings.timeout,
            stats: TransportStats::default(),
            sent_since_recv: false,
        };
        // Accept on a thread of its own while connecting out, so that nodes starting in any
        // order meet and no two handshakes wait for each other.
        let abort = AtomicBool::new(false);
        let ((accepted, acc_err), (connected, conn_err)) = std::thread::scope(|scope| {
            let acceptor = scope.spawn(|| {
                let mut got: Vec<(usize, Incoming, TcpStream)> = Vec::new();
                while got.len() + 1 < n {
                    if abort.load(Ordering::Relaxed) {
                        return (got, Some(MpcError::PartyFailed { party: id }));
                    }
                    match listener.accept() {
                        Ok((sock, _)) => match accept_one(id, peers, sock, &server_cfg, settings) {
                            Ok(g) => got.push(g),
                            Err(e) => {
                                abort.store(true, Ordering::Relaxed);
                                return (got, Some(e));
                            }
                        },
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            if Instant::now() > deadline {
                                let missing = (0..n)
                                    .find(|&j| j != id && !got.iter().any(|g| g.0 == j))
                                    .unwrap_or(id);
                                let e = MpcError::Timeout {
                                    party: id,
                                    peer: missing,
                                    timeout: settings.connect_timeout,
                                };
                                return (got, Some(e));
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => return (got, Some(tls_err(id, "listener", e))),
                    }
                }
                (got, None)
            });
            let mut out = Vec::new();
            let mut pending: Vec<usize> = (0..n).filter(|&j| j != id).collect();
            let err = loop {
                let Some(&j) = pending.first() else {
                    break None;
                };
                if abort.load(Ordering::Relaxed) {
                    break Some(MpcError::PartyFailed { party: id });
                }
                match TcpStream::connect_timeout(&peers[j].address, settings.timeout) {
                    Ok(sock) => match connect_one(id, j, peers, sock, &client_cfg, settings) {
                        Ok(w) => {
                            out.push((j, w));
                            pending.remove(0);
                        }
                        Err(e) => break Some(e),
                    },
                    Err(_) if Instant::now() <= deadline => {
                        pending.rotate_left(1);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => {
                        break Some(MpcError::Timeout {
                            party: id,
                            peer: j,
                            timeout: settings.connect_timeout,
                        })
                    }
                }
            };
            if err.is_some() {
                abort.store(true, Ordering::Relaxed);
            }
            let accepted = acceptor
                .join()
                .unwrap_or((Vec::new(), Some(MpcError::PartyFailed { party: id })));
            (accepted, (out, err))
        });
        for (j, (w, s)) in connected {
            mesh.writers[j] = Some(w);
            mesh.sockets.push(s);
        }
        let mut twice = None;
        for (from, rx, s) in accepted {
            mesh.sockets.push(s);
            if mesh.readers[from].is_some() {
                twice = Some(tls_err(id, &peers[from].name, "connected twice"));
            }
            mesh.readers[from] = Some(rx);
        }
        // Report the root cause: the side that failed first (the other one was aborted).
        match (conn_err, acc_err.or(twice)) {
            (None, None) => Ok(mesh),
            (Some(MpcError::PartyFailed { .. }), Some(e)) | (Some(e), _) | (None, Some(e)) => {
                Err(e)
            }
        }
    }

    /// The number of nodes in the mesh.
    pub fn nodes(&self) -> usize {
        self.names.len()
    }
}

fn connect_one(
    id: usize,
    j: usize,
    peers: &[Peer],
    mut sock: TcpStream,
    cfg: &Arc<ClientConfig>,
    s: &TlsSettings,
) -> Result<(rustls::StreamOwned<ClientConnection, TcpStream>, TcpStream)> {
    let name = &peers[j].name;
    let err = |e: std::io::Error| io_err(id, j, name, &e);
    sock.set_nodelay(true).map_err(err)?;
    sock.set_read_timeout(Some(s.timeout)).map_err(err)?;
    sock.set_write_timeout(Some(s.timeout)).map_err(err)?;
    let server = ServerName::try_from(name.clone()).map_err(|e| tls_err(id, name, e))?;
    let mut conn = ClientConnection::new(cfg.clone(), server).map_err(|e| tls_err(id, name, e))?;
    handshake!(conn, &mut sock, Instant::now() + s.timeout).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => MpcError::Timeout {
            party: id,
            peer: j,
            timeout: s.timeout,
        },
        _ => tls_err(id, name, e),
    })?;
    // The accepting side checks our certificate only after its handshake completes; a rejection
    // then arrives as an alert on the first read or write, which the reader of the peer reports.
    if conn.peer_certificates().and_then(|c| c.first()) != Some(&peers[j].cert) {
        return Err(tls_err(
            id,
            name,
            "certificate does not match the configured one",
        ));
    }
    let shutdown = sock.try_clone().map_err(err)?;
    Ok((rustls::StreamOwned::new(conn, sock), shutdown))
}

fn accept_one(
    id: usize,
    peers: &[Peer],
    mut sock: TcpStream,
    cfg: &Arc<ServerConfig>,
    s: &TlsSettings,
) -> Result<(usize, Incoming, TcpStream)> {
    let unknown = "an incoming connection";
    let err = |e: std::io::Error| tls_err(id, unknown, e);
    sock.set_nonblocking(false).map_err(err)?;
    sock.set_nodelay(true).map_err(err)?;
    sock.set_read_timeout(Some(s.timeout)).map_err(err)?;
    sock.set_write_timeout(Some(s.timeout)).map_err(err)?;
    let mut conn = ServerConnection::new(cfg.clone()).map_err(|e| tls_err(id, unknown, e))?;
    handshake!(conn, &mut sock, Instant::now() + s.timeout).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => tls_err(id, unknown, "handshake timed out"),
        _ => tls_err(id, unknown, e),
    })?;
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| tls_err(id, unknown, "no client certificate"))?;
    let from = peers
        .iter()
        .position(|p| &p.cert == cert)
        .filter(|&j| j != id)
        .ok_or_else(|| {
            tls_err(
                id,
                unknown,
                "certificate is not one of the configured nodes'",
            )
        })?;
    // The reader waits for frames as long as needed; `recv` applies the timeout.
    sock.set_read_timeout(None).map_err(err)?;
    let shutdown = sock.try_clone().map_err(err)?;
    let (tx, rx) = channel();
    let max = s.max_frame_words;
    let name = peers[from].name.clone();
    std::thread::Builder::new()
        .name(format!("ppml-mpc-rx-{id}-{from}"))
        .spawn(move || {
            let mut stream = rustls::StreamOwned::new(conn, sock);
            loop {
                let r = match read_frame(&mut stream, max) {
                    Ok(Some(m)) => Ok(m),
                    Ok(None) => Err(MpcError::Disconnected {
                        party: id,
                        peer: from,
                    }),
                    Err(e) if e.kind() == ErrorKind::FileTooLarge => Err(MpcError::FrameTooLarge {
                        party: id,
                        peer: from,
                        words: e.to_string().parse().unwrap_or(u64::MAX),
                        max,
                    }),
                    Err(e) => Err(io_err(id, from, &name, &e)),
                };
                let stop = r.is_err();
                if tx.send(r).is_err() || stop {
                    return;
                }
            }
        })
        .map_err(err)?;
    Ok((from, rx, shutdown))
}

impl Transport for TcpTransport {
    fn id(&self) -> usize {
        self.id
    }

    fn send(&mut self, to: usize, msg: Vec<u64>) -> Result<()> {
        let (id, timeout) = (self.id, self.timeout);
        let name = self.names.get(to).cloned().unwrap_or_default();
        let w =
            self.writers
                .get_mut(to)
                .and_then(Option::as_mut)
                .ok_or(MpcError::Disconnected {
                    party: id,
                    peer: to,
                })?;
        self.stats.bytes_sent += 8 * msg.len() as u64;
        self.sent_since_recv = true;
        write_frame(w, &msg).map_err(|e| match io_err(id, to, &name, &e) {
            MpcError::Timeout { party, peer, .. } => MpcError::Timeout {
                party,
                peer,
                timeout,
            },
            other => other,
        })
    }

    fn recv(&mut self, from: usize) -> Result<Vec<u64>> {
        if self.sent_since_recv {
            self.stats.rounds += 1;
            self.sent_since_recv = false;
        }
        let id = self.id;
        let r = self
            .readers
            .get(from)
            .and_then(Option::as_ref)
            .ok_or(MpcError::Disconnected {
                party: id,
                peer: from,
            })?;
        match r.recv_timeout(self.timeout) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => Err(MpcError::Timeout {
                party: id,
                peer: from,
                timeout: self.timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(MpcError::Disconnected {
                party: id,
                peer: from,
            }),
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        // Outgoing data already written is delivered before the end of stream; reader threads
        // wake up on the shutdown and end.
        for w in self.writers.iter_mut().flatten() {
            w.conn.send_close_notify();
            let _ = w.conn.write_tls(&mut w.sock);
            let _ = w.sock.shutdown(Shutdown::Write);
        }
        for s in &self.sockets {
            let _ = s.shutdown(Shutdown::Read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_bounded() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[1, u64::MAX, 3]).expect("write");
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r, 3).expect("read"),
            Some(vec![1, u64::MAX, 3])
        );
        assert_eq!(read_frame(&mut r, 3).expect("eof"), None);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r, 2).map_err(|e| e.kind()),
            Err(ErrorKind::FileTooLarge)
        );
        let mut r = &buf[..12];
        assert_eq!(
            read_frame(&mut r, 3).map_err(|e| e.kind()),
            Err(ErrorKind::UnexpectedEof)
        );
    }
}
