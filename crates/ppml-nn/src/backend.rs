//! The one interface between the backends and the CLI/benchmark.

use std::error::Error;

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
    /// Human-readable facts about the setup (parameters chosen, evidence mode, ...).
    pub notes: Vec<String>,
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

/// The input-independent part of the inference calls so far: precomputation (such as oblivious
/// transfer extension) that a deployment could run ahead of the queries. Already included in
/// the calls' times and [`CallStats`]; reported apart so that both phases can be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct OfflineTotals {
    /// Wall time.
    pub seconds: f64,
    /// Bytes sent, all parties together.
    pub bytes_sent: u64,
    /// Communication rounds.
    pub rounds: u64,
}

/// A way to run private (or, for [`PlainBackend`], plain) inference for one model.
pub trait Backend {
    /// The backend's name as the CLI spells it (`plain`, `he`, `mpc2`, ...).
    fn name(&self) -> &str;
    /// One-time work before queries, reported as setup and never hidden in query times.
    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError>;
    /// Classifies a batch of preprocessed images `[n, c, h, w]` end to end as the user waits
    /// (the client's encryption or sharing and decryption included); returns logits `[n, classes]`.
    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError>;
    /// For backends with an offline phase, its share of all calls since setup.
    fn offline_totals(&self) -> Option<OfflineTotals> {
        None
    }
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
