//! Every zoo model under both backends, against the f32 reference engine.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use ppml_mpc::{Comparison, MpcBackend, MpcConfig, MpcError, Protocol};
use ppml_nn::backend::Backend;
use ppml_nn::testing::{assert_agrees_with_plain, synthetic_digits};
use ppml_nn::{engine, zoo, Tensor};

fn check(backend: &mut dyn Backend, name: &str, n: usize) {
    let mut model = zoo::architecture(name).expect("zoo");
    zoo::init_weights(&mut model, 3);
    backend.setup(&model).expect("setup");
    let x = synthetic_digits(n, name.len());
    let want = engine::forward(&model, &x).expect("plain");
    let (got, stats) = backend.infer(&x).expect("infer");
    assert_agrees_with_plain(&format!("{} {name}", backend.name()), &got, &want);
    assert!(stats.bytes_sent > 0 && stats.rounds > 0);
}

/// A backend of `protocol` in process, with its comparison.
fn backend(protocol: Protocol, comparison: Comparison) -> MpcBackend {
    let config = MpcConfig {
        comparison,
        ..MpcConfig::default()
    };
    MpcBackend::in_process(protocol, config).expect("config")
}

fn mpc3_matches_plain(name: &str) {
    check(
        &mut backend(Protocol::Mpc3, Comparison::BitDecomposition),
        name,
        3,
    );
}

fn mpc2_matches_plain(name: &str) {
    check(
        &mut backend(Protocol::Mpc2, Comparison::BitDecomposition),
        name,
        3,
    );
}

fn mpc2_with_fss_matches_plain(name: &str) {
    check(&mut backend(Protocol::Mpc2, Comparison::Fss), name, 2);
}

fn mpc3_with_fss_matches_plain(name: &str) {
    check(&mut backend(Protocol::Mpc3, Comparison::Fss), name, 2);
}

/// `every_zoo_model_under_mpc3_matches_plain::MODEL`, and so on for each backend.
mod every_zoo_model_under_mpc3_matches_plain {
    ppml_nn::per_zoo_model!(super::mpc3_matches_plain);
}

mod every_zoo_model_under_mpc2_matches_plain {
    ppml_nn::per_zoo_model!(super::mpc2_matches_plain);
}

mod every_zoo_model_under_mpc2_with_fss_comparison_matches_plain {
    ppml_nn::per_zoo_model!(super::mpc2_with_fss_matches_plain);
}

mod every_zoo_model_under_mpc3_with_fss_comparison_matches_plain {
    ppml_nn::per_zoo_model!(super::mpc3_with_fss_matches_plain);
}

#[test]
fn repeated_queries_in_one_mpc3_session_stay_correct() {
    // The PRG streams advance across the calls of one session: every call must still agree
    // with plain (that no mask repeats is `prg::tests`' and the session keys' business).
    let mut b = backend(Protocol::Mpc3, Comparison::BitDecomposition);
    for _ in 0..3 {
        check(&mut b, "chameleon", 2);
    }
}

#[test]
fn repeated_queries_in_one_mpc2_session_stay_correct() {
    let mut b = backend(Protocol::Mpc2, Comparison::BitDecomposition);
    for _ in 0..3 {
        check(&mut b, "minionn", 2);
    }
}

/// Queries of `protocol` with `comparison` whose material (a pool of two) is made ahead:
/// they match plain and report its cost.
fn material_made_ahead(protocol: Protocol, comparison: Comparison) {
    let config = MpcConfig {
        comparison,
        pool_depth: 2,
        ..MpcConfig::default()
    };
    let mut b = MpcBackend::in_process(protocol, config)
        .expect("config")
        .with_pool_batch(1);
    let mut model = zoo::architecture("minionn").expect("zoo");
    zoo::init_weights(&mut model, 5);
    let setup = b.setup(&model).expect("setup");
    assert!(
        setup.notes.iter().any(|n| n.starts_with("offline phase")),
        "{setup:?}"
    );
    assert_eq!(setup.facts.comparison.as_deref(), Some(comparison.name()));
    assert_eq!(
        setup.facts.fractional_bits,
        Some(MpcConfig::default().frac_bits)
    );
    // Five one-image queries: the pool of two is refilled in the background; a batch of two
    // makes its material online.
    for (k, n) in [1, 1, 1, 2, 1, 1].into_iter().enumerate() {
        let x = synthetic_digits(n, k);
        let want = engine::forward(&model, &x).expect("plain");
        let (got, stats) = b.infer(&x).expect("infer");
        assert_eq!(
            got.argmax_rows(),
            want.argmax_rows(),
            "{protocol:?} {comparison:?}"
        );
        if n == 1 {
            assert!(
                stats.offline_bytes > 0,
                "{protocol:?} {comparison:?} {stats:?}"
            );
        } else {
            assert_eq!(stats.offline_bytes, 0, "{stats:?}");
        }
    }
}

#[test]
fn mpc2_queries_with_material_made_ahead_match_plain_and_report_its_cost() {
    material_made_ahead(Protocol::Mpc2, Comparison::BitDecomposition);
}

#[test]
fn mpc3_queries_with_material_made_ahead_match_plain_and_report_its_cost() {
    material_made_ahead(Protocol::Mpc3, Comparison::BitDecomposition);
}

#[test]
fn mpc2_fss_queries_with_material_made_ahead_match_plain_and_report_its_cost() {
    material_made_ahead(Protocol::Mpc2, Comparison::Fss);
}

#[test]
fn mpc3_fss_queries_with_material_made_ahead_match_plain_and_report_its_cost() {
    material_made_ahead(Protocol::Mpc3, Comparison::Fss);
}

#[test]
fn queries_past_the_announced_budget_make_their_material_online() {
    let config = MpcConfig {
        comparison: Comparison::Fss,
        pool_depth: 4,
        ..MpcConfig::default()
    };
    let mut b = MpcBackend::in_process(Protocol::Mpc2, config)
        .expect("config")
        .with_pool_batch(1)
        .with_pool_queries(2);
    let mut model = zoo::architecture("minionn").expect("zoo");
    zoo::init_weights(&mut model, 6);
    b.setup(&model).expect("setup");
    // Two queries use material made ahead; the third, past the budget, makes its own at once
    // (no wait for material that will never come) and still matches plain.
    for k in 0..3 {
        let x = synthetic_digits(1, k);
        let want = engine::forward(&model, &x).expect("plain");
        let (got, stats) = b.infer(&x).expect("infer");
        assert_eq!(got.argmax_rows(), want.argmax_rows());
        assert_eq!(stats.offline_bytes > 0, k < 2, "query {k}: {stats:?}");
        assert!(!stats.offline_on_demand, "query {k}: {stats:?}");
    }
}

#[test]
fn misuse_is_reported_not_panicked() {
    let mut b = MpcBackend::in_process(Protocol::Mpc3, MpcConfig::default()).expect("config");
    assert!(b.infer(&synthetic_digits(1, 0)).is_err());
    let mut model = zoo::architecture("mlp").expect("zoo");
    zoo::init_weights(&mut model, 1);
    b.setup(&model).expect("setup");
    let wrong = Tensor::zeros(vec![1, 1, 27, 28]);
    let e = b.infer(&wrong).expect_err("shape");
    assert!(e
        .downcast_ref::<MpcError>()
        .is_some_and(|e| matches!(e, MpcError::InputShape { .. })));
    assert!(MpcBackend::in_process(
        Protocol::Mpc2,
        MpcConfig {
            frac_bits: 40,
            ..MpcConfig::default()
        }
    )
    .is_err());
}

/// `Flatten, Linear(identity), Relu, Linear(identity)` on 1 x 1 x `n` inputs.
fn relu_probe(n: usize, pool: bool) -> ppml_nn::Model {
    use ppml_nn::model::{Layer, Linear, Normalization, Pool2d};
    let eye: Vec<f32> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let lin = || {
        Layer::Linear(Linear {
            in_features: n,
            out_features: n,
            weight: eye.clone(),
            bias: vec![0.0; n],
        })
    };
    let mut layers = vec![Layer::Flatten, lin(), Layer::Relu];
    if pool {
        // Back to CHW is impossible after Flatten; probe pooling on the raw input instead.
        layers = vec![
            Layer::MaxPool2d(Pool2d {
                kernel: 2,
                stride: 2,
            }),
            Layer::Flatten,
            Layer::Linear(Linear {
                in_features: n / 4,
                out_features: n / 4,
                weight: (0..n * n / 16)
                    .map(|i| if i % (n / 4 + 1) == 0 { 1.0 } else { 0.0 })
                    .collect(),
                bias: vec![0.0; n / 4],
            }),
        ];
    } else {
        layers.push(lin());
    }
    ppml_nn::Model {
        name: "probe".into(),
        input: if pool { [1, 2, n / 2] } else { [1, 1, n] },
        normalization: Normalization::default(),
        layers,
    }
}

/// ReLU and max-pooling of values at the edges of the fixed-point range and around zero, under
/// `protocol`.
fn relu_and_maxpool_edge_values(protocol: Protocol) {
    let ulp = 1.0 / 65536.0;
    let vals = [
        0.0,
        ulp,
        -ulp,
        2.0 * ulp,
        -2.0 * ulp,
        1.0,
        -1.0,
        30000.0,
        -30000.0,
        0.5,
        -0.5,
        123.456,
    ];
    let n = vals.len();
    let mut b = backend(protocol, Comparison::BitDecomposition);
    let m = relu_probe(n, false);
    b.setup(&m).expect("setup");
    let x = Tensor::new(vec![1, 1, 1, n], vals.to_vec()).expect("shape");
    let (y, _) = b.infer(&x).expect("infer");
    for (v, got) in vals.iter().zip(y.data()) {
        // Two truncations (one per identity layer): at most a couple of ulps.
        assert!(
            (got - v.max(0.0)).abs() <= 3.0 * ulp,
            "{protocol:?} relu({v}) = {got}"
        );
    }
    // Max-pooling of 2x2 windows over a 2 x 6 image: windows (v0 v1 v6 v7), ...
    let m = relu_probe(n, true);
    b.setup(&m).expect("setup");
    let x = Tensor::new(vec![1, 1, 2, n / 2], vals.to_vec()).expect("shape");
    let (y, _) = b.infer(&x).expect("infer");
    let want = engine::forward(&m, &x).expect("plain");
    for (got, w) in y.data().iter().zip(want.data()) {
        assert!(
            (got - w).abs() <= 2.0 * ulp,
            "{protocol:?} max = {got}, want {w}"
        );
    }
}

#[test]
fn relu_and_maxpool_edge_values_through_mpc3() {
    relu_and_maxpool_edge_values(Protocol::Mpc3);
}

#[test]
fn relu_and_maxpool_edge_values_through_mpc2() {
    relu_and_maxpool_edge_values(Protocol::Mpc2);
}
