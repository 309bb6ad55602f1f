//! The server role over the network: [`serve`] accepts clients over TLS 1.3 and runs a
//! [`ServerSession`] for each on its own thread; [`LocalServer`] does the same on
//! `127.0.0.1` for the in-process backend, with a certificate made for it.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ppml_rlwe::Params;
use ppml_tls::Acceptor;

use crate::error::{HybridError, Result};
use crate::plan::ServerModel;
use crate::session::ServerSession;
use crate::tls::TlsLink;

/// How [`serve`] runs.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    /// Serve this many sessions, then return once they have ended (`None`: serve forever).
    pub sessions: Option<u64>,
    /// How long a session waits for its client before ending it.
    pub timeout: Duration,
}

/// How a session ended: the client's address and the images classified, or the error.
pub type SessionEnd = (SocketAddr, Result<u64>);

/// Serves `model` to every client that connects to `listener` over TLS as `tls` says, each on
/// its own thread; `on_end` hears how each session ended. Returns after `options.sessions`
/// sessions have ended, or on an error of the listener.
pub fn serve(
    listener: &TcpListener,
    params: &Arc<Params>,
    model: &Arc<ServerModel>,
    tls: &Acceptor,
    options: ServeOptions,
    on_end: Arc<dyn Fn(SessionEnd) + Send + Sync>,
) -> Result<()> {
    let io = |e: std::io::Error| HybridError::LinkClosed {
        peer: "client",
        reason: format!("accepting a connection: {e}"),
    };
    let mut workers = Vec::new();
    let mut accepted = 0u64;
    while options.sessions.is_none_or(|s| accepted < s) {
        let (stream, peer) = listener.accept().map_err(io)?;
        accepted += 1;
        let (params, model, tls, on_end) = (
            Arc::clone(params),
            Arc::clone(model),
            tls.clone(),
            Arc::clone(&on_end),
        );
        workers.push(std::thread::spawn(move || {
            let served = TlsLink::accept(stream, &tls, options.timeout)
                .and_then(|link| ServerSession::accept(Box::new(link), params, model)?.serve());
            on_end((peer, served));
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// A server for one session on a thread of this process, at a free port of `127.0.0.1`.
pub struct LocalServer {
    addr: SocketAddr,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl LocalServer {
    /// Binds `127.0.0.1:0` and serves one session of `model` there over TLS as `tls` says.
    pub fn spawn(
        params: Arc<Params>,
        model: Arc<ServerModel>,
        tls: Acceptor,
        timeout: Duration,
    ) -> Result<Self> {
        let io = |e: std::io::Error| HybridError::LinkClosed {
            peer: "client",
            reason: format!("listening on 127.0.0.1: {e}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().map_err(io)?;
            let link = TlsLink::accept(stream, &tls, timeout)?;
            ServerSession::accept(Box::new(link), params, model)?.serve()
        });
        Ok(Self {
            addr,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the session to end (the client closed it or failed): the images served.
    pub fn join(mut self) -> Result<u64> {
        self.wait()
    }

    fn wait(&mut self) -> Result<u64> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(HybridError::LinkClosed {
                peer: "server",
                reason: "the server thread panicked".into(),
            }),
            None => Ok(0),
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        // A server still waiting for its client (setup failed before connecting) is woken by
        // a connection that fails its handshake at once.
        if self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            let _ = std::net::TcpStream::connect(self.addr);
        }
        let _ = self.wait();
    }
}
