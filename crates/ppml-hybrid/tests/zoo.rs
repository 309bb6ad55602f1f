//! Every zoo model under the hybrid backend, against the f32 reference engine.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use ppml_hybrid::HybridBackend;
use ppml_nn::backend::Backend;
use ppml_nn::{engine, zoo, Tensor};

/// Deterministic inputs that look like normalised MNIST digits (mostly background, some ink).
fn images(n: usize, seed: usize) -> Tensor {
    let data = (0..n * 784)
        .map(|i| {
            let h = (i * 2_654_435_761 + seed * 97) % 1000;
            if h < 700 {
                -0.4242
            } else {
                (h as f32 / 1000.0) * 2.8 - 0.4242
            }
        })
        .collect();
    Tensor::new(vec![n, 1, 28, 28], data).expect("shape")
}

fn check(name: &str, n: usize) {
    let mut model = zoo::architecture(name).expect("zoo");
    zoo::init_weights(&mut model, 3);
    // The OTs of one query of `n` images are made at setup.
    let mut backend = HybridBackend::new().with_pool(n, 1);
    let setup = backend.setup(&model).expect("setup");
    // The ring of the RLWE encryption behind the linear layers, the one fact hybrid reports.
    assert_eq!(setup.facts.ring_degree, Some(8192), "{:?}", setup.notes);
    let x = images(n, name.len());
    let want = engine::forward(&model, &x).expect("plain");
    let (got, stats) = backend.infer(&x).expect("infer");
    assert_eq!(got.shape(), want.shape());
    let scale = want
        .data()
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1.0);
    let err = got
        .data()
        .iter()
        .zip(want.data())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // Fixed point with 16 fractional bits: a few ulps per layer, amplified by the weights.
    assert!(
        err < 2e-3 * scale,
        "{name}: max error {err} (scale {scale})"
    );
    for (i, (g, w)) in got.argmax_rows().iter().zip(want.argmax_rows()).enumerate() {
        if *g != w {
            let row = want.item(i);
            assert!(
                (row[*g] - row[w]).abs() <= 2.0 * err,
                "{name}: image {i} disagrees"
            );
        }
    }
    // The first query found its OTs made ahead: their cost is reported apart.
    assert!(stats.bytes_sent > 0 && stats.rounds > 0 && stats.client_bytes == stats.bytes_sent);
    assert!(!stats.offline_on_demand && stats.offline_time.as_secs_f64() > 0.0);
    assert!(stats.offline_bytes > 0);
    // The second makes its own while it runs: same online messages, plus the offline ones.
    let (again, on_demand) = backend.infer(&x).expect("infer");
    let drift = again
        .data()
        .iter()
        .zip(got.data())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(drift < 2e-3 * scale, "{name}: second query off by {drift}");
    assert!(on_demand.offline_on_demand && on_demand.offline_bytes == 0);
    assert_eq!(
        on_demand.bytes_sent,
        stats.bytes_sent + stats.offline_bytes,
        "{name}"
    );
    eprintln!("{name}: {n} images, {stats:?}");
}

/// Two images of `name` under hybrid.
fn matches_plain(name: &str) {
    check(name, 2);
}

/// `every_zoo_model_under_hybrid_matches_plain::MODEL`.
mod every_zoo_model_under_hybrid_matches_plain {
    ppml_nn::per_zoo_model!(super::matches_plain);
}
