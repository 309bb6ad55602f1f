//! `ppml eval --backend tee` in miniature: the shared evaluation loop over the MNIST test set,
//! with the TEE backend's predictions compared with plain inference by the loop itself. The
//! committed weights and test set are required: a missing file fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::sync::OnceLock;

use ppml_nn::idx::{default_data_dir, load_mnist, Dataset, Split};
use ppml_nn::{eval, io, zoo};
use ppml_tee::{EnclaveOptions, TeeBackend};

/// The MNIST test set, loaded once per test binary.
fn test_set() -> &'static Dataset {
    static TEST: OnceLock<Dataset> = OnceLock::new();
    TEST.get_or_init(|| {
        let dir = default_data_dir();
        load_mnist(&dir, Split::Test)
            .unwrap_or_else(|e| panic!("the MNIST test set in {}: {e}", dir.display()))
    })
}

/// The first `images` test images through `name` (its committed weights) under the TEE
/// backend: every prediction agrees with plain inference.
fn agrees_with_plain(name: &str, images: usize) {
    let m = io::resolve(name, &io::default_models_dir()).expect("committed weights");
    let mut data = test_set().clone();
    data.truncate(images);
    let mut backend = TeeBackend::in_process(EnclaveOptions::default());
    let r = eval::evaluate(&mut backend, &m, &data, 100, &mut |_, _| {}).unwrap();
    assert_eq!(r.n, images, "{name}");
    assert_eq!(r.agreement, Some(1.0), "{name}");
    assert!(r.notes.iter().any(|n| n == "tee_mode=simulated"), "{name}");
    assert!(r.notes.iter().any(|n| n == "attested=true"), "{name}");
    assert_eq!(
        r.facts.isolation.as_deref(),
        Some("simulated (no hardware isolation)"),
        "{name}"
    );
    eprintln!(
        "{name}: n={} accuracy={:.4} agreement={:?} throughput={:.0} img/s setup={:.1} ms",
        r.n,
        r.accuracy,
        r.agreement,
        r.throughput_img_per_s,
        r.setup_seconds * 1e3
    );
}

/// The first 500 test images through `name`.
fn agrees_on_500(name: &str) {
    agrees_with_plain(name, 500);
}

/// One test per zoo model:
/// `agrees_with_plain_on_the_first_500_test_images::MODEL`.
mod agrees_with_plain_on_the_first_500_test_images {
    ppml_nn::per_zoo_model!(super::agrees_on_500);
}

#[test]
#[ignore = "the full test set takes ~30 s on 2 cores; run with --ignored"]
fn every_zoo_model_agrees_with_plain_on_the_full_test_set() {
    for (name, _) in zoo::ZOO {
        agrees_with_plain(name, test_set().len());
    }
}
