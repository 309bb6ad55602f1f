//! TLS 1.3 links between the nodes of a deployment (rustls with the `ring` provider).
//!
//! Each ordered pair of parties `(i, j)` has its own connection, opened by `i` (TLS client) to
//! `j`'s listening address (TLS server) and used only for `i`'s frames to `j`; the mesh of
//! [`crate::mesh`] runs over them. A client opens one two-way connection to each party.
//!
//! Authentication: every node has a certificate signed by the deployment's CA
//! ([`crate::deploy::generate_certs`]). A connecting node checks the server's chain and name
//! (`party-I`) and pins the party's certificate. An accepting party checks the client's chain;
//! a certificate pinned to a party makes the connection that party's mesh link, any other
//! certificate of the CA makes it a client session (so clients can be added without a new
//! deployment). Unknown or wrong certificates fail the handshake with [`MpcError::Tls`].

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::error::{MpcError, Result};
use crate::link::Duplex;

/// One party of the mesh as every node sees it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The node's name, also the DNS name in its certificate (`party-0`, ...).
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its certificate (DER), pinned by the others.
    pub cert: CertificateDer<'static>,
}

/// Everything a node needs to take part.
#[derive(Debug)]
pub struct TlsSettings {
    /// The CA certificate(s) trusted for the other nodes' chains.
    pub ca: Vec<CertificateDer<'static>>,
    /// This node's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// This node's private key.
    pub key: PrivateKeyDer<'static>,
    /// Timeout for socket writes and each handshake.
    pub timeout: Duration,
    /// How long to keep trying to reach a party that is not up yet.
    pub connect_timeout: Duration,
}

/// A TLS stream over TCP, usable as a client's two-way link.
pub type TlsStream<C> = rustls::StreamOwned<C, TcpStream>;

impl<C: Send> Duplex for TlsStream<C>
where
    Self: std::io::Read + std::io::Write,
{
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }

    fn shutdown(&self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
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

/// What an accepted connection turned out to be.
pub(crate) enum Accepted {
    /// Party `from`'s mesh link to this party (read only).
    Party(usize, TlsStream<ServerConnection>),
    /// A client of the deployment (its certificate's first DNS name is not checked: any
    /// certificate of the CA that is not a party's).
    Client(TlsStream<ServerConnection>),
}

/// A node's TLS identity and its view of the parties.
pub(crate) struct TlsNode {
    id: usize,
    parties: Vec<Peer>,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl TlsNode {
    /// Node `id` (a party index, or 3 for a client) of a deployment with `parties`.
    pub(crate) fn new(id: usize, parties: Vec<Peer>, settings: &TlsSettings) -> Result<Self> {
        let (client, server) = configs(id, settings)?;
        Ok(Self {
            id,
            parties,
            client,
            server,
            timeout: settings.timeout,
            connect_timeout: settings.connect_timeout,
        })
    }

    /// Opens a connection to party `j`, retrying until the connect timeout while it is not up,
    /// and checks that it presents its pinned certificate.
    pub(crate) fn connect(&self, j: usize) -> Result<TlsStream<ClientConnection>> {
        let (id, peer) = (
            self.id,
            self.parties
                .get(j)
                .ok_or(MpcError::PartyFailed { party: j })?,
        );
        let deadline = Instant::now() + self.connect_timeout;
        let mut sock = loop {
            match TcpStream::connect_timeout(&peer.address, self.timeout) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => {
                    return Err(MpcError::Timeout {
                        party: id,
                        peer: j,
                        timeout: self.connect_timeout,
                    })
                }
            }
        };
        let name = &peer.name;
        let err = |e: std::io::Error| io_err(id, j, name, &e);
        sock.set_nodelay(true).map_err(err)?;
        sock.set_read_timeout(Some(self.timeout)).map_err(err)?;
        sock.set_write_timeout(Some(self.timeout)).map_err(err)?;
        let server = ServerName::try_from(name.clone()).map_err(|e| tls_err(id, name, e))?;
        let mut conn =
            ClientConnection::new(self.client.clone(), server).map_err(|e| tls_err(id, name, e))?;
        handshake!(conn, &mut sock, Instant::now() + self.timeout).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => MpcError::Timeout {
                party: id,
                peer: j,
                timeout: self.timeout,
            },
            _ => tls_err(id, name, e),
        })?;
        if conn.peer_certificates().and_then(|c| c.first()) != Some(&peer.cert) {
            return Err(tls_err(
                id,
                name,
                "certificate does not match the configured one",
            ));
        }
        // Reads wait as long as the caller says (a session's idle time, a reply).
        sock.set_read_timeout(None).map_err(err)?;
        Ok(rustls::StreamOwned::new(conn, sock))
    }

    /// Authenticates an incoming connection and tells a party's link from a client's.
    pub(crate) fn accept(&self, mut sock: TcpStream) -> Result<Accepted> {
        let id = self.id;
        let unknown = "an incoming connection";
        let err = |e: std::io::Error| tls_err(id, unknown, e);
        sock.set_nonblocking(false).map_err(err)?;
        sock.set_nodelay(true).map_err(err)?;
        sock.set_read_timeout(Some(self.timeout)).map_err(err)?;
        sock.set_write_timeout(Some(self.timeout)).map_err(err)?;
        let mut conn =
            ServerConnection::new(self.server.clone()).map_err(|e| tls_err(id, unknown, e))?;
        handshake!(conn, &mut sock, Instant::now() + self.timeout).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                tls_err(id, unknown, "handshake timed out")
            }
            _ => tls_err(id, unknown, e),
        })?;
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| tls_err(id, unknown, "no client certificate"))?
            .clone();
        sock.set_read_timeout(None).map_err(err)?;
        let stream = rustls::StreamOwned::new(conn, sock);
        match self.parties.iter().position(|p| p.cert == cert) {
            Some(j) if j == id => Err(tls_err(
                id,
                unknown,
                "presented this party's own certificate",
            )),
            Some(j) => Ok(Accepted::Party(j, stream)),
            None => Ok(Accepted::Client(stream)),
        }
    }
}
