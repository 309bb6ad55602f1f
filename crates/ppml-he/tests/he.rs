//! End-to-end: encrypted inference agrees with the f32 reference engine, on the committed
//! weights and MNIST test images (a missing file fails the test).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::path::PathBuf;
use std::time::Instant;

use ppml_he::{HeBackend, Mode};
use ppml_nn::backend::{Backend, SetupFacts};
use ppml_nn::{engine, idx, zoo, Model, Tensor};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed trained model `name`; a missing file fails the test.
fn model(name: &str) -> Model {
    let path = root().join("models").join(format!("{name}.safetensors"));
    ppml_nn::io::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first `n` MNIST test images, preprocessed for `m`; a missing test set fails the test.
fn images(m: &Model, n: usize) -> Tensor {
    let dir = root().join("data/mnist");
    let ds = idx::load_mnist(&dir, idx::Split::Test)
        .unwrap_or_else(|e| panic!("MNIST test set in {}: {e}", dir.display()));
    let mut data = Vec::with_capacity(n * 784);
    (0..n).for_each(|i| m.preprocess_into(ds.image(i), &mut data));
    Tensor::new(vec![n, 1, 28, 28], data).expect("tensor")
}

/// Runs `backend` on `x` and checks logits against the plain engine: max error below
/// `tol * (1 + max |logit|)` and the same argmax wherever the plain margin exceeds the error.
/// Returns what the setup chose.
fn check(backend: &mut HeBackend, m: &Model, x: &Tensor, tol: f64) -> SetupFacts {
    let t = Instant::now();
    let setup = backend.setup(m).expect("setup");
    eprintln!("setup {:.2}s {:?}", t.elapsed().as_secs_f64(), setup.notes);
    let t = Instant::now();
    let (got, stats) = backend.infer(x).expect("infer");
    eprintln!(
        "{}: {} images in {:.2}s, {} bytes, {} rounds",
        m.name,
        x.batch(),
        t.elapsed().as_secs_f64(),
        stats.bytes_sent,
        stats.rounds
    );
    let want = engine::forward(m, x).expect("forward");
    assert_eq!(got.shape(), want.shape());
    let scale = 1.0
        + want
            .data()
            .iter()
            .fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
    let err = got
        .data()
        .iter()
        .zip(want.data())
        .fold(0.0f64, |a, (&g, &w)| {
            a.max((f64::from(g) - f64::from(w)).abs())
        });
    eprintln!(
        "{}: max |logit error| {err:.3e} (max |logit| {:.2})",
        m.name,
        scale - 1.0
    );
    assert!(
        err <= tol * scale,
        "logit error {err} exceeds {tol} * {scale}"
    );
    let classes = want.shape()[1];
    for (g, w) in got.data().chunks(classes).zip(want.data().chunks(classes)) {
        let mut sorted: Vec<f32> = w.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if f64::from(sorted[0] - sorted[1]) > 2.0 * err {
            assert_eq!(ppml_nn::tensor::argmax(g), ppml_nn::tensor::argmax(w));
        }
    }
    setup.facts
}

#[test]
fn cnn_throughput_matches_plain() {
    let m = model("cnn");
    let x = images(&m, 64);
    check(&mut HeBackend::throughput(), &m, &x, 1e-3);
}

#[test]
fn cnn_throughput_complex_packing_matches_plain() {
    // More images than slots: the second half rides in the imaginary parts.
    let m = model("cnn");
    let x = images(&m, 4096 + 40);
    let mut he = HeBackend::throughput();
    check(&mut he, &m, &x, 1e-3);
    assert_eq!(he.slots(), Some(8192));
}

#[test]
fn cnn_latency_matches_plain() {
    let m = model("cnn");
    let x = images(&m, 3);
    check(&mut HeBackend::latency(), &m, &x, 1e-3);
}

#[test]
fn auto_picks_latency_for_one_image() {
    let m = model("cnn");
    let mut he = HeBackend::auto();
    assert_eq!(he.mode(), Mode::Auto);
    let facts = check(&mut he, &m, &images(&m, 1), 1e-3);
    // Both modes set up, each with its own input ciphertexts, on one ring.
    assert_eq!(facts.mode.as_deref(), Some("auto"), "{facts:?}");
    // Complex packing holds two images in each of the N/2 slots.
    assert_eq!(facts.ring_degree, he.slots());
    assert!(facts.latency_input_ciphertexts.is_some_and(|n| n >= 1));
    assert!(facts.throughput_input_ciphertexts.is_some_and(|n| n >= 1));
}

#[test]
fn relu_models_are_refused() {
    let m = zoo::architecture("mlp").expect("zoo");
    let err = HeBackend::throughput().setup(&m).expect_err("relu model");
    assert!(err.to_string().contains("not polynomial"), "{err}");
}

#[test]
fn infer_before_setup_fails() {
    let m = zoo::architecture("cnn").expect("zoo");
    let err = HeBackend::throughput()
        .infer(&images(&m, 1))
        .expect_err("no setup");
    assert!(err.to_string().contains("before setup"), "{err}");
}

#[test]
fn mlp_sq_throughput_matches_plain() {
    let mut m = model("mlp-sq");
    // x^2 networks grow fast: the first layer halved keeps the logits small.
    if let ppml_nn::Layer::Linear(l) = &mut m.layers[1] {
        l.weight.iter_mut().for_each(|w| *w *= 0.5);
    }
    let x = images(&m, 16);
    check(&mut HeBackend::throughput(), &m, &x, 1e-3);
}

#[test]
fn lenet_sq_throughput_plan_holds_at_most_the_memory_budget() {
    // Setup refuses throughput mode when the planned peak of ciphertexts held exceeds the
    // budget; the note states both figures, which must agree with that.
    let mut m = zoo::architecture("lenet-sq").expect("zoo");
    zoo::init_weights(&mut m, 5);
    let setup = HeBackend::throughput()
        .setup(&m)
        .expect("lenet-sq throughput");
    let note = setup
        .notes
        .iter()
        .find(|n| n.starts_with("throughput mode:"))
        .unwrap_or_else(|| panic!("no throughput note in {:?}", setup.notes));
    let gib = |after: &str| -> f64 {
        let rest = &note[note.find(after).expect(after) + after.len()..];
        rest.split(' ')
            .next()
            .expect("figure")
            .parse()
            .expect("number")
    };
    let (peak, budget) = (gib("at most "), gib("(budget "));
    assert!(peak > 0.0 && peak <= budget, "{note}");
    assert_eq!(setup.facts.ring_degree, Some(16384), "{:?}", setup.notes);
    assert_eq!(setup.facts.mode.as_deref(), Some("throughput"));
    assert_eq!(setup.facts.latency_input_ciphertexts, None);
}

#[test]
fn mlp_sq_latency_matches_plain() {
    let mut m = model("mlp-sq");
    if let ppml_nn::Layer::Linear(l) = &mut m.layers[1] {
        l.weight.iter_mut().for_each(|w| *w *= 0.5);
    }
    check(&mut HeBackend::latency(), &m, &images(&m, 1), 1e-3);
}

#[test]
fn lenet_sq_latency_matches_plain() {
    // Its first convolution's 11,520 outputs exceed the 8192 slots: the grid layout spreads
    // them over four ciphertexts (one per pooling phase).
    let m = model("lenet-sq");
    let facts = check(&mut HeBackend::latency(), &m, &images(&m, 2), 1e-3);
    assert_eq!(facts.latency_input_ciphertexts, Some(4), "{facts:?}");
    assert_eq!(facts.mode.as_deref(), Some("latency"));
    // Latency mode's calls never use throughput mode's ciphertexts.
    assert_eq!(facts.throughput_input_ciphertexts, None);
}
