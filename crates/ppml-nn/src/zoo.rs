//! The model zoo: the architectures of the comparison ppml reproduces and the standard MNIST
//! benchmark networks of the secure-inference literature.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{Conv2d, Layer, Linear, Model, Normalization, Pool2d};

/// Every zoo model's name, with a one-line description.
pub const ZOO: &[(&str, &str)] = &[
    ("mlp", "SecureML network A: FC 784-128-128-10 with ReLU"),
    (
        "cnn",
        "CryptoNets/TenSEAL HE-friendly CNN: conv 4x7x7 s3, x^2, FC 256-64, x^2, FC 64-10",
    ),
    (
        "lenet",
        "LeNet-5 (network C): conv 20 5x5, max-pool, conv 50 5x5, max-pool, FC 800-500-10",
    ),
    (
        "minionn",
        "MiniONN network B: conv 16 5x5, max-pool, conv 16 5x5, max-pool, FC 256-100-10",
    ),
    (
        "chameleon",
        "Chameleon network D: conv 5 5x5 s2 p2, ReLU, FC 980-100-10",
    ),
    ("mlp-sq", "mlp with x^2 activations (HE-friendly)"),
    (
        "lenet-sq",
        "lenet with x^2 activations and average pooling (HE-friendly)",
    ),
];

/// The names of the zoo models, comma separated, for messages.
pub fn names() -> String {
    ZOO.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn conv(inc: usize, outc: usize, kernel: usize, stride: usize, padding: usize) -> Layer {
    Layer::Conv2d(Conv2d {
        in_channels: inc,
        out_channels: outc,
        kernel,
        stride,
        padding,
        weight: vec![0.0; outc * inc * kernel * kernel],
        bias: vec![0.0; outc],
    })
}

fn linear(inf: usize, outf: usize) -> Layer {
    Layer::Linear(Linear {
        in_features: inf,
        out_features: outf,
        weight: vec![0.0; outf * inf],
        bias: vec![0.0; outf],
    })
}

fn pool(max: bool) -> Layer {
    let p = Pool2d {
        kernel: 2,
        stride: 2,
    };
    if max {
        Layer::MaxPool2d(p)
    } else {
        Layer::AvgPool2d(p)
    }
}

/// The architecture of zoo model `name` with all weights zero, or `None` for an unknown name.
pub fn architecture(name: &str) -> Option<Model> {
    let act = |sq: bool| if sq { Layer::Square } else { Layer::Relu };
    let layers = match name {
        "mlp" | "mlp-sq" => {
            let sq = name == "mlp-sq";
            vec![
                Layer::Flatten,
                linear(784, 128),
                act(sq),
                linear(128, 128),
                act(sq),
                linear(128, 10),
            ]
        }
        "cnn" => vec![
            conv(1, 4, 7, 3, 0),
            Layer::Square,
            Layer::Flatten,
            linear(256, 64),
            Layer::Square,
            linear(64, 10),
        ],
        "lenet" | "lenet-sq" => {
            let sq = name == "lenet-sq";
            vec![
                conv(1, 20, 5, 1, 0),
                act(sq),
                pool(!sq),
                conv(20, 50, 5, 1, 0),
                act(sq),
                pool(!sq),
                Layer::Flatten,
                linear(800, 500),
                act(sq),
                linear(500, 10),
            ]
        }
        "minionn" => vec![
            conv(1, 16, 5, 1, 0),
            Layer::Relu,
            pool(true),
            conv(16, 16, 5, 1, 0),
            Layer::Relu,
            pool(true),
            Layer::Flatten,
            linear(256, 100),
            Layer::Relu,
            linear(100, 10),
        ],
        "chameleon" => vec![
            conv(1, 5, 5, 2, 2),
            Layer::Relu,
            Layer::Flatten,
            linear(980, 100),
            Layer::Relu,
            linear(100, 10),
        ],
        _ => return None,
    };
    Some(Model {
        name: name.to_string(),
        input: [1, 28, 28],
        normalization: Normalization::default(),
        layers,
    })
}

/// Fills every weight with PyTorch's default initialisation (uniform in `+-1/sqrt(fan_in)`),
/// deterministically from `seed`.
pub fn init_weights(model: &mut Model, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for layer in &mut model.layers {
        let fan_in = match layer {
            Layer::Conv2d(c) => c.patch_len(),
            Layer::Linear(l) => l.in_features,
            _ => continue,
        };
        let bound = 1.0 / (fan_in as f32).sqrt();
        for p in layer.params_mut() {
            p.iter_mut().for_each(|v| *v = rng.gen_range(-bound..bound));
        }
    }
}

/// For tests: one `#[test]` per zoo model, named after it (`lenet_sq` for "lenet-sq"), each
/// calling `check(name)`, so that a failure for one model does not hide the others; and
/// `the_tests_cover_every_zoo_model`, which fails when the models listed here are not those of
/// [`ZOO`] (a model added to the zoo and not here). Invoke it inside a module named for the
/// check, whose test paths then read `module::model`:
///
/// ```text
/// mod mpc3_matches_plain {
///     ppml_nn::per_zoo_model!(super::mpc3_matches_plain);
/// }
/// ```
#[macro_export]
macro_rules! per_zoo_model {
    ($check:path) => {
        $crate::per_zoo_model!(@tests $check:
            mlp = "mlp",
            cnn = "cnn",
            lenet = "lenet",
            minionn = "minionn",
            chameleon = "chameleon",
            mlp_sq = "mlp-sq",
            lenet_sq = "lenet-sq"
        );
    };
    (@tests $check:path: $($test:ident = $model:literal),+) => {
        $(
            #[test]
            fn $test() {
                $check($model)
            }
        )+

        #[test]
        fn the_tests_cover_every_zoo_model() {
            let zoo: Vec<&str> = $crate::zoo::ZOO.iter().map(|&(name, _)| name).collect();
            assert_eq!(vec![$($model),+], zoo);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Shape;

    #[test]
    fn every_zoo_model_chains_to_ten_logits() {
        for (name, _) in ZOO {
            let m = architecture(name).expect("zoo name");
            let shapes = m.shapes().expect("valid");
            assert_eq!(shapes.last(), Some(&Shape::Flat(10)), "{name}");
        }
    }

    #[test]
    fn zoo_shapes_match_the_published_architectures() {
        let cnn = architecture("cnn").expect("cnn");
        assert_eq!(cnn.shapes().expect("valid")[0], Shape::Chw(4, 8, 8));
        let lenet = architecture("lenet").expect("lenet");
        assert_eq!(lenet.shapes().expect("valid")[6], Shape::Flat(800));
        assert_eq!(lenet.param_count(), 431_080);
        let chameleon = architecture("chameleon").expect("chameleon");
        assert_eq!(chameleon.shapes().expect("valid")[2], Shape::Flat(980));
        let minionn = architecture("minionn").expect("minionn");
        assert_eq!(minionn.shapes().expect("valid")[6], Shape::Flat(256));
        assert!(architecture("nope").is_none());
    }

    #[test]
    fn polynomial_models_are_the_he_friendly_ones() {
        let poly: Vec<_> = ZOO
            .iter()
            .filter(|(n, _)| architecture(n).is_some_and(|m| m.is_polynomial()))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(poly, ["cnn", "mlp-sq", "lenet-sq"]);
    }
}
