//! Blocking TLS over any byte stream: [`Connector`] (client side) and [`Acceptor`] (server side)
//! run the whole handshake before returning, so that a refused certificate is an error of the
//! connect or accept call, not of some later read. The handshake waits as long as the
//! underlying stream's reads and writes do (set socket timeouts first).

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};

use crate::config::{client_config, server_config, Trust};
use crate::error::{Result, TlsError};
use crate::pem::Identity;

/// A client's TLS stream over `S`.
pub type ClientStream<S> = rustls::StreamOwned<ClientConnection, S>;
/// A server's TLS stream over `S`.
pub type ServerStream<S> = rustls::StreamOwned<ServerConnection, S>;

fn handshake<D, S: Read + Write>(
    conn: &mut ConnectionCommon<D>,
    sock: &mut S,
    peer: &str,
) -> Result<()> {
    let failed = |source| TlsError::Handshake {
        peer: peer.to_string(),
        source,
    };
    while conn.is_handshaking() {
        conn.complete_io(sock).map_err(failed)?;
    }
    while conn.wants_write() {
        conn.write_tls(sock).map_err(failed)?;
    }
    sock.flush().map_err(failed)?;
    Ok(())
}

/// Opens client connections to one server: a client configuration and the name the server's
/// certificate must carry.
#[derive(Clone, Debug)]
pub struct Connector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl Connector {
    /// Trusts servers as `trust` says, requires `server_name` in their certificate, and shows
    /// `identity` if the server asks for a client certificate.
    ///
    /// # Errors
    /// [`TlsError::Name`] if `server_name` is not a DNS name or IP address, and as
    /// [`client_config`].
    pub fn new(trust: &Trust, identity: Option<&Identity>, server_name: &str) -> Result<Self> {
        Self::with_config(client_config(trust, identity)?, server_name)
    }

    /// A connector with a configuration built elsewhere.
    ///
    /// # Errors
    /// [`TlsError::Name`] if `server_name` is not a DNS name or IP address.
    pub fn with_config(config: Arc<ClientConfig>, server_name: &str) -> Result<Self> {
        let server_name =
            ServerName::try_from(server_name.to_string()).map_err(|_| TlsError::Name {
                name: server_name.to_string(),
                reason: "not a DNS name or IP address",
            })?;
        Ok(Self {
            config,
            server_name,
        })
    }

    /// The name the server must prove.
    pub fn server_name(&self) -> String {
        self.server_name.to_str().into_owned()
    }

    /// Runs the client handshake over `sock`; the server's certificate has been checked when
    /// this returns.
    ///
    /// # Errors
    /// [`TlsError::Handshake`] if the server is not trusted, does not carry the name, speaks
    /// no TLS 1.3, or the stream fails or times out.
    pub fn connect<S: Read + Write>(&self, mut sock: S) -> Result<ClientStream<S>> {
        let name = self.server_name();
        let mut conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(|e| TlsError::Handshake {
                peer: name.clone(),
                source: std::io::Error::other(e),
            })?;
        handshake(&mut conn, &mut sock, &name)?;
        Ok(rustls::StreamOwned::new(conn, sock))
    }
}

/// Accepts server connections: a server configuration.
#[derive(Clone, Debug)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
}

impl Acceptor {
    /// Shows `identity`; with `client_roots`, requires a client certificate chaining to them.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn new(
        identity: &Identity,
        client_roots: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Self> {
        Ok(Self::with_config(server_config(identity, client_roots)?))
    }

    /// An acceptor with a configuration built elsewhere.
    pub fn with_config(config: Arc<ServerConfig>) -> Self {
        Self { config }
    }

    /// Runs the server handshake over `sock`.
    ///
    /// # Errors
    /// [`TlsError::Handshake`] if the client refuses the server's certificate, shows no
    /// acceptable certificate when one is required, speaks no TLS 1.3, or the stream fails or
    /// times out.
    pub fn accept<S: Read + Write>(&self, mut sock: S) -> Result<ServerStream<S>> {
        let peer = "a client";
        let mut conn =
            ServerConnection::new(Arc::clone(&self.config)).map_err(|e| TlsError::Handshake {
                peer: peer.into(),
                source: std::io::Error::other(e),
            })?;
        handshake(&mut conn, &mut sock, peer)?;
        Ok(rustls::StreamOwned::new(conn, sock))
    }
}
