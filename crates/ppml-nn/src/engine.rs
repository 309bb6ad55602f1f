//! The f32 reference engine: plain inference over a batch.
//!
//! The batch is split into one chunk per core (rayon), and each chunk goes through the layers as
//! a whole, so that every convolution and every linear layer is one matrix product over the chunk,
//! computed by the `gemm` crate's kernels through [`ppml_gemm`]:
//! - feature maps inside a chunk are kept channel-major, `[c, n, h, w]`, so that a convolution is
//!   `W [out, c*k*k] x im2col [c*k*k, n*oh*ow]`, whose result is already `[out, n, oh, ow]`;
//! - pooling and activations work plane by plane or element by element, in either layout;
//! - flattening turns `[c, n, h*w]` into the item-major `[n, c*h*w]` the linear layers take
//!   (`X [n, in] x W^T`, the bias being the starting value of the product).
//!
//! A single image runs on the calling thread, and gemm may split its larger products across the
//! pool. The results equal a layer-by-layer evaluation within f32 rounding (summation order).

use ppml_gemm::{matmul, GemmError, MatMut, MatRef, Threads};
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
    let in_len = input.len();
    // One chunk per core, so that no thread waits for another between layers.
    let chunk = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let out = if chunk >= n {
        forward_chunk(model, &shapes, images.data(), n, Threads::Pool)?
    } else {
        let mut out = vec![0.0f32; n * out_len];
        images
            .data()
            .par_chunks(chunk * in_len)
            .zip(out.par_chunks_mut(chunk * out_len))
            .try_for_each(|(x, y)| {
                let logits = forward_chunk(model, &shapes, x, x.len() / in_len, Threads::Current)?;
                y.copy_from_slice(&logits);
                Ok::<_, NnError>(())
            })?;
        out
    };
    Tensor::new(vec![n, out_len], out)
}

/// Runs the layers on `n` images stored item-major in `x` (shapes already validated).
fn forward_chunk(
    model: &Model,
    shapes: &[Shape],
    x: &[f32],
    n: usize,
    threads: Threads,
) -> Result<Vec<f32>> {
    let mut shape = model.input_shape();
    let mut act = Activations {
        data: x.to_vec(),
        channel_major: false,
    };
    for (layer, &next) in model.layers.iter().zip(shapes) {
        act = step(layer, shape, act, n, threads)?;
        shape = next;
    }
    Ok(act.into_item_major(shape, n))
}

/// Applies one layer to `n` items of shape `shape`, stored item-major; returns them item-major.
pub fn apply(layer: &Layer, shape: Shape, x: &[f32], n: usize) -> Result<Vec<f32>> {
    if Some(x.len()) != n.checked_mul(shape.len()) {
        return Err(NnError::InputShape {
            got: vec![x.len()],
            expected: vec![n, shape.len()],
        });
    }
    for (name, dims, data) in layer.params() {
        let want: usize = dims.iter().product();
        if data.len() != want {
            return Err(NnError::InvalidModel(format!(
                "{}: {name} has {} values, shape {dims:?} needs {want}",
                layer.op_name(),
                data.len()
            )));
        }
    }
    let act = Activations {
        data: x.to_vec(),
        channel_major: false,
    };
    let out_shape = layer
        .output_shape(shape)
        .map_err(|e| NnError::InvalidModel(format!("{}: {e}", layer.op_name())))?;
    let act = step(layer, shape, act, n, Threads::Current)?;
    Ok(act.into_item_major(out_shape, n))
}

/// The activations of a chunk of `n` images: item-major (`[n, c, h, w]` or `[n, features]`) or,
/// for feature maps, channel-major (`[c, n, h, w]`). Both are the same when `c` or `n` is 1.
struct Activations {
    data: Vec<f32>,
    channel_major: bool,
}

impl Activations {
    /// The data channel-major, for feature maps of shape `shape`.
    fn into_channel_major(self, shape: Shape, n: usize) -> Vec<f32> {
        match shape {
            Shape::Chw(c, h, w) if !self.channel_major => swap_outer(&self.data, n, c, h * w),
            _ => self.data,
        }
    }

    /// The data item-major.
    fn into_item_major(self, shape: Shape, n: usize) -> Vec<f32> {
        match shape {
            Shape::Chw(c, h, w) if self.channel_major => swap_outer(&self.data, c, n, h * w),
            _ => self.data,
        }
    }
}

/// `[a, b, inner]` to `[b, a, inner]`.
fn swap_outer(x: &[f32], a: usize, b: usize, inner: usize) -> Vec<f32> {
    if a <= 1 || b <= 1 {
        return x.to_vec();
    }
    let mut out = vec![0.0f32; x.len()];
    for (i, block) in x.chunks_exact(b * inner).enumerate() {
        for (j, run) in block.chunks_exact(inner).enumerate() {
            out[(j * a + i) * inner..][..inner].copy_from_slice(run);
        }
    }
    out
}

/// Applies one layer to the activations of `n` items of shape `shape`.
fn step(
    layer: &Layer,
    shape: Shape,
    mut act: Activations,
    n: usize,
    threads: Threads,
) -> Result<Activations> {
    match (layer, shape) {
        (Layer::Conv2d(c), Shape::Chw(_, h, w)) => {
            let x = act.into_channel_major(shape, n);
            Ok(Activations {
                data: conv2d(c, &x, n, h, w, threads)?,
                channel_major: true,
            })
        }
        (Layer::Linear(l), _) => Ok(Activations {
            data: linear(l, &act.data, n, threads)?,
            channel_major: false,
        }),
        (Layer::Relu, _) => {
            act.data.iter_mut().for_each(|v| *v = v.max(0.0));
            Ok(act)
        }
        (Layer::Square, _) => {
            act.data.iter_mut().for_each(|v| *v *= *v);
            Ok(act)
        }
        (Layer::MaxPool2d(p), Shape::Chw(c, h, w)) => Ok(Activations {
            data: pool(
                p,
                &act.data,
                c * n,
                h,
                w,
                f32::NEG_INFINITY,
                f32::max,
                |m| m,
            ),
            channel_major: act.channel_major,
        }),
        (Layer::AvgPool2d(p), Shape::Chw(c, h, w)) => {
            let area = (p.kernel * p.kernel) as f32;
            Ok(Activations {
                data: pool(p, &act.data, c * n, h, w, 0.0, |s, v| s + v, |s| s / area),
                channel_major: act.channel_major,
            })
        }
        (Layer::Flatten, _) => Ok(Activations {
            data: act.into_item_major(shape, n),
            channel_major: false,
        }),
        // `Model::shapes` rejects every other combination before we get here.
        (layer, shape) => Err(NnError::InvalidModel(format!(
            "{} cannot take an input of shape {shape:?}",
            layer.op_name()
        ))),
    }
}

/// A failed product means the engine built a view of the wrong size: a bug, reported as such.
fn gemm_bug(e: GemmError) -> NnError {
    NnError::InvalidModel(format!("engine matrix product: {e}"))
}

/// `y = x W^T + b` for `n` rows: one product, starting from the bias.
fn linear(l: &Linear, x: &[f32], n: usize, threads: Threads) -> Result<Vec<f32>> {
    // Row by row, not through an iterator chain: collecting `cycle().take()` cost a tenth of
    // `mlp`'s time at batch 100.
    let mut y = vec![0.0f32; n * l.out_features];
    for row in y.chunks_exact_mut(l.out_features.max(1)) {
        row.iter_mut().zip(&l.bias).for_each(|(v, &b)| *v = b);
    }
    matmul(
        MatMut::row_major(&mut y, n, l.out_features).map_err(gemm_bug)?,
        true,
        MatRef::row_major(x, n, l.in_features).map_err(gemm_bug)?,
        MatRef::row_major(&l.weight, l.out_features, l.in_features)
            .map_err(gemm_bug)?
            .transpose(),
        threads,
    )
    .map_err(gemm_bug)?;
    Ok(y)
}

/// Lays out the convolution patches of one `[c, h, w]` image as a `[c*k*k, oh*ow]` matrix.
pub fn im2col(c: &Conv2d, img: &[f32], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let (oh, ow) = c.output_hw(h, w).unwrap_or((0, 0));
    (im2col_batch(c, img, 1, h, w), oh, ow)
}

/// Lays out the convolution patches of `n` channel-major images `[c, n, h, w]` as a
/// `[c*k*k, n*oh*ow]` matrix (row: channel and kernel offset; column: image and output pixel).
fn im2col_batch(c: &Conv2d, x: &[f32], n: usize, h: usize, w: usize) -> Vec<f32> {
    let (oh, ow) = c.output_hw(h, w).unwrap_or((0, 0));
    let (k, s, pad) = (c.kernel, c.stride, c.padding);
    let plane = oh * ow;
    let mut cols = vec![0.0f32; c.patch_len() * n * plane];
    if cols.is_empty() {
        return cols;
    }
    // Output pixels `lo..hi` along one axis read inputs `o * s + off - pad` inside `0..len`.
    let valid = |off: usize, len: usize, out: usize| {
        let lo = pad.saturating_sub(off).div_ceil(s);
        let hi = (len + pad)
            .checked_sub(off + 1)
            .map_or(0, |last| last / s + 1);
        (lo.min(out), hi.min(out).max(lo.min(out)))
    };
    let offsets = (0..c.in_channels)
        .flat_map(|ch| (0..k).flat_map(move |ky| (0..k).map(move |kx| (ch, ky, kx))));
    for (row, (ch, ky, kx)) in cols.chunks_exact_mut(n * plane).zip(offsets) {
        let (oy_lo, oy_hi) = valid(ky, h, oh);
        let (ox_lo, ox_hi) = valid(kx, w, ow);
        if ox_lo >= ox_hi {
            continue;
        }
        let maps = &x[ch * n * h * w..][..n * h * w];
        for (src, dst) in maps.chunks_exact(h * w).zip(row.chunks_exact_mut(plane)) {
            for oy in oy_lo..oy_hi {
                let line = &src[(oy * s + ky - pad) * w..][..w];
                let out = &mut dst[oy * ow..][ox_lo..ox_hi];
                let first = ox_lo * s + kx - pad;
                if s == 1 {
                    out.copy_from_slice(&line[first..first + out.len()]);
                } else {
                    for (o, v) in out.iter_mut().zip(line[first..].iter().step_by(s)) {
                        *o = *v;
                    }
                }
            }
        }
    }
    cols
}

/// `n` channel-major images through a convolution: `W [out, c*k*k] x im2col [c*k*k, n*oh*ow] + b`,
/// giving `[out, n, oh, ow]`.
fn conv2d(
    c: &Conv2d,
    x: &[f32],
    n: usize,
    h: usize,
    w: usize,
    threads: Threads,
) -> Result<Vec<f32>> {
    let (oh, ow) = c.output_hw(h, w).unwrap_or((0, 0));
    let cols = im2col_batch(c, x, n, h, w);
    let width = n * oh * ow;
    let mut y = vec![0.0f32; c.out_channels * width];
    for (plane, &b) in y.chunks_exact_mut(width.max(1)).zip(&c.bias) {
        plane.fill(b);
    }
    matmul(
        MatMut::row_major(&mut y, c.out_channels, width).map_err(gemm_bug)?,
        true,
        MatRef::row_major(&c.weight, c.out_channels, c.patch_len()).map_err(gemm_bug)?,
        MatRef::row_major(&cols, c.patch_len(), width).map_err(gemm_bug)?,
        threads,
    )
    .map_err(gemm_bug)?;
    Ok(y)
}

/// Pools `planes` feature maps of `h x w`: each window folded from `init` with `fold`, then
/// `finish`ed.
#[expect(
    clippy::too_many_arguments,
    reason = "the fold is spelled out as three monomorphised pieces so the window loop inlines"
)]
fn pool(
    p: &Pool2d,
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    init: f32,
    fold: impl Fn(f32, f32) -> f32,
    finish: impl Fn(f32) -> f32,
) -> Vec<f32> {
    let (oh, ow) = p.output_hw(h, w).unwrap_or((0, 0));
    let (k, s) = (p.kernel, p.stride);
    let mut out = vec![0.0f32; planes * oh * ow];
    if oh * ow == 0 {
        return out;
    }
    for (src, dst) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        for (oy, dst) in dst.chunks_exact_mut(ow).enumerate() {
            for (ox, o) in dst.iter_mut().enumerate() {
                let mut acc = init;
                for ky in 0..k {
                    let row = &src[(oy * s + ky) * w + ox * s..][..k];
                    acc = row.iter().fold(acc, |a, &v| fold(a, v));
                }
                *o = finish(acc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
