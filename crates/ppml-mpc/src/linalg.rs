//! Ring linear algebra: wrapping `u64` matrix products (both cores via rayon) and im2col.
//!
//! These are the hot path of both backends: every party multiplies shares by shares in each
//! linear layer. The kernel updates four rows of the result per pass over a row of the right
//! operand, which the compiler vectorises.

use rayon::prelude::*;

/// Convolution geometry (public).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding.
    pub pad: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeom {
    /// Rows of the patch matrix (`cin * k * k`).
    pub fn patch(&self) -> usize {
        self.cin * self.k * self.k
    }
    /// Output positions per channel.
    pub fn positions(&self) -> usize {
        self.oh * self.ow
    }
    /// Elements of one input image.
    pub fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    /// Elements of one output image.
    pub fn out_len(&self) -> usize {
        self.cout * self.oh * self.ow
    }
}

/// Pooling geometry (public).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl PoolGeom {
    /// Elements of one output image.
    pub fn out_len(&self) -> usize {
        self.c * self.oh * self.ow
    }
    /// Elements of one input image.
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
}

/// Writes the `[patch, oh*ow]` patch matrix of one `[cin, h, w]` image into `dst`.
pub fn im2col_into(g: &ConvGeom, img: &[u64], dst: &mut [u64]) {
    let (k, s, p) = (g.k, g.stride, g.pad as isize);
    let np = g.positions();
    for ch in 0..g.cin {
        for ky in 0..k {
            for kx in 0..k {
                let row = (ch * k + ky) * k + kx;
                let out = &mut dst[row * np..(row + 1) * np];
                for oy in 0..g.oh {
                    let iy = (oy * s + ky) as isize - p;
                    let line = &mut out[oy * g.ow..(oy + 1) * g.ow];
                    if iy < 0 || iy >= g.h as isize {
                        line.fill(0);
                        continue;
                    }
                    let src = &img[(ch * g.h + iy as usize) * g.w..][..g.w];
                    for (ox, d) in line.iter_mut().enumerate() {
                        let ix = (ox * s + kx) as isize - p;
                        *d = if ix >= 0 && ix < g.w as isize {
                            src[ix as usize]
                        } else {
                            0
                        };
                    }
                }
            }
        }
    }
}

/// `c += a b` for row-major `a: m x k`, `b: k x n` (with row stride `ldb`, columns
/// `col0..col0+n`), `c: m x n`; single-threaded. Four rows of `c` are updated per pass over a
/// row of `b`.
#[expect(
    clippy::too_many_arguments,
    reason = "a hot kernel or protocol step with its operands spelled out"
)]
#[inline(always)]
fn kernel_body(
    a: &[u64],
    b: &[u64],
    ldb: usize,
    col0: usize,
    c: &mut [u64],
    m: usize,
    k: usize,
    n: usize,
) {
    let mut i = 0;
    while i + 4 <= m {
        let (c0, rest) = c[i * n..(i + 4) * n].split_at_mut(n);
        let (c1, rest) = rest.split_at_mut(n);
        let (c2, c3) = rest.split_at_mut(n);
        for p in 0..k {
            let (a0, a1, a2, a3) = (
                a[i * k + p],
                a[(i + 1) * k + p],
                a[(i + 2) * k + p],
                a[(i + 3) * k + p],
            );
            let brow = &b[p * ldb + col0..p * ldb + col0 + n];
            for ((((bv, x0), x1), x2), x3) in brow
                .iter()
                .zip(c0.iter_mut())
                .zip(c1.iter_mut())
                .zip(c2.iter_mut())
                .zip(c3.iter_mut())
            {
                *x0 = x0.wrapping_add(a0.wrapping_mul(*bv));
                *x1 = x1.wrapping_add(a1.wrapping_mul(*bv));
                *x2 = x2.wrapping_add(a2.wrapping_mul(*bv));
                *x3 = x3.wrapping_add(a3.wrapping_mul(*bv));
            }
        }
        i += 4;
    }
    while i < m {
        let crow = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a[i * k + p];
            let brow = &b[p * ldb + col0..p * ldb + col0 + n];
            for (cv, bv) in crow.iter_mut().zip(brow) {
                *cv = cv.wrapping_add(av.wrapping_mul(*bv));
            }
        }
        i += 1;
    }
}

/// [`kernel_body`] compiled for the best instruction set the CPU offers (AVX-512 has 64-bit
/// vector multiplication), chosen at run time.
#[expect(
    clippy::too_many_arguments,
    reason = "a hot kernel or protocol step with its operands spelled out"
)]
fn kernel(
    a: &[u64],
    b: &[u64],
    ldb: usize,
    col0: usize,
    c: &mut [u64],
    m: usize,
    k: usize,
    n: usize,
) {
    pulp::Arch::new().dispatch(Kernel {
        a,
        b,
        ldb,
        col0,
        c,
        m,
        k,
        n,
    });
}

/// The arguments of [`kernel_body`], for [`pulp`]'s run-time dispatch.
struct Kernel<'a> {
    a: &'a [u64],
    b: &'a [u64],
    ldb: usize,
    col0: usize,
    c: &'a mut [u64],
    m: usize,
    k: usize,
    n: usize,
}

impl pulp::WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        kernel_body(
            self.a, self.b, self.ldb, self.col0, self.c, self.m, self.k, self.n,
        );
    }
}

/// `a b` over `Z_2^64` for row-major `a: m x k`, `b: k x n`, on one thread.
pub fn matmul_serial(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    let mut c = vec![0u64; m * n];
    kernel(a, b, n, 0, &mut c, m, k, n);
    c
}

/// `a b` over `Z_2^64` for row-major `a: m x k`, `b: k x n`, split across rayon's threads
/// (by rows when there are enough, else by column blocks).
pub fn matmul(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
    let threads = rayon::current_num_threads().max(1);
    let work = m * k * n;
    if threads == 1 || work < 1 << 15 {
        return matmul_serial(a, b, m, k, n);
    }
    let mut c = vec![0u64; m * n];
    if m >= 8 * threads {
        let rows = m.div_ceil(4 * threads).next_multiple_of(4);
        c.par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(blk, cc)| {
                let r0 = blk * rows;
                let mm = cc.len() / n;
                kernel(&a[r0 * k..(r0 + mm) * k], b, n, 0, cc, mm, k, n);
            });
    } else {
        let cols = n.div_ceil(2 * threads).max(16);
        let blocks: Vec<(usize, Vec<u64>)> = (0..n.div_ceil(cols))
            .into_par_iter()
            .map(|blk| {
                let c0 = blk * cols;
                let nn = cols.min(n - c0);
                let mut cc = vec![0u64; m * nn];
                kernel(a, b, n, c0, &mut cc, m, k, nn);
                (c0, cc)
            })
            .collect();
        for (c0, cc) in blocks {
            let nn = cc.len() / m.max(1);
            for i in 0..m {
                c[i * n + c0..i * n + c0 + nn].copy_from_slice(&cc[i * nn..(i + 1) * nn]);
            }
        }
    }
    c
}

/// Transposes a row-major `rows x cols` matrix.
pub fn transpose(a: &[u64], rows: usize, cols: usize) -> Vec<u64> {
    let mut t = vec![0u64; a.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

/// For each of `n` images, the stacked patch matrices `[im2col(x); im2col(y)]`
/// (`2 * patch x positions`) multiplied on the left by `w: cout x 2*patch`; images in parallel
/// for batches, the product in parallel for a single image. Output `[n, cout, oh, ow]`.
pub fn conv_stacked(g: &ConvGeom, w: &[u64], x: &[u64], y: &[u64], n: usize) -> Vec<u64> {
    let (il, ol, patch, np) = (g.in_len(), g.out_len(), g.patch(), g.positions());
    let one = |i: usize, parallel: bool| {
        let mut cols = vec![0u64; 2 * patch * np];
        let (top, bottom) = cols.split_at_mut(patch * np);
        im2col_into(g, &x[i * il..(i + 1) * il], top);
        im2col_into(g, &y[i * il..(i + 1) * il], bottom);
        if parallel {
            matmul(w, &cols, g.cout, 2 * patch, np)
        } else {
            matmul_serial(w, &cols, g.cout, 2 * patch, np)
        }
    };
    let mut out = vec![0u64; n * ol];
    if n >= 2 {
        out.par_chunks_mut(ol)
            .enumerate()
            .for_each(|(i, o)| o.copy_from_slice(&one(i, false)));
    } else {
        for (i, o) in out.chunks_mut(ol).enumerate() {
            o.copy_from_slice(&one(i, true));
        }
    }
    out
}

/// For each of `n` images, `w: cout x patch` times `im2col(x)`; output `[n, cout, oh, ow]`.
pub fn conv(g: &ConvGeom, w: &[u64], x: &[u64], n: usize) -> Vec<u64> {
    let (il, ol, patch, np) = (g.in_len(), g.out_len(), g.patch(), g.positions());
    let mut out = vec![0u64; n * ol];
    out.par_chunks_mut(ol).enumerate().for_each(|(i, o)| {
        let mut cols = vec![0u64; patch * np];
        im2col_into(g, &x[i * il..(i + 1) * il], &mut cols);
        o.copy_from_slice(&matmul_serial(w, &cols, g.cout, patch, np));
    });
    out
}

/// Gathers pooling windows: `out[q][j]` is element `q` (row-major in the window) of window `j`,
/// windows ordered `[n, c, oh, ow]`.
pub fn pool_windows(g: &PoolGeom, x: &[u64], n: usize) -> Vec<Vec<u64>> {
    let kk = g.k * g.k;
    let mut out = vec![Vec::with_capacity(n * g.out_len()); kk];
    for plane in x.chunks(g.h * g.w).take(n * g.c) {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let v = plane[(oy * g.stride + ky) * g.w + ox * g.stride + kx];
                        out[ky * g.k + kx].push(v);
                    }
                }
            }
        }
    }
    out
}

/// Sums each pooling window (wrapping); output `[n, c, oh, ow]`.
pub fn pool_sum(g: &PoolGeom, x: &[u64], n: usize) -> Vec<u64> {
    let wins = pool_windows(g, x, n);
    let mut s = vec![0u64; n * g.out_len()];
    for w in &wins {
        crate::ring::add_assign(&mut s, w);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::Prg;

    fn naive(a: &[u64], b: &[u64], m: usize, k: usize, n: usize) -> Vec<u64> {
        let mut c = vec![0u64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] =
                        c[i * n + j].wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
                }
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_in_every_split() {
        let mut prg = Prg::from_os();
        for &(m, k, n) in &[
            (1, 300, 200),
            (3, 7, 5),
            (37, 64, 33),
            (64, 50, 70),
            (2, 800, 500),
        ] {
            let a = prg.u64s(m * k);
            let b = prg.u64s(k * n);
            assert_eq!(
                matmul(&a, &b, m, k, n),
                naive(&a, &b, m, k, n),
                "{m}x{k}x{n}"
            );
            assert_eq!(matmul_serial(&a, &b, m, k, n), naive(&a, &b, m, k, n));
        }
    }

    #[test]
    fn conv_matches_the_f32_engine_on_small_integers() {
        use ppml_nn::model::{Conv2d, Layer, Shape};
        let c = Conv2d {
            in_channels: 2,
            out_channels: 3,
            kernel: 3,
            stride: 2,
            padding: 1,
            weight: (0..54).map(|i| (i % 7) as f32 - 3.0).collect(),
            bias: vec![0.0; 3],
        };
        let img: Vec<f32> = (0..2 * 7 * 7).map(|i| (i % 5) as f32 - 2.0).collect();
        let want = ppml_nn::engine::apply(&Layer::Conv2d(c.clone()), Shape::Chw(2, 7, 7), &img, 1)
            .expect("f32 conv");
        let g = ConvGeom {
            cin: 2,
            cout: 3,
            k: 3,
            stride: 2,
            pad: 1,
            h: 7,
            w: 7,
            oh: 4,
            ow: 4,
        };
        let w: Vec<u64> = c.weight.iter().map(|&v| (v as i64) as u64).collect();
        let x: Vec<u64> = img.iter().map(|&v| (v as i64) as u64).collect();
        let got = conv(&g, &w, &x, 1);
        let got: Vec<f32> = got.iter().map(|&v| v as i64 as f32).collect();
        assert_eq!(got, want);
        // Stacking [w | 0] with [x; anything] gives the same.
        let mut w2 = vec![0u64; 3 * 36];
        for o in 0..3 {
            w2[o * 36..o * 36 + 18].copy_from_slice(&w[o * 18..(o + 1) * 18]);
        }
        let junk: Vec<u64> = (0..x.len() as u64).collect();
        let got2 = conv_stacked(&g, &w2, &x, &junk, 1);
        assert_eq!(got2, conv(&g, &w, &x, 1));
    }

    #[test]
    fn pool_windows_and_sums() {
        let g = PoolGeom {
            c: 1,
            h: 4,
            w: 4,
            k: 2,
            stride: 2,
            oh: 2,
            ow: 2,
        };
        let x: Vec<u64> = (0..16).collect();
        assert_eq!(pool_sum(&g, &x, 1), vec![10, 18, 42, 50]);
        assert_eq!(pool_windows(&g, &x, 1)[3], vec![5, 7, 13, 15]);
        assert_eq!(transpose(&[1, 2, 3, 4, 5, 6], 2, 3), vec![1, 4, 2, 5, 3, 6]);
    }
}
