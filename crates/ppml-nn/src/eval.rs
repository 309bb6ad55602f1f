//! The one evaluation loop: accuracy, agreement with plain, latency and throughput, measured the
//! same way for every backend.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, BackendError, SetupFacts};
use crate::idx::Dataset;
use crate::{engine, Model, Tensor};

/// What `ppml eval --json` reports (field names are the CLI contract).
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// What the backend's setup chose (mode, isolation, ring degree, ...), typed (none in
    /// reports from before it was).
    #[serde(default)]
    pub facts: SetupFacts,
    /// What the backend's setup said for people.
    pub notes: Vec<String>,
}

/// The `q`-quantile (`0.0..=1.0`) of `sorted` (ascending) by the nearest rank, or 0 when it is
/// empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize],
    }
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
    let is_plain = backend.is_plain();
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
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Ok(EvalReport {
        model: model.name.clone(),
        backend: backend.name().to_string(),
        n,
        batch,
        accuracy: frac(correct),
        agreement: (!is_plain).then(|| frac(agree)),
        seconds,
        latency_ms: percentile(&call_ms, 0.5),
        latency_p95_ms: percentile(&call_ms, 0.95),
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
        facts: setup.facts,
        notes: setup.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{CallStats, PlainBackend, SetupReport};
    use crate::zoo;

    /// A seeded `mlp` and `n` pseudo-random images labelled with its own predictions in calls of
    /// `batch` images (so that plain inference in such calls is right on every one).
    fn model_and_data(n: usize, batch: usize) -> (Model, Dataset) {
        let mut model = zoo::architecture("mlp").expect("zoo model");
        zoo::init_weights(&mut model, 7);
        let pixels: Vec<u8> = (0..n * 28 * 28)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        let mut data = Dataset {
            rows: 28,
            cols: 28,
            pixels,
            labels: vec![0; n],
        };
        data.labels = (0..n)
            .step_by(batch)
            .flat_map(|start| {
                let x = batch_tensor(&model, &data, start, (start + batch).min(n));
                engine::forward(&model, &x).expect("forward").argmax_rows()
            })
            .map(|p| p as u8)
            .collect();
        (model, data)
    }

    /// Plain inference whose answer is moved to the next class on every `every`-th image it
    /// sees; it calls itself `plain` to show that the loop does not go by the name.
    struct Flipping {
        model: Option<Model>,
        every: usize,
        seen: usize,
        facts: SetupFacts,
        rows_missing: usize,
    }

    impl Flipping {
        fn new(every: usize) -> Self {
            Self {
                model: None,
                every,
                seen: 0,
                facts: SetupFacts {
                    mode: Some("flipping".into()),
                    ring_degree: Some(16),
                    ..SetupFacts::default()
                },
                rows_missing: 0,
            }
        }
    }

    impl Backend for Flipping {
        fn name(&self) -> &str {
            "plain"
        }

        fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
            self.model = Some(model.clone());
            Ok(SetupReport {
                seconds: 0.0,
                bytes_sent: 5,
                facts: self.facts.clone(),
                notes: vec!["flips answers".into()],
            })
        }

        fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
            let model = self.model.as_ref().ok_or("not set up")?;
            let predicted = engine::forward(model, images)?.argmax_rows();
            let rows = predicted.len() - self.rows_missing;
            let mut logits = Tensor::zeros(vec![rows, 10]);
            for (row, &p) in predicted.iter().take(rows).enumerate() {
                let label = if self.seen.is_multiple_of(self.every) {
                    (p + 1) % 10
                } else {
                    p
                };
                self.seen += 1;
                logits.data_mut()[row * 10 + label] = 1.0;
            }
            let stats = CallStats {
                bytes_sent: 100,
                rounds: 2,
                offline_on_demand: true,
                ..CallStats::default()
            };
            Ok((logits, stats))
        }
    }

    #[test]
    fn percentile_is_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[4.0], 0.95), 4.0);
        let ms: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&ms, 0.0), 1.0);
        assert_eq!(percentile(&ms, 1.0), 20.0);
        // Rank (20 - 1) * 0.5 = 9.5 rounds to 10: the 11th value.
        assert_eq!(percentile(&ms, 0.5), 11.0);
        // Rank 19 * 0.95 = 18.05 rounds to 18: the 19th value.
        assert_eq!(percentile(&ms, 0.95), 19.0);
        // Quantiles outside 0..=1 are clamped rather than indexing out of range.
        assert_eq!(percentile(&ms, 1.5), 20.0);
    }

    #[test]
    fn plain_agrees_with_itself_and_reports_no_agreement() {
        let (model, data) = model_and_data(10, 3);
        let mut progress = Vec::new();
        let r = evaluate(
            &mut PlainBackend::default(),
            &model,
            &data,
            3,
            &mut |d, t| progress.push((d, t)),
        )
        .expect("plain eval");
        assert_eq!((r.n, r.batch, r.accuracy, r.agreement), (10, 3, 1.0, None));
        assert_eq!(progress, [(3, 10), (6, 10), (9, 10), (10, 10)]);
        assert_eq!(r.facts, SetupFacts::default());
        assert_eq!((r.bytes_sent, r.rounds, r.on_demand_calls), (0, 0, 0));
        assert!(r.latency_ms <= r.latency_p95_ms);
        assert!(r.throughput_img_per_s > 0.0);
    }

    #[test]
    fn agreement_counts_answers_that_differ_from_plain() {
        let (model, data) = model_and_data(10, 3);
        // Images 0, 4 and 8 get another answer than plain's (which is also the label).
        let r = evaluate(&mut Flipping::new(4), &model, &data, 3, &mut |_, _| {})
            .expect("flipping eval");
        assert_eq!(r.backend, "plain");
        assert_eq!(r.agreement, Some(0.7));
        assert_eq!(r.accuracy, 0.7);
        // Four calls (3 + 3 + 3 + 1 images), each reporting 100 bytes in 2 rounds.
        assert_eq!((r.bytes_sent, r.rounds, r.on_demand_calls), (400, 8, 4));
        assert_eq!(r.setup_bytes, 5);
        assert_eq!(r.facts, Flipping::new(4).facts);
        assert_eq!(r.notes, ["flips answers"]);
        let every = evaluate(&mut Flipping::new(1), &model, &data, 3, &mut |_, _| {})
            .expect("flipping eval");
        assert_eq!((every.agreement, every.accuracy), (Some(0.0), 0.0));
    }

    #[test]
    fn bad_inputs_and_short_answers_are_errors() {
        let (model, data) = model_and_data(4, 2);
        let mut plain = PlainBackend::default();
        let zero = evaluate(&mut plain, &model, &data, 0, &mut |_, _| {});
        assert!(zero.is_err_and(|e| e.to_string().contains("at least 1")));
        let mut small = data.clone();
        small.rows = 14;
        small.cols = 56;
        let shape = evaluate(&mut plain, &model, &small, 2, &mut |_, _| {});
        assert!(shape.is_err_and(|e| e.to_string().contains("14x56")));
        let mut short = Flipping::new(2);
        short.rows_missing = 1;
        let rows = evaluate(&mut short, &model, &data, 2, &mut |_, _| {});
        assert!(rows.is_err_and(|e| e.to_string().contains("1 rows of logits for 2 images")));
    }
}
