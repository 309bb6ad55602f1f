//! The layer computations of the engine over a batch of `n` items: dense and convolution layers
//! as one `gemm` product each, im2col and pooling.
//!
//! Both products write their result channel-major (`[out, n]`, `[out, n, oh, ow]`): in that
//! layout gemm's kernel reads the row-major weights as they are stored, without packing them
//! (packing a 784x128 weight matrix on every call had been 15% of `mlp`'s time at batch 100).

use ppml_gemm::{matmul, GemmError, MatMut, MatRef, Threads};

use crate::model::{Conv2d, Linear, Pool2d};
use crate::{NnError, Result};

/// How the values of `n` items are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Item after item: `[n, c, h, w]` or `[n, features]`.
    ItemMajor,
    /// Channel (or feature) after channel: `[c, n, h, w]` or `[features, n]`.
    ChannelMajor,
}

/// A failed product means the engine built a view of the wrong size: a bug, reported as such.
fn gemm_bug(e: GemmError) -> NnError {
    NnError::InvalidModel(format!("engine matrix product: {e}"))
}

/// `rows` rows of `width` values, row `i` filled with `bias[i]`: the starting value of a product.
fn bias_rows(bias: &[f32], rows: usize, width: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * width];
    for (row, &b) in y.chunks_exact_mut(width.max(1)).zip(bias) {
        row.fill(b);
    }
    y
}

/// `y = W x + b` for `n` items stored in `order`, one product starting from the bias; returns
/// `[out_features, n]` (channel-major).
pub fn linear(l: &Linear, x: &[f32], n: usize, order: Order, threads: Threads) -> Result<Vec<f32>> {
    let mut y = bias_rows(&l.bias, l.out_features, n);
    let x = match order {
        Order::ChannelMajor => MatRef::row_major(x, l.in_features, n),
        Order::ItemMajor => MatRef::row_major(x, n, l.in_features).map(MatRef::transpose),
    }
    .map_err(gemm_bug)?;
    matmul(
        MatMut::row_major(&mut y, l.out_features, n).map_err(gemm_bug)?,
        true,
        MatRef::row_major(&l.weight, l.out_features, l.in_features).map_err(gemm_bug)?,
        x,
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
pub fn conv2d(
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
    let mut y = bias_rows(&c.bias, c.out_channels, width);
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
pub fn pool(
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
