use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::model::Normalization;
use crate::model::{Conv2d, Linear, Pool2d};

fn model(layers: Vec<Layer>, input: [usize; 3]) -> Model {
    Model {
        name: "t".into(),
        input,
        normalization: Normalization::default(),
        layers,
    }
}

fn conv_one(c: &Conv2d, img: &[f32], h: usize, w: usize) -> Vec<f32> {
    apply(
        &Layer::Conv2d(c.clone()),
        Shape::Chw(c.in_channels, h, w),
        img,
        1,
    )
    .expect("conv")
}

/// The textbook definition of each layer, one image at a time, in f64: the reference the
/// engine's batched, channel-major GEMM path must agree with.
fn reference(m: &Model, img: &[f32]) -> Vec<f64> {
    let mut shape = m.input_shape();
    let mut x: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
    for layer in &m.layers {
        let next = layer.output_shape(shape).expect("shape");
        x = match (layer, shape, next) {
            (Layer::Conv2d(c), Shape::Chw(cin, h, w), Shape::Chw(cout, oh, ow)) => {
                let (k, s, p) = (c.kernel, c.stride, c.padding as isize);
                let mut y = vec![0.0; cout * oh * ow];
                for o in 0..cout {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = f64::from(c.bias[o]);
                            for ch in 0..cin {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * s + ky) as isize - p;
                                        let ix = (ox * s + kx) as isize - p;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue;
                                        }
                                        let (iy, ix) = (iy as usize, ix as usize);
                                        acc +=
                                            f64::from(c.weight[((o * cin + ch) * k + ky) * k + kx])
                                                * x[(ch * h + iy) * w + ix];
                                    }
                                }
                            }
                            y[(o * oh + oy) * ow + ox] = acc;
                        }
                    }
                }
                y
            }
            (Layer::Linear(l), _, _) => (0..l.out_features)
                .map(|o| {
                    let row = &l.weight[o * l.in_features..][..l.in_features];
                    f64::from(l.bias[o])
                        + row
                            .iter()
                            .zip(&x)
                            .map(|(&w, &v)| f64::from(w) * v)
                            .sum::<f64>()
                })
                .collect(),
            (Layer::Relu, _, _) => x.iter().map(|&v| v.max(0.0)).collect(),
            (Layer::Square, _, _) => x.iter().map(|&v| v * v).collect(),
            (
                Layer::MaxPool2d(p) | Layer::AvgPool2d(p),
                Shape::Chw(c, h, w),
                Shape::Chw(_, oh, ow),
            ) => {
                let is_max = matches!(layer, Layer::MaxPool2d(_));
                let mut y = Vec::with_capacity(c * oh * ow);
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let win = (0..p.kernel).flat_map(|ky| {
                                (0..p.kernel).map(move |kx| {
                                    (ch * h + oy * p.stride + ky) * w + ox * p.stride + kx
                                })
                            });
                            let vals: Vec<f64> = win.map(|i| x[i]).collect();
                            y.push(if is_max {
                                vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                            } else {
                                vals.iter().sum::<f64>() / vals.len() as f64
                            });
                        }
                    }
                }
                y
            }
            (Layer::Flatten, _, _) => x,
            _ => unreachable!("Model::shapes checked the combination"),
        };
        shape = next;
    }
    x
}

fn random_images(m: &Model, n: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let [c, h, w] = m.input;
    let data = (0..n * c * h * w)
        .map(|_| rng.gen_range(-1.0..2.0))
        .collect();
    Tensor::new(vec![n, c, h, w], data).expect("shape")
}

/// Every zoo model, and a batch size of 1, an odd size that splits unevenly over the cores, and
/// a size above one chunk per core, against the reference image by image: on the calling thread
/// (these batches are below `PARALLEL_MACS`) and split across the cores (threshold 0).
#[test]
fn every_zoo_model_matches_the_layer_definitions_at_every_batch_size() {
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    for (name, _) in crate::zoo::ZOO {
        let mut m = crate::zoo::architecture(name).expect("zoo");
        crate::zoo::init_weights(&mut m, 7);
        for (n, parallel_macs) in [1, 3, 8]
            .into_iter()
            .flat_map(|n| [(n, PARALLEL_MACS), (n, 0)])
        {
            let x = random_images(&m, n, &mut rng);
            let got = forward_splitting_above(&m, &x, parallel_macs).expect("forward");
            for i in 0..n {
                let want = reference(&m, x.item(i));
                let scale = want.iter().fold(1.0f64, |a, v| a.max(v.abs()));
                for (g, w) in got.item(i).iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1e-4 * scale,
                        "{name}, batch {n}, split above {parallel_macs}, image {i}: {g} vs {w}"
                    );
                }
            }
        }
    }
}

/// Several input channels, stride, padding wider than the kernel reach and average pooling:
/// the channel-major transposes and the im2col edge cases, checked against the reference.
#[test]
fn multichannel_strided_padded_models_match_the_layer_definitions() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut conv = |cin, cout, k, stride, padding| {
        Layer::Conv2d(Conv2d {
            in_channels: cin,
            out_channels: cout,
            kernel: k,
            stride,
            padding,
            weight: (0..cout * cin * k * k)
                .map(|_| rng.gen_range(-0.5..0.5))
                .collect(),
            bias: (0..cout).map(|_| rng.gen_range(-0.5..0.5)).collect(),
        })
    };
    let pool = Pool2d {
        kernel: 3,
        stride: 2,
    };
    let layers = vec![
        conv(3, 4, 3, 2, 4),
        Layer::Square,
        Layer::AvgPool2d(pool),
        conv(4, 2, 2, 1, 1),
        Layer::Relu,
        Layer::MaxPool2d(pool),
        Layer::Flatten,
    ];
    let mut m = model(layers, [3, 9, 11]);
    let out = m.shapes().expect("shapes").last().expect("layers").len();
    m.layers.push(Layer::Linear(Linear {
        in_features: out,
        out_features: 3,
        weight: (0..3 * out).map(|i| (i as f32 * 0.3).sin()).collect(),
        bias: vec![0.1, 0.0, -0.1],
    }));
    let x = random_images(&m, 5, &mut rng);
    let got = forward(&m, &x).expect("forward");
    for i in 0..5 {
        for (g, w) in got.item(i).iter().zip(reference(&m, x.item(i))) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{g} vs {w}"
            );
        }
    }
}

/// The 2x2 max-pool's own loop on odd sizes (the last row and column dropped), alone and with a
/// ReLU before it, fused into it: alone, a window of negative values keeps its negative maximum.
#[test]
fn max_pools_with_and_without_a_relu_match_the_layer_definitions() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let pool = Layer::MaxPool2d(Pool2d {
        kernel: 2,
        stride: 2,
    });
    for layers in [
        vec![pool.clone(), Layer::Flatten],
        vec![Layer::Relu, pool.clone(), Layer::Flatten],
    ] {
        let m = model(layers, [2, 7, 5]);
        let x = random_images(&m, 3, &mut rng);
        // Mostly negative inputs, so that flooring the maxima at zero shows when it is wrong.
        let x = Tensor::new(
            x.shape().to_vec(),
            x.data().iter().map(|v| v - 1.5).collect(),
        )
        .expect("shape");
        let got = forward(&m, &x).expect("forward");
        for i in 0..3 {
            let want = reference(&m, x.item(i));
            let got: Vec<f64> = got.item(i).iter().map(|&g| f64::from(g)).collect();
            assert_eq!(got, want, "{:?}, image {i}", m.layers);
        }
    }
}

#[test]
fn conv_matches_hand_computed_values() {
    // 1x3x3 input, one 2x2 kernel, stride 1, padding 1 -> 4x4 output.
    let c = Conv2d {
        in_channels: 1,
        out_channels: 1,
        kernel: 2,
        stride: 1,
        padding: 1,
        weight: vec![1.0, 2.0, 3.0, 4.0],
        bias: vec![0.5],
    };
    let img = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let y = conv_one(&c, &img, 3, 3);
    // Top-left window covers (pad, pad, pad, 1): 4*1 + 0.5.
    assert_eq!(y[0], 4.5);
    // Window at output (1,1) covers 1,2,4,5: 1+4+12+20+0.5.
    assert_eq!(y[5], 37.5);
    // Bottom-right window covers (9, pad, pad, pad): 1*9 + 0.5.
    assert_eq!(y[15], 9.5);
    assert_eq!(y.len(), 16);
}

#[test]
fn im2col_of_one_image_lays_out_patches_row_by_kernel_offset() {
    let c = Conv2d {
        in_channels: 1,
        out_channels: 1,
        kernel: 2,
        stride: 1,
        padding: 0,
        weight: vec![0.0; 4],
        bias: vec![0.0],
    };
    let img = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let (cols, oh, ow) = im2col(&c, &img, 3, 3);
    assert_eq!((oh, ow), (2, 2));
    assert_eq!(
        cols,
        [
            1.0, 2.0, 4.0, 5.0, // (ky, kx) = (0, 0)
            2.0, 3.0, 5.0, 6.0, // (0, 1)
            4.0, 5.0, 7.0, 8.0, // (1, 0)
            5.0, 6.0, 8.0, 9.0, // (1, 1)
        ]
    );
}

#[test]
fn linear_activations_and_pools_match_hand_computed_values() {
    let l = Linear {
        in_features: 3,
        out_features: 2,
        weight: vec![1.0, 0.0, -1.0, 2.0, 1.0, 0.5],
        bias: vec![0.0, 1.0],
    };
    assert_eq!(
        apply(
            &Layer::Linear(l),
            Shape::Flat(3),
            &[1.0, 2.0, 3.0, -1.0, 0.0, 2.0],
            2
        )
        .expect("linear"),
        [-2.0, 6.5, -3.0, 0.0]
    );
    let x = [1.0, -2.0, 3.0, -4.0];
    let flat = Shape::Flat(4);
    assert_eq!(
        apply(&Layer::Relu, flat, &x, 1).expect("relu"),
        [1.0, 0.0, 3.0, 0.0]
    );
    assert_eq!(
        apply(&Layer::Square, flat, &x, 1).expect("square"),
        [1.0, 4.0, 9.0, 16.0]
    );
    let p = Pool2d {
        kernel: 2,
        stride: 2,
    };
    let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let chw = Shape::Chw(1, 4, 4);
    assert_eq!(
        apply(&Layer::MaxPool2d(p), chw, &img, 1).expect("max"),
        [5.0, 7.0, 13.0, 15.0]
    );
    assert_eq!(
        apply(&Layer::AvgPool2d(p), chw, &img, 1).expect("avg"),
        [2.5, 4.5, 10.5, 12.5]
    );
}

#[test]
fn apply_refuses_inputs_and_weights_of_the_wrong_size() {
    let l = Linear {
        in_features: 3,
        out_features: 2,
        weight: vec![0.0; 6],
        bias: vec![0.0; 2],
    };
    assert!(matches!(
        apply(&Layer::Linear(l.clone()), Shape::Flat(3), &[0.0; 5], 2),
        Err(NnError::InputShape { .. })
    ));
    let short = Linear {
        weight: vec![0.0; 5],
        ..l
    };
    assert!(matches!(
        apply(&Layer::Linear(short), Shape::Flat(3), &[0.0; 6], 2),
        Err(NnError::InvalidModel(_))
    ));
    assert!(matches!(
        apply(
            &Layer::MaxPool2d(Pool2d {
                kernel: 2,
                stride: 2
            }),
            Shape::Flat(4),
            &[0.0; 4],
            1
        ),
        Err(NnError::InvalidModel(_))
    ));
}

#[test]
fn batched_forward_equals_one_image_at_a_time() {
    let mut m = crate::zoo::architecture("lenet").expect("zoo");
    crate::zoo::init_weights(&mut m, 7);
    let n = 5;
    let data: Vec<f32> = (0..n * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let batch = Tensor::new(vec![n, 1, 28, 28], data).expect("shape");
    let all = forward(&m, &batch).expect("forward");
    for i in 0..n {
        let one = forward(&m, &batch.slice_batch(i, i + 1)).expect("forward");
        for (a, b) in one.data().iter().zip(all.item(i)) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}

#[test]
fn an_empty_batch_gives_no_logits() {
    let mut m = crate::zoo::architecture("lenet").expect("zoo");
    crate::zoo::init_weights(&mut m, 1);
    let out = forward(&m, &Tensor::zeros(vec![0, 1, 28, 28])).expect("forward");
    assert_eq!(out.shape(), [0, 10]);
}

#[test]
fn wrong_input_shape_is_an_error() {
    let m = model(vec![Layer::Flatten], [1, 2, 2]);
    let x = Tensor::zeros(vec![1, 1, 3, 3]);
    assert!(matches!(forward(&m, &x), Err(NnError::InputShape { .. })));
}
