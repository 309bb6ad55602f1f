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
    let mut backend = HybridBackend::new();
    backend.setup(&model).expect("setup");
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
    let split = backend.last_split().expect("split");
    assert!(stats.bytes_sent > 0 && stats.rounds > 0);
    assert_eq!(stats.bytes_sent, split.offline.bytes + split.online.bytes);
    eprintln!("{name}: {n} images, {split:?}");
}

#[test]
fn every_zoo_model_under_hybrid_matches_plain() {
    for name in [
        "mlp",
        "cnn",
        "lenet",
        "minionn",
        "chameleon",
        "mlp-sq",
        "lenet-sq",
    ] {
        check(name, 2);
    }
}
