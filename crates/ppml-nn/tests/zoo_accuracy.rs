//! The committed zoo weights reach their target accuracy on the full MNIST test set.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use std::path::Path;

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

fn zoo_accuracy(name: &str) -> f64 {
    let model = io::resolve(name, &repo().join("models")).expect("committed weights");
    let acc = accuracy(&model);
    println!("{name}: {:.2}%", acc * 100.0);
    acc
}

#[test]
fn every_committed_zoo_model_reaches_its_target_accuracy() {
    let targets = [
        ("mlp", 0.975),
        ("cnn", 0.980),
        ("lenet", 0.990),
        ("minionn", 0.988),
        ("chameleon", 0.985),
    ];
    let mut acc = std::collections::HashMap::new();
    for (name, target) in targets {
        let a = zoo_accuracy(name);
        assert!(a >= target, "{name}: {a} < {target}");
        acc.insert(name, a);
    }
    // The HE-friendly variants stay within one point of their ReLU versions.
    for (sq, relu) in [("mlp-sq", "mlp"), ("lenet-sq", "lenet")] {
        let a = zoo_accuracy(sq);
        assert!(a >= acc[relu] - 0.01, "{sq}: {a} vs {relu} {}", acc[relu]);
    }
}
