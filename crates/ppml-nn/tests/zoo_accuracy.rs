//! The committed zoo weights reach their target accuracy on the full MNIST test set, one test
//! per model.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use ppml_nn::idx::{load_mnist, Split};
use ppml_nn::{engine, eval, io, Model};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn accuracy(model: &Model) -> f64 {
    let test = load_mnist(&repo().join("data/mnist"), Split::Test).expect("MNIST test set");
    let mut correct = 0;
    for start in (0..test.len()).step_by(500) {
        let end = (start + 500).min(test.len());
        let x = eval::batch_tensor(model, &test, start, end);
        let pred = engine::forward(model, &x).expect("forward").argmax_rows();
        correct += pred
            .iter()
            .zip(&test.labels[start..end])
            .filter(|(p, l)| **p == usize::from(**l))
            .count();
    }
    assert_eq!(test.len(), 10_000);
    correct as f64 / test.len() as f64
}

/// The accuracy of a zoo model's committed weights, computed once per test binary (the
/// HE-friendly variants' tests compare with their ReLU versions').
fn zoo_accuracy(name: &'static str) -> f64 {
    static DONE: Mutex<BTreeMap<&str, Arc<OnceLock<f64>>>> = Mutex::new(BTreeMap::new());
    let once = DONE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name)
        .or_default()
        .clone();
    *once.get_or_init(|| {
        let model = io::resolve(name, &repo().join("models")).expect("committed weights");
        let acc = accuracy(&model);
        println!("{name}: {:.2}%", acc * 100.0);
        acc
    })
}

/// Checks that `name` reaches `target` on the full test set.
fn reaches(name: &'static str, target: f64) {
    let a = zoo_accuracy(name);
    assert!(a >= target, "{name}: {a} < {target}");
}

/// Checks that the HE-friendly variant `sq` stays within one point of its ReLU version.
fn within_a_point_of(sq: &'static str, relu: &'static str) {
    let (a, b) = (zoo_accuracy(sq), zoo_accuracy(relu));
    assert!(a >= b - 0.01, "{sq}: {a} vs {relu} {b}");
}

#[test]
fn committed_mlp_reaches_97_5_percent() {
    reaches("mlp", 0.975);
}

#[test]
fn committed_cnn_reaches_98_percent() {
    reaches("cnn", 0.980);
}

#[test]
fn committed_lenet_reaches_99_percent() {
    reaches("lenet", 0.990);
}

#[test]
fn committed_minionn_reaches_98_8_percent() {
    reaches("minionn", 0.988);
}

#[test]
fn committed_chameleon_reaches_98_5_percent() {
    reaches("chameleon", 0.985);
}

#[test]
fn committed_mlp_sq_is_within_one_point_of_mlp() {
    within_a_point_of("mlp-sq", "mlp");
}

#[test]
fn committed_lenet_sq_is_within_one_point_of_lenet() {
    within_a_point_of("lenet-sq", "lenet");
}
