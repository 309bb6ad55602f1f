//! The committed ONNX models (`tests/data/`, written by `scripts/make-onnx-testdata.py`) imported
//! and run: plain inference against the ONNX reference evaluator's logits and against tract's
//! optimised model, then every secure backend against plain.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]
#![allow(clippy::panic, reason = "test helpers fail the test on error")]

use std::path::{Path, PathBuf};

use ppml_bench::registry::{BackendKind, BackendOptions};
use ppml_nn::{engine, idx, Tensor};
use ppml_onnx::{import_file, ImportOptions, Imported};
use tract_onnx::prelude::{tvec, DatumExt, Framework, InferenceModelExt, IntoRunnable};

/// The repository root.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The models the script writes that the importer must accept.
const VALID: [&str; 6] = [
    "cnn_relu",
    "mlp_matmul",
    "bn_dropout",
    "he_square",
    "gap_pads",
    "he_pool",
];
/// The tolerance of the issue: imported plain inference against the ONNX reference.
const TOLERANCE: f32 = 1e-4;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn import(name: &str) -> Imported {
    import_file(&data(&format!("{name}.onnx")), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("importing {name}: {e}"))
}

/// The first `n` MNIST test images, preprocessed for `imported`'s model, as `[n, 1, 28, 28]`.
fn images(imported: &Imported, n: usize) -> Tensor {
    let test = idx::load_mnist(&Path::new(REPO).join("data/mnist"), idx::Split::Test)
        .expect("MNIST test set");
    let mut x = Vec::new();
    for i in 0..n {
        imported.model.preprocess_into(test.image(i), &mut x);
    }
    Tensor::new(vec![n, 1, 28, 28], x).expect("batch")
}

/// The logits the ONNX reference evaluator computed in the script.
fn reference(name: &str) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(data(&format!("{name}.ref.json"))).expect("reference");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect()
}

/// tract's own optimised model on the same images, one at a time.
fn tract_logits(name: &str, x: &Tensor) -> Vec<Vec<f32>> {
    let plan = tract_onnx::onnx()
        .model_for_path(data(&format!("{name}.onnx")))
        .expect("tract loads the model")
        .with_input_fact(0, f32::fact([1usize, 1, 28, 28]).into())
        .expect("input fact")
        .into_optimized()
        .expect("tract optimises")
        .into_runnable()
        .expect("tract plan");
    (0..x.batch())
        .map(|i| {
            let img = tract_onnx::prelude::tract_ndarray::Array4::from_shape_vec(
                (1, 1, 28, 28),
                x.item(i).to_vec(),
            )
            .expect("image");
            let t = tract_onnx::prelude::Tensor::from(img);
            let out = plan.run(tvec!(t.into())).expect("tract runs");
            out[0]
                .to_plain_array_view::<f32>()
                .expect("f32 logits")
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.batch(), b.len());
    (0..a.batch())
        .flat_map(|i| {
            assert_eq!(a.item(i).len(), b[i].len());
            a.item(i).iter().zip(&b[i]).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn imported_models_match_the_onnx_reference_and_tract() {
    for name in VALID {
        let imported = import(name);
        let want = reference(name);
        let x = images(&imported, want.len());
        let got = engine::forward(&imported.model, &x).expect("plain inference");
        let vs_ref = max_abs_diff(&got, &want);
        let vs_tract = max_abs_diff(&got, &tract_logits(name, &x));
        eprintln!(
            "{name}: {} layers, max |plain - reference| = {vs_ref:.2e}, \
             max |plain - tract| = {vs_tract:.2e}",
            imported.model.layers.len()
        );
        assert!(
            vs_ref <= TOLERANCE,
            "{name}: {vs_ref} against the reference"
        );
        assert!(vs_tract <= TOLERANCE, "{name}: {vs_tract} against tract");
    }
}

#[test]
fn folds_and_removals_leave_the_expected_layers() {
    let ops = |name: &str| -> Vec<&'static str> {
        import(name)
            .model
            .layers
            .iter()
            .map(|l| l.op_name())
            .collect()
    };
    assert_eq!(
        ops("cnn_relu"),
        [
            "conv2d",
            "relu",
            "max_pool2d",
            "conv2d",
            "relu",
            "flatten",
            "linear",
            "relu",
            "linear"
        ]
    );
    // Reshape to [-1, 784] is a flatten; each MatMul + Add is one linear layer.
    assert_eq!(
        ops("mlp_matmul"),
        ["flatten", "linear", "relu", "linear", "relu", "linear"]
    );
    // Both batch norms are folded; Dropout and Identity are gone.
    assert_eq!(
        ops("bn_dropout"),
        [
            "conv2d",
            "relu",
            "avg_pool2d",
            "flatten",
            "linear",
            "relu",
            "linear"
        ]
    );
    assert_eq!(
        ops("he_square"),
        ["conv2d", "square", "flatten", "linear", "square", "linear"]
    );
    assert_eq!(
        ops("gap_pads"),
        [
            "conv2d",
            "relu",
            "conv2d",
            "relu",
            "avg_pool2d",
            "flatten",
            "linear"
        ]
    );
    // A padded convolution and average pooling, all polynomial: he runs it too.
    assert_eq!(
        ops("he_pool"),
        ["conv2d", "square", "avg_pool2d", "flatten", "linear"]
    );
    let bn = import("bn_dropout");
    assert_eq!(bn.origins[0], "/conv1/Conv");
    assert!(
        bn.notes
            .iter()
            .any(|n| n.contains("/bn1/BatchNormalization")),
        "{:?}",
        bn.notes
    );
    assert!(
        bn.notes.iter().any(|n| n.contains("Dropout")),
        "{:?}",
        bn.notes
    );
}

/// Indices of the images whose top two plain logits are at least `margin` apart: those on
/// which a secure backend's small numeric error cannot honestly flip the prediction.
fn clear_margins(logits: &Tensor, margin: f32) -> Vec<usize> {
    (0..logits.batch())
        .filter(|&i| {
            let mut row = logits.item(i).to_vec();
            row.sort_by(|a, b| b.total_cmp(a));
            row[0] - row[1] >= margin
        })
        .collect()
}

fn run_backend(kind: BackendKind, imported: &Imported, x: &Tensor) -> Tensor {
    let opts = BackendOptions {
        allow_simulated: true,
        ..BackendOptions::default()
    };
    let mut backend = kind.build(&opts).expect("backend");
    backend
        .setup(&imported.model)
        .unwrap_or_else(|e| panic!("{kind} setup for {}: {e}", imported.model.name));
    backend.infer(x).expect("secure inference").0
}

/// The imported model `name` under `kind` predicts as plain inference on every image whose
/// top two plain logits are clearly apart.
fn agrees_with_plain(name: &str, kind: BackendKind) {
    let imported = import(name);
    let x = images(&imported, 16);
    let plain = engine::forward(&imported.model, &x).expect("plain");
    let clear = clear_margins(&plain, 0.01);
    assert!(
        clear.len() >= 12,
        "{name}: only {} clear images",
        clear.len()
    );
    let got = run_backend(kind, &imported, &x);
    let diff = (0..x.batch())
        .map(|i| {
            let d: Vec<f32> = got.item(i).to_vec();
            max_abs_diff(&plain.slice_batch(i, i + 1), &[d])
        })
        .fold(0.0, f32::max);
    let (p, g) = (plain.argmax_rows(), got.argmax_rows());
    let agree = (0..x.batch()).filter(|&i| p[i] == g[i]).count();
    eprintln!(
        "{name} under {kind}: {agree}/{} predictions agree with plain, max logit difference \
         {diff:.2e}",
        x.batch()
    );
    for &i in &clear {
        assert_eq!(p[i], g[i], "{name} under {kind}, image {i}");
    }
}

/// One test per imported model and secure backend, `MODEL::BACKEND`, and a test that the
/// models are those of [`VALID`] and that he runs exactly the polynomial ones.
macro_rules! per_model_and_backend {
    ($($model:ident: $($backend:ident = $kind:ident),+;)+) => {
        $(
            mod $model {
                $(
                    #[test]
                    fn $backend() {
                        super::super::agrees_with_plain(
                            stringify!($model),
                            super::super::BackendKind::$kind,
                        );
                    }
                )+
            }
        )+

        #[test]
        fn every_valid_model_is_tested_and_he_runs_exactly_the_polynomial_ones() {
            let tested = [$(stringify!($model)),+];
            assert_eq!(tested, super::VALID);
            for (name, backends) in [$((stringify!($model), [$(stringify!($backend)),+].as_slice())),+] {
                let polynomial = super::import(name).model.is_polynomial();
                assert_eq!(backends.contains(&"he"), polynomial, "{name}");
            }
        }
    };
}

mod secure_backends_agree_with_plain_on {
    per_model_and_backend! {
        cnn_relu: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid;
        mlp_matmul: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid;
        bn_dropout: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid;
        he_square: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid, he = He;
        gap_pads: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid;
        he_pool: mpc2 = Mpc2, mpc3 = Mpc3, tee = Tee, hybrid = Hybrid, he = He;
    }
}

#[test]
fn he_refuses_models_with_relu_and_says_which_node() {
    let imported = import("cnn_relu");
    let support = imported.backend_support();
    let he = support
        .iter()
        .find(|(b, _)| *b == "he")
        .and_then(|(_, why)| why.clone())
        .expect("he cannot run cnn_relu");
    assert!(he.contains("/relu1/Relu"), "{he}");
    assert!(support
        .iter()
        .filter(|(b, _)| *b != "he")
        .all(|(_, why)| why.is_none()));
    let reason = BackendKind::He
        .unsupported(&imported.model)
        .expect("refused");
    assert!(reason.contains("ReLU"), "{reason}");
    let mut he_backend = BackendKind::He
        .build(&BackendOptions::default())
        .expect("he");
    let err = he_backend
        .setup(&imported.model)
        .expect_err("he setup refuses ReLU")
        .to_string();
    assert!(err.contains("relu"), "{err}");
    let square = import("he_square");
    assert!(square
        .backend_support()
        .iter()
        .all(|(_, why)| why.is_none()));
}
