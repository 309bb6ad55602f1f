//! The one interface between the backends and the CLI/benchmark.

use std::error::Error;

use serde::{Deserialize, Serialize};

use crate::{engine, Model, Tensor};

/// The error a backend reports: its own crate's typed error, boxed at this boundary.
pub type BackendError = Box<dyn Error + Send + Sync + 'static>;

/// What one-time preparation cost (keys, dealer material, attestation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetupReport {
    /// Wall time of the setup.
    pub seconds: f64,
    /// Bytes sent during setup, all parties together.
    pub bytes_sent: u64,
    /// What the setup chose, as typed fields for programs (the bench's table and charts).
    pub facts: SetupFacts,
    /// Human-readable facts about the setup (parameters chosen, evidence mode, ...): for people,
    /// not to be parsed.
    pub notes: Vec<String>,
}

/// What a backend's setup chose, for programs: each backend fills the fields that apply to it and
/// leaves the others `None` (plain fills none). [`SetupReport::notes`] says the same and more for
/// people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupFacts {
    /// The packing calls use, as the backend names it (`he`: `latency`, `throughput`, or `auto`:
    /// latency for one image, throughput for more).
    pub mode: Option<String>,
    /// What isolates the computation from its host, as the verified evidence is labelled (`tee`:
    /// `simulated (no hardware isolation)` or `sgx (DCAP quote)`).
    pub isolation: Option<String>,
    /// Degree N of the polynomial ring of the lattice encryption (`he`: CKKS; `hybrid`: RLWE).
    pub ring_degree: Option<usize>,
    /// Ciphertexts encrypting one image in latency mode (`he`, when latency mode is set up).
    pub latency_input_ciphertexts: Option<usize>,
    /// Ciphertexts encrypting one batch in throughput mode (`he`, when throughput mode is set up).
    pub throughput_input_ciphertexts: Option<usize>,
    /// The secure comparison behind ReLU and max-pooling (`mpc2`, `mpc3`: `bit-decomposition`
    /// or `fss`).
    pub comparison: Option<String>,
    /// Fractional bits of the fixed-point encoding (`mpc2`, `mpc3`).
    pub fractional_bits: Option<u32>,
}

/// Communication of one inference call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Bytes sent during the call, all parties together (the client's traffic included).
    pub bytes_sent: u64,
    /// Communication rounds on the critical path (sequential message exchanges).
    pub rounds: u64,
    /// The client's own part of `bytes_sent` (what it sent and received).
    pub client_bytes: u64,
    /// Bytes of input-independent correlated randomness this call used that were sent ahead of
    /// it (the offline phase); not part of `bytes_sent`.
    pub offline_bytes: u64,
    /// Time spent making that randomness ahead of the call; not part of the call's time.
    pub offline_time: std::time::Duration,
    /// The call needed such randomness but none was ready: it was made while the call ran
    /// (and so counts in its time and `bytes_sent`).
    pub offline_on_demand: bool,
}

/// A way to run private (or, for [`PlainBackend`], plain) inference for one model.
pub trait Backend {
    /// The backend's name as the CLI spells it (`plain`, `he`, `mpc2`, ...).
    fn name(&self) -> &str;
    /// Whether this backend is plain inference itself, the reference others are compared with
    /// (the evaluation loop then reports no agreement: it would compare the backend with itself).
    fn is_plain(&self) -> bool {
        false
    }
    /// One-time work before queries, reported as setup and never hidden in query times.
    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError>;
    /// Classifies a batch of preprocessed images `[n, c, h, w]` end to end as the user waits
    /// (the client's encryption or sharing and decryption included); returns logits `[n, classes]`.
    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError>;
}

/// The f32 reference: inference in the clear with [`engine::forward`].
#[derive(Debug, Default)]
pub struct PlainBackend {
    model: Option<Model>,
}

impl Backend for PlainBackend {
    fn name(&self) -> &str {
        "plain"
    }

    fn is_plain(&self) -> bool {
        true
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        model.shapes()?;
        self.model = Some(model.clone());
        Ok(SetupReport::default())
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        let model = self
            .model
            .as_ref()
            .ok_or("plain backend used before setup")?;
        Ok((engine::forward(model, images)?, CallStats::default()))
    }
}
