//! The layer computations of the engine over a batch of `n` items: dense and convolution layers
//! as one `gemm` product each, im2col and pooling.
//!
//! Both products write their result channel-major (`[out, n]`, `[out, n, oh, ow]`): in that
//! layout gemm's kernel reads the row-major weights as they are stored, without packing them
//! (packing a 784x128 weight matrix on every call had been 15% of `mlp`'s time at batch 100).

use std::cell::Cell;

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

/// `rows` rows of `width` values, row `i` filled with `bias[i]`: the starting value of a product
/// (each value written once: zeroing the buffer first had been a tenth of `lenet`'s time).
fn bias_rows(bias: &[f32], rows: usize, width: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * width);
    for &b in bias.iter().take(rows) {
        y.resize(y.len() + width, b);
    }
    y.resize(rows * width, 0.0);
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
    let mut cols = Vec::new();
    im2col_into(c, img, 1, h, w, &mut cols);
    (cols, oh, ow)
}

/// Lays out the convolution patches of `n` channel-major images `[c, n, h, w]` as a
/// `[c*k*k, n*oh*ow]` matrix (row: channel and kernel offset; column: image and output pixel) in
/// `cols`, whatever it held before.
fn im2col_into(c: &Conv2d, x: &[f32], n: usize, h: usize, w: usize, cols: &mut Vec<f32>) {
    let (oh, ow) = c.output_hw(h, w).unwrap_or((0, 0));
    let (k, s, pad) = (c.kernel, c.stride, c.padding);
    let plane = oh * ow;
    if pad > 0 {
        // Patch values that fall in the padding are never written below: they must start at zero.
        // Without padding every value is overwritten, so old values may stay until then.
        cols.clear();
    }
    cols.resize(c.patch_len() * n * plane, 0.0);
    if cols.is_empty() {
        return;
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
                    copy_run(out, &line[first..first + out.len()]);
                } else {
                    for (o, v) in out.iter_mut().zip(line[first..].iter().step_by(s)) {
                        *o = *v;
                    }
                }
            }
        }
    }
}

/// Copies `src` into the equally long `dst` eight values at a time. The runs im2col copies are
/// an output row each, a few dozen values, for which a `memcpy` call had cost more than the copy
/// (a seventh of `lenet`'s time); a fixed-size array copy is inlined as vector moves.
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let (dst8, dst_rest) = dst.as_chunks_mut::<8>();
    let (src8, src_rest) = src.as_chunks::<8>();
    for (d, s) in dst8.iter_mut().zip(src8) {
        *d = *s;
    }
    for (d, s) in dst_rest.iter_mut().zip(src_rest) {
        *d = *s;
    }
}

thread_local! {
    /// Each thread's im2col buffer, reused by every pass and call: a fresh one per pass was
    /// zeroed, and its pages faulted in, though an unpadded convolution overwrites all of it.
    static PATCHES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
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
    let width = n * oh * ow;
    let mut y = bias_rows(&c.bias, c.out_channels, width);
    // Taken out of the cell rather than borrowed: gemm's own threads (`Threads::Pool`) may run
    // another pass on this thread meanwhile, which then starts from an empty buffer.
    let mut cols = PATCHES.take();
    im2col_into(c, x, n, h, w, &mut cols);
    let product = MatMut::row_major(&mut y, c.out_channels, width)
        .and_then(|dst| {
            matmul(
                dst,
                true,
                MatRef::row_major(&c.weight, c.out_channels, c.patch_len())?,
                MatRef::row_major(&cols, c.patch_len(), width)?,
                threads,
            )
        })
        .map_err(gemm_bug);
    PATCHES.set(cols);
    product.map(|()| y)
}

/// Max-pools `planes` feature maps of `h x w`, each window's maximum taken with `floor` too:
/// `f32::NEG_INFINITY` for a max-pool alone, `0.0` for a ReLU fused into it (the maximum of the
/// rectified values is the rectified maximum, exactly, and takes one pass over the smaller output
/// instead of one over the input).
pub fn max_pool(p: &Pool2d, x: &[f32], planes: usize, h: usize, w: usize, floor: f32) -> Vec<f32> {
    if p.kernel == 2 && p.stride == 2 {
        max_pool_2x2(x, planes, h, w, floor)
    } else {
        pool(p, x, planes, h, w, floor, f32::max, |m| m)
    }
}

/// The 2x2, stride-2 max-pool of every pooling zoo model: [`pool`]'s window loop cut and
/// bounds-checked a row slice per window (a fifth of `lenet`'s time). Here each pair of rows is
/// first folded into one by a contiguous, vectorised maximum, and then each pair of its columns.
/// The maxima are the same values (a maximum of finite floats is one of them, in any order).
fn max_pool_2x2(x: &[f32], planes: usize, h: usize, w: usize, floor: f32) -> Vec<f32> {
    let (oh, ow) = (h / 2, w / 2);
    let mut out = Vec::with_capacity(planes * oh * ow);
    if oh * ow == 0 {
        return out;
    }
    let mut rows_max = vec![0.0f32; w];
    for src in x.chunks_exact(h * w).take(planes) {
        for rows in src.chunks_exact(2 * w).take(oh) {
            let (top, bottom) = rows.split_at(w);
            for ((m, &t), &b) in rows_max.iter_mut().zip(top).zip(bottom) {
                *m = floor.max(t).max(b);
            }
            out.extend(rows_max.chunks_exact(2).take(ow).map(|m| m[0].max(m[1])));
        }
    }
    out
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
