//! `ppml eval --backend tee` in miniature: the shared evaluation loop over the MNIST test set,
//! with the TEE backend's predictions compared with plain inference by the loop itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::path::Path;

use ppml_nn::idx::{default_data_dir, load_mnist, Split};
use ppml_nn::{eval, io, zoo, Model};
use ppml_tee::{EnclaveOptions, TeeBackend};

/// The committed trained weights if present, else PyTorch-style random weights.
fn model(name: &str) -> Model {
    let path = io::default_models_dir().join(format!("{name}.safetensors"));
    if path.is_file() {
        return io::load(&path).unwrap();
    }
    let mut m = zoo::architecture(name).unwrap();
    zoo::init_weights(&mut m, 11);
    m
}

fn run(images: usize) {
    let dir = default_data_dir();
    if !Path::new(&dir).join("t10k-images-idx3-ubyte.gz").is_file() {
        eprintln!("MNIST test set not found in {}: skipped", dir.display());
        return;
    }
    let mut data = load_mnist(&dir, Split::Test).unwrap();
    data.truncate(images);
    for (name, _) in zoo::ZOO {
        let m = model(name);
        let mut backend = TeeBackend::in_process(EnclaveOptions::default());
        let r = eval::evaluate(&mut backend, &m, &data, 100, &mut |_, _| {}).unwrap();
        assert_eq!(r.agreement, Some(1.0), "{name}");
        assert!(r.notes.iter().any(|n| n == "tee_mode=simulated"), "{name}");
        assert!(r.notes.iter().any(|n| n == "attested=true"), "{name}");
        eprintln!(
            "{name}: n={} accuracy={:.4} agreement={:?} throughput={:.0} img/s setup={:.1} ms",
            r.n,
            r.accuracy,
            r.agreement,
            r.throughput_img_per_s,
            r.setup_seconds * 1e3
        );
    }
}

#[test]
fn every_zoo_model_agrees_with_plain_on_the_first_500_test_images() {
    run(500);
}

#[test]
#[ignore = "the full test set takes ~30 s on 2 cores; run with --ignored"]
fn every_zoo_model_agrees_with_plain_on_the_full_test_set() {
    run(10_000);
}
