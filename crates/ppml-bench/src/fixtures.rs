//! A made-up report for the tests of the report's forms and charts: every kind of row a bench
//! run produces (plain, a backend with facts, a substituted model without latency, a pair not
//! run), with figures chosen so that each derived one is known.

use ppml_nn::backend::SetupFacts;
use ppml_nn::eval::EvalReport;

use crate::{PairResult, Report};

/// An evaluation of `n` images in calls of `batch`, with the given accuracy, agreement,
/// throughput, median latency and bytes sent, and nothing else.
pub fn eval(
    (model, backend): (&str, &str),
    (n, batch): (usize, usize),
    (accuracy, agreement): (f64, Option<f64>),
    (throughput, latency_ms, bytes_sent): (f64, f64, u64),
    facts: SetupFacts,
) -> EvalReport {
    EvalReport {
        model: model.into(),
        backend: backend.into(),
        n,
        batch,
        accuracy,
        agreement,
        seconds: n as f64 / throughput,
        latency_ms,
        latency_p95_ms: latency_ms * 1.5,
        throughput_img_per_s: throughput,
        setup_seconds: 0.25,
        setup_bytes: 1000,
        bytes_sent,
        rounds: 4 * n as u64,
        client_bytes: bytes_sent / 2,
        offline_bytes: 0,
        offline_seconds: 0.0,
        on_demand_calls: 0,
        facts,
        notes: vec!["for people".into()],
    }
}

/// A pair that ran, with its slowdowns against `plain` = (latency ms, images/s).
fn pair(
    model: &str,
    latency: Option<EvalReport>,
    throughput: EvalReport,
    plain: (f64, f64),
) -> PairResult {
    PairResult {
        model: model.into(),
        model_run: throughput.model.clone(),
        backend: throughput.backend.clone(),
        skipped: None,
        latency_slowdown: latency.as_ref().map(|l| l.latency_ms / plain.0),
        latency_skipped: latency.is_none().then(|| "no latency mode".into()),
        throughput_slowdown: Some(plain.1 / throughput.throughput_img_per_s),
        latency,
        throughput: Some(throughput),
        peak_rss_mib: Some(100.0),
    }
}

/// Plain, tee and mpc2 on `cnn`; plain and he (as `mlp-sq`, no latency) on `mlp`; hybrid on
/// `mlp`, not run.
pub fn report() -> Report {
    let none = SetupFacts::default;
    let tee = SetupFacts {
        isolation: Some("simulated (no hardware isolation)".into()),
        ..none()
    };
    let mpc2 = SetupFacts {
        comparison: Some("fss".into()),
        fractional_bits: Some(16),
        ..none()
    };
    let he = SetupFacts {
        mode: Some("throughput".into()),
        ring_degree: Some(8192),
        throughput_input_ciphertexts: Some(784),
        ..none()
    };
    let cnn_plain = (0.1, 10_000.0);
    let mlp_plain = (0.05, 20_000.0);
    let results = vec![
        pair(
            "cnn",
            Some(eval(
                ("cnn", "plain"),
                (10, 1),
                (0.98, None),
                (1e4, 0.1, 0),
                none(),
            )),
            eval(
                ("cnn", "plain"),
                (100, 100),
                (0.98, None),
                (1e4, 0.1, 0),
                none(),
            ),
            cnn_plain,
        ),
        pair(
            "cnn",
            Some(eval(
                ("cnn", "tee"),
                (10, 1),
                (0.98, Some(1.0)),
                (5e3, 0.2, 20_000),
                tee.clone(),
            )),
            eval(
                ("cnn", "tee"),
                (100, 100),
                (0.98, Some(1.0)),
                (5e3, 0.2, 200_000),
                tee,
            ),
            cnn_plain,
        ),
        pair(
            "cnn",
            Some(eval(
                ("cnn", "mpc2"),
                (10, 1),
                (0.97, Some(0.99)),
                (100.0, 50.0, 30_000_000),
                mpc2.clone(),
            )),
            eval(
                ("cnn", "mpc2"),
                (100, 100),
                (0.97, Some(0.99)),
                (100.0, 50.0, 0),
                mpc2,
            ),
            cnn_plain,
        ),
        pair(
            "mlp",
            Some(eval(
                ("mlp", "plain"),
                (10, 1),
                (0.96, None),
                (2e4, 0.05, 0),
                none(),
            )),
            eval(
                ("mlp", "plain"),
                (100, 100),
                (0.96, None),
                (2e4, 0.05, 0),
                none(),
            ),
            mlp_plain,
        ),
        pair(
            "mlp",
            None,
            eval(
                ("mlp-sq", "he"),
                (100, 100),
                (0.955, Some(0.985)),
                (20.0, 0.0, 9_000_000),
                he,
            ),
            // The bench compares with plain on mlp-sq, which has no row of its own.
            (0.05, 40_000.0),
        ),
        PairResult::unmeasured("mlp", "mlp", "hybrid", Some("not in this build".into())),
    ];
    Report {
        machine: "test machine, 2 cores".into(),
        commit: "0123abc".into(),
        date: "2026-12-07 18:00 UTC".into(),
        limit: 100,
        latency_images: 10,
        results,
        deployed: Vec::new(),
    }
}
