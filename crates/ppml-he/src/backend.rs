//! [`HeBackend`]: ppml-nn's [`Backend`] for encrypted inference, client and server in one
//! process but talking only through serialised parameters, keys and ciphertexts.

use std::time::Instant;

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};

use crate::client::{Client, ClientSpec};
use crate::error::{HeError, Result};
use crate::server::{Mode, Server};

struct Session {
    client: Client,
    server: Server,
    classes: usize,
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
        let start = Instant::now();
        let (mut server, spec) = Server::prepare(model, self.mode)?;
        // The spec crosses the client/server boundary as bytes, validated like any message.
        let wire = spec.to_bytes();
        let mut bytes = wire.len() as u64;
        let spec = ClientSpec::from_bytes(&wire)?;
        let classes = spec.outputs;
        let (client, keys) = Client::new(spec)?;
        bytes += (keys.relin.len() + keys.galois.len()) as u64;
        server.install_keys(&keys)?;
        let notes = server.notes().to_vec();
        self.session = Some(Session {
            client,
            server,
            classes,
        });
        Ok(SetupReport {
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent: bytes,
            notes,
        })
    }

    fn do_infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let s = self.session.as_ref().ok_or(HeError::NotSetUp)?;
        let n = images.batch();
        let items: Vec<&[f32]> = (0..n).map(|i| images.item(i)).collect();
        let mut logits = Vec::with_capacity(n * s.classes);
        let mut stats = CallStats::default();
        if s.server.uses_latency(n) {
            for img in items {
                let req = s.client.encrypt_one(img)?;
                let resp = s.server.handle_one(&req)?;
                stats.bytes_sent +=
                    req.iter().map(|b| b.len() as u64).sum::<u64>() + resp.len() as u64;
                stats.rounds += 1;
                logits.extend(s.client.decrypt_one(&resp)?);
            }
        } else {
            for chunk in items.chunks(s.client.batch_capacity().max(1)) {
                let req = s.client.encrypt_batch(chunk)?;
                let resp = s.server.handle_batch(&req)?;
                stats.bytes_sent += req.iter().chain(&resp).map(|b| b.len() as u64).sum::<u64>();
                stats.rounds += 1;
                for row in s.client.decrypt_batch(&resp, chunk.len())? {
                    logits.extend(row);
                }
            }
        }
        // The client and the server are the only two parties.
        stats.client_bytes = stats.bytes_sent;
        Ok((Tensor::new(vec![n, s.classes], logits)?, stats))
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
