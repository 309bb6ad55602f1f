//! [`HeBackend`]: ppml-nn's [`Backend`] for encrypted inference. It is the network client
//! ([`HeClient`]) talking over TLS 1.3 on 127.0.0.1 to the real server session code
//! ([`LocalServer`]) on threads of this process, as a deployment runs them in two processes:
//! every byte and round it reports crossed that socket.

use std::time::Instant;

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};
use ppml_tls::{Acceptor, Ca, Connector, Trust};

use crate::client::HeClient;
use crate::error::{HeError, Result};
use crate::mode::Mode;
use crate::session::{LocalServer, ServeOptions};

/// The name of the in-process server's certificate.
const SERVER_NAME: &str = "he-server";

/// A client connected to its server. Fields drop in order: the client closes its session
/// before the server stops.
struct Session {
    client: HeClient,
    _server: LocalServer,
}

/// Encrypted inference with CKKS.
pub struct HeBackend {
    mode: Mode,
    session: Option<Session>,
}

impl std::fmt::Debug for HeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeBackend")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl HeBackend {
    /// A backend in `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            session: None,
        }
    }

    /// Throughput mode (one image per slot).
    pub fn throughput() -> Self {
        Self::new(Mode::Throughput)
    }

    /// Latency mode (one image per ciphertext).
    pub fn latency() -> Self {
        Self::new(Mode::Latency)
    }

    /// Latency mode for calls with one image (when the model's layout fits the slots),
    /// throughput mode for larger batches. Setup prepares both (same parameters; the Galois
    /// keys are the only extra).
    pub fn auto() -> Self {
        Self::new(Mode::Auto)
    }

    /// The mode asked for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Images per throughput batch (the CKKS slots, twice over with complex packing), after
    /// setup.
    pub fn slots(&self) -> Option<usize> {
        self.session.as_ref().map(|s| s.client.batch_capacity())
    }

    fn do_setup(&mut self, model: &Model) -> Result<SetupReport> {
        // A second setup replaces the first session (and stops its server).
        self.session = None;
        let start = Instant::now();
        // A CA and a server identity of this process alone, made afresh for every setup.
        let ca = Ca::generate("ppml in-process HE CA")?;
        let tls = Acceptor::new(&ca.identity(SERVER_NAME)?, None)?;
        let trust = Trust::Roots(vec![ca.cert().clone()]);
        let connector = Connector::new(&trust, None, SERVER_NAME)?;
        let options = ServeOptions {
            max_sessions: 1,
            // The server's only client is this backend, which may stay idle between calls.
            idle_timeout: None,
        };
        let server = LocalServer::spawn(model.clone(), &options, tls)?;
        // Prepared before the client connects, so a model the server refuses gives its own
        // error here (not the client's view of a refused session); the session reuses it.
        let prepared = server.prepared(self.mode)?;
        // No timeout: the server is a thread of this process, and a lenet-sq batch of 16,384
        // images takes minutes; if the thread fails, its socket closes.
        let client = HeClient::connect_with(server.addr(), &connector, self.mode, None)?;
        let mut notes = prepared.notes().to_vec();
        notes.extend(client.notes().iter().cloned());
        notes.push(format!(
            "transport: TLS 1.3 over 127.0.0.1 to server threads of this process ({} bytes of setup on the wire)",
            client.setup_bytes()
        ));
        let bytes_sent = client.setup_bytes();
        let facts = client.facts();
        self.session = Some(Session {
            client,
            _server: server,
        });
        Ok(SetupReport {
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent,
            facts,
            notes,
        })
    }

    fn do_infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let s = self.session.as_mut().ok_or(HeError::NotSetUp)?;
        s.client.infer(images)
    }
}

impl Backend for HeBackend {
    fn name(&self) -> &str {
        "he"
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        Ok(self.do_setup(model)?)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        Ok(self.do_infer(images)?)
    }
}
