//! The one evaluation loop: accuracy, agreement with plain, latency and throughput, measured the
//! same way for every backend.

use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, BackendError, OfflineTotals};
use crate::idx::Dataset;
use crate::{engine, Model, Tensor};

/// What `ppml eval --json` reports (field names are the CLI contract).
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The model's name.
    pub model: String,
    /// The backend's name.
    pub backend: String,
    /// Images evaluated.
    pub n: usize,
    /// Images per inference call.
    pub batch: usize,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Fraction whose predicted label equals plain inference's (absent for plain itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    /// Wall time of all inference calls, setup excluded.
    pub seconds: f64,
    /// Median wall time of one inference call on `batch` images.
    pub latency_ms: f64,
    /// 95th percentile of the same.
    pub latency_p95_ms: f64,
    /// Images divided by the time of the inference calls.
    pub throughput_img_per_s: f64,
    /// Wall time of the one-time setup.
    pub setup_seconds: f64,
    /// Bytes sent during setup.
    pub setup_bytes: u64,
    /// Bytes sent by all parties during the inference calls.
    pub bytes_sent: u64,
    /// Communication rounds of all inference calls.
    pub rounds: u64,
    /// The client's own part of `bytes_sent` (sent and received).
    pub client_bytes: u64,
    /// Bytes of correlated randomness made ahead of the calls (offline phase), not in
    /// `bytes_sent`.
    pub offline_bytes: u64,
    /// Time spent making that randomness ahead of the calls, not in `seconds`.
    pub offline_seconds: f64,
    /// Calls that found no randomness made ahead and made it while they ran.
    pub on_demand_calls: usize,
    /// Facts the backend reported during setup.
    pub notes: Vec<String>,
    /// For backends with an input-independent offline phase: its share of `seconds`,
    /// `bytes_sent` and `rounds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline: Option<OfflineTotals>,
}

/// Normalises images `start..end` of `data` into a `[n, c, h, w]` tensor for `model`.
pub fn batch_tensor(model: &Model, data: &Dataset, start: usize, end: usize) -> Tensor {
    let mut x = Vec::with_capacity((end - start) * data.rows * data.cols);
    for i in start..end {
        model.preprocess_into(data.image(i), &mut x);
    }
    let [c, h, w] = model.input;
    Tensor::new(vec![end - start, c, h, w], x).unwrap_or_else(|_| Tensor::zeros(vec![0, c, h, w]))
}

/// Runs `backend` on every image of `data` in batches of `batch`, after its setup, and compares
/// with the labels and with plain inference. `progress(done, total)` is called after each batch.
pub fn evaluate(
    backend: &mut dyn Backend,
    model: &Model,
    data: &Dataset,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport, BackendError> {
    let [_, h, w] = model.input;
    if data.rows != h || data.cols != w {
        return Err(format!(
            "data images are {}x{}, model {} expects {h}x{w}",
            data.rows, data.cols, model.name
        )
        .into());
    }
    if batch == 0 {
        return Err("batch size must be at least 1".into());
    }
    let t = Instant::now();
    let setup = backend.setup(model)?;
    let setup_seconds = t.elapsed().as_secs_f64();

    let n = data.len();
    let (mut correct, mut agree, mut bytes, mut rounds) = (0usize, 0usize, 0u64, 0u64);
    let (mut client_bytes, mut offline_bytes, mut offline_seconds, mut on_demand_calls) =
        (0u64, 0u64, 0f64, 0usize);
    let mut call_ms = Vec::with_capacity(n.div_ceil(batch));
    let mut seconds = 0.0;
    let is_plain = backend.name() == "plain";
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let x = batch_tensor(model, data, start, end);
        let t = Instant::now();
        let (logits, stats) = backend.infer(&x)?;
        let dt = t.elapsed().as_secs_f64();
        if logits.batch() != end - start {
            return Err(format!(
                "{} returned {} rows of logits for {} images",
                backend.name(),
                logits.batch(),
                end - start
            )
            .into());
        }
        seconds += dt;
        call_ms.push(dt * 1e3);
        bytes += stats.bytes_sent;
        rounds += stats.rounds;
        client_bytes += stats.client_bytes;
        offline_bytes += stats.offline_bytes;
        offline_seconds += stats.offline_time.as_secs_f64();
        on_demand_calls += usize::from(stats.offline_on_demand);
        let predicted = logits.argmax_rows();
        let reference = if is_plain {
            predicted.clone()
        } else {
            engine::forward(model, &x)?.argmax_rows()
        };
        for (k, (&p, &r)) in predicted.iter().zip(&reference).enumerate() {
            correct += usize::from(p == usize::from(data.labels[start + k]));
            agree += usize::from(p == r);
        }
        progress(end, n);
    }
    call_ms.sort_by(f64::total_cmp);
    let pct = |q: f64| -> f64 {
        if call_ms.is_empty() {
            return 0.0;
        }
        call_ms[((call_ms.len() - 1) as f64 * q).round() as usize]
    };
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Ok(EvalReport {
        model: model.name.clone(),
        backend: backend.name().to_string(),
        n,
        batch,
        accuracy: frac(correct),
        agreement: (!is_plain).then(|| frac(agree)),
        seconds,
        latency_ms: pct(0.5),
        latency_p95_ms: pct(0.95),
        throughput_img_per_s: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        setup_seconds,
        setup_bytes: setup.bytes_sent,
        bytes_sent: bytes,
        rounds,
        client_bytes,
        offline_bytes,
        offline_seconds,
        on_demand_calls,
        notes: setup.notes,
        offline: backend.offline_totals(),
    })
}
