//! Every zoo model under the hybrid backend, against the f32 reference engine.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use ppml_hybrid::HybridBackend;
use ppml_nn::backend::Backend;
use ppml_nn::testing::{assert_agrees_with_plain, max_abs_diff, synthetic_digits};
use ppml_nn::{engine, zoo};

fn check(name: &str, n: usize) {
    let mut model = zoo::architecture(name).expect("zoo");
    zoo::init_weights(&mut model, 3);
    // The OTs of one query of `n` images are made at setup.
    let mut backend = HybridBackend::new().with_pool(n, 1);
    let setup = backend.setup(&model).expect("setup");
    // The ring of the RLWE encryption behind the linear layers, the one fact hybrid reports.
    assert_eq!(setup.facts.ring_degree, Some(8192), "{:?}", setup.notes);
    let x = synthetic_digits(n, name.len());
    let want = engine::forward(&model, &x).expect("plain");
    let (got, stats) = backend.infer(&x).expect("infer");
    let (_, scale) = assert_agrees_with_plain(name, &got, &want);
    // The first query found its OTs made ahead: their cost is reported apart.
    assert!(stats.bytes_sent > 0 && stats.rounds > 0 && stats.client_bytes == stats.bytes_sent);
    assert!(!stats.offline_on_demand && stats.offline_time.as_secs_f64() > 0.0);
    assert!(stats.offline_bytes > 0);
    // The second makes its own while it runs: same online messages, plus the offline ones.
    let (again, on_demand) = backend.infer(&x).expect("infer");
    let drift = max_abs_diff(&again, &got);
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
