//! The f32 reference engine: plain inference over a batch, im2col + GEMM for convolutions, one
//! GEMM per linear layer, and the batch split across the cores with rayon.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use crate::model::{Conv2d, Layer, Linear, Pool2d, Shape};
use crate::{Model, NnError, Result, Tensor};

/// Runs `model` on a batch of preprocessed images `[n, c, h, w]`, returning logits `[n, classes]`.
pub fn forward(model: &Model, images: &Tensor) -> Result<Tensor> {
    let shapes = model.shapes()?;
    let input = model.input_shape();
    if images.shape().len() != 4 || images.shape()[1..] != input.dims()[..] {
        return Err(NnError::InputShape {
            got: images.shape().to_vec(),
            expected: input.dims(),
        });
    }
    let n = images.batch();
    let out_len = shapes.last().map_or(0, Shape::len);
    let threads = rayon::current_num_threads().max(1);
    // Chunks big enough that each GEMM is worth it, and at least one per core.
    let chunk = n.div_ceil(threads).max(1);
    let in_len = input.len();
    let mut out = vec![0.0f32; n * out_len];
    images
        .data()
        .par_chunks(chunk * in_len)
        .zip(out.par_chunks_mut(chunk * out_len))
        .for_each(|(x, y)| {
            let logits = forward_chunk(model, &shapes, x, x.len() / in_len);
            y.copy_from_slice(&logits);
        });
    Tensor::new(vec![n, out_len], out)
}

/// Runs the layers on `n` images stored item-major in `x` (shapes already validated).
fn forward_chunk(model: &Model, shapes: &[Shape], x: &[f32], n: usize) -> Vec<f32> {
    let mut shape = model.input_shape();
    let mut act = x.to_vec();
    for (layer, &next) in model.layers.iter().zip(shapes) {
        act = apply(layer, shape, &act, n);
        shape = next;
    }
    act
}

/// Applies one layer to `n` items of shape `shape`.
pub fn apply(layer: &Layer, shape: Shape, x: &[f32], n: usize) -> Vec<f32> {
    match (layer, shape) {
        (Layer::Conv2d(c), Shape::Chw(ch, h, w)) => x
            .chunks(ch * h * w)
            .flat_map(|img| conv2d(c, img, h, w))
            .collect(),
        (Layer::Linear(l), _) => linear(l, x, n),
        (Layer::Relu, _) => x.iter().map(|&v| v.max(0.0)).collect(),
        (Layer::Square, _) => x.iter().map(|&v| v * v).collect(),
        (Layer::MaxPool2d(p), Shape::Chw(c, h, w)) => pool(p, x, c * n, h, w, |win| {
            win.fold(f32::NEG_INFINITY, f32::max)
        }),
        (Layer::AvgPool2d(p), Shape::Chw(c, h, w)) => {
            let area = (p.kernel * p.kernel) as f32;
            pool(p, x, c * n, h, w, |win| win.sum::<f32>() / area)
        }
        (Layer::Flatten, _) => x.to_vec(),
        // `Model::shapes` rejects every other combination before we get here.
        _ => x.to_vec(),
    }
}

/// `C = A B` for row-major `A: m x k`, `B: k x n`, with `B` given by its strides (so that a
/// transposed weight matrix needs no copy).
fn gemm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, b_transposed: bool) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    let (Ok(a), Ok(b), Ok(mut cv)) = (
        ArrayView2::from_shape((m, k), a),
        if b_transposed {
            ArrayView2::from_shape((n, k), b).map(|v| v.reversed_axes())
        } else {
            ArrayView2::from_shape((k, n), b)
        },
        ArrayViewMut2::from_shape((m, n), &mut c),
    ) else {
        unreachable!("gemm callers pass slices of exactly m*k and k*n elements")
    };
    general_mat_mul(1.0, &a, &b, 0.0, &mut cv);
    c
}

/// `y = x W^T + b` for `n` rows.
fn linear(l: &Linear, x: &[f32], n: usize) -> Vec<f32> {
    let mut y = gemm(x, &l.weight, n, l.in_features, l.out_features, true);
    for row in y.chunks_mut(l.out_features) {
        row.iter_mut().zip(&l.bias).for_each(|(v, b)| *v += b);
    }
    y
}

/// Lays out the convolution patches of one `[c, h, w]` image as a `[c*k*k, oh*ow]` matrix.
pub fn im2col(c: &Conv2d, img: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = c.output_hw(h, w).unwrap_or((0, 0));
    let (k, s, p) = (c.kernel, c.stride, c.padding as isize);
    let mut cols = vec![0.0f32; c.patch_len() * oh * ow];
    for ch in 0..c.in_channels {
        for ky in 0..k {
            for kx in 0..k {
                let row = (ch * k + ky) * k + kx;
                let dst = &mut cols[row * oh * ow..(row + 1) * oh * ow];
                for oy in 0..oh {
                    let iy = (oy * s + ky) as isize - p;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for ox in 0..ow {
                        let ix = (ox * s + kx) as isize - p;
                        if ix >= 0 && ix < w as isize {
                            dst[oy * ow + ox] = img[(ch * h + iy as usize) * w + ix as usize];
                        }
                    }
                }
            }
        }
    }
    (cols, oh, ow)
}

/// One image through a convolution: `W [out, c*k*k] x im2col [c*k*k, oh*ow] + b`.
fn conv2d(c: &Conv2d, img: &[f32], h: usize, w: usize) -> Vec<f32> {
    let (cols, oh, ow) = im2col(c, img, h, w);
    let mut y = gemm(
        &c.weight,
        &cols,
        c.out_channels,
        c.patch_len(),
        oh * ow,
        false,
    );
    for (plane, b) in y.chunks_mut(oh * ow).zip(&c.bias) {
        plane.iter_mut().for_each(|v| *v += b);
    }
    y
}

/// Pools `planes` feature maps of `h x w` with `reduce` over each window.
fn pool(
    p: &Pool2d,
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    reduce: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
) -> Vec<f32> {
    let (oh, ow) = p.output_hw(h, w).unwrap_or((0, 0));
    let mut out = Vec::with_capacity(planes * oh * ow);
    for plane in x.chunks(h * w).take(planes) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut win = (0..p.kernel).flat_map(|ky| {
                    let row = (oy * p.stride + ky) * w + ox * p.stride;
                    plane[row..row + p.kernel].iter().copied()
                });
                out.push(reduce(&mut win));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Normalization;

    fn model(layers: Vec<Layer>, input: [usize; 3]) -> Model {
        Model {
            name: "t".into(),
            input,
            normalization: Normalization::default(),
            layers,
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
        let y = conv2d(&c, &img, 3, 3);
        // Top-left window covers (pad, pad, pad, 1): 4*1 + 0.5.
        assert_eq!(y[0], 4.5);
        // Window at output (1,1) covers 1,2,4,5: 1+4+12+20+0.5.
        assert_eq!(y[5], 37.5);
        // Bottom-right window covers (9, pad, pad, pad): 1*9 + 0.5.
        assert_eq!(y[15], 9.5);
        assert_eq!(y.len(), 16);
    }

    #[test]
    fn strided_multichannel_conv_matches_direct_sum() {
        let c = Conv2d {
            in_channels: 2,
            out_channels: 3,
            kernel: 3,
            stride: 2,
            padding: 0,
            weight: (0..54).map(|i| (i as f32 * 0.37).sin()).collect(),
            bias: vec![0.1, -0.2, 0.3],
        };
        let img: Vec<f32> = (0..2 * 7 * 7).map(|i| (i as f32 * 0.11).cos()).collect();
        let y = conv2d(&c, &img, 7, 7);
        assert_eq!(y.len(), 3 * 3 * 3);
        for o in 0..3 {
            for oy in 0..3 {
                for ox in 0..3 {
                    let mut s = c.bias[o];
                    for ch in 0..2 {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                s += c.weight[((o * 2 + ch) * 3 + ky) * 3 + kx]
                                    * img[(ch * 7 + oy * 2 + ky) * 7 + ox * 2 + kx];
                            }
                        }
                    }
                    assert!((y[(o * 3 + oy) * 3 + ox] - s).abs() < 1e-5);
                }
            }
        }
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
            linear(&l, &[1.0, 2.0, 3.0, -1.0, 0.0, 2.0], 2),
            [-2.0, 6.5, -3.0, 0.0]
        );
        let x = [1.0, -2.0, 3.0, -4.0];
        let flat = Shape::Flat(4);
        assert_eq!(apply(&Layer::Relu, flat, &x, 1), [1.0, 0.0, 3.0, 0.0]);
        assert_eq!(apply(&Layer::Square, flat, &x, 1), [1.0, 4.0, 9.0, 16.0]);
        let p = Pool2d {
            kernel: 2,
            stride: 2,
        };
        let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let chw = Shape::Chw(1, 4, 4);
        assert_eq!(
            apply(&Layer::MaxPool2d(p), chw, &img, 1),
            [5.0, 7.0, 13.0, 15.0]
        );
        assert_eq!(
            apply(&Layer::AvgPool2d(p), chw, &img, 1),
            [2.5, 4.5, 10.5, 12.5]
        );
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
    fn wrong_input_shape_is_an_error() {
        let m = model(vec![Layer::Flatten], [1, 2, 2]);
        let x = Tensor::zeros(vec![1, 1, 3, 3]);
        assert!(matches!(forward(&m, &x), Err(NnError::InputShape { .. })));
    }
}
