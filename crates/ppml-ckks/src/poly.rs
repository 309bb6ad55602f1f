//! RNS polynomials: one residue vector ("limb") per prime, and the limb-parallel kernels built
//! on tfhe-ntt's NTT plans.

use rayon::prelude::*;
use zeroize::Zeroize;

use crate::arith::{add_mod, sub_mod, Modulus, Shoup};
use crate::params::CkksParameters;

/// A polynomial of Z[X]/(X^N + 1) in RNS form. Which primes the limbs belong to (and whether they
/// hold NTT values or coefficients) is tracked by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct RnsPoly {
    pub(crate) limbs: Vec<Vec<u64>>,
}

impl Zeroize for RnsPoly {
    fn zeroize(&mut self) {
        for l in &mut self.limbs {
            l.zeroize();
        }
    }
}

impl RnsPoly {
    /// The zero polynomial with `count` limbs.
    pub(crate) fn zero(degree: usize, count: usize) -> Self {
        Self {
            limbs: vec![vec![0u64; degree]; count],
        }
    }

    /// A copy of the limbs at positions `idx`.
    pub(crate) fn select(&self, idx: &[usize]) -> Self {
        Self {
            limbs: idx.iter().map(|&i| self.limbs[i].clone()).collect(),
        }
    }
}

/// Residues modulo primes below this bound are stored in 32 bits by [`PackedPoly`] (and summed
/// lazily in 64 bits by the multiply-accumulate kernels).
pub(crate) const NARROW_PRIME: u64 = 1 << 31;

/// Lazy 64-bit accumulators stay below this bound for [`reduce_any`].
const ACC_BOUND: u64 = 1 << 62;

/// How many products of two residues modulo `q < NARROW_PRIME` a 64-bit accumulator (reduced
/// below `q` before) can add before it must be reduced again: acc < q + terms · (q - 1)^2 < 2^62.
pub(crate) fn lazy_terms(q: u64) -> usize {
    (((ACC_BOUND - q) / ((q - 1) * (q - 1)).max(1)) as usize).max(1)
}

/// A polynomial over all primes (NTT form) whose residues modulo primes below [`NARROW_PRIME`]
/// are stored in 32 bits: key-switching keys and encoded diagonals, whose products are bound by
/// reading them, so this halves what they read. Limbs not given (above a key's level) are empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedPoly {
    pub(crate) limbs: Vec<PackedLimb>,
}

/// One limb of a [`PackedPoly`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PackedLimb {
    /// Values of a prime below [`NARROW_PRIME`].
    Narrow(Vec<u32>),
    /// Values of a larger prime.
    Wide(Vec<u64>),
}

impl PackedPoly {
    /// Packs a polynomial over all primes of `params`.
    pub(crate) fn pack(params: &CkksParameters, p: &RnsPoly) -> Self {
        let all: Vec<usize> = (0..p.limbs.len()).collect();
        Self::pack_at(params, &all, p)
    }

    /// Packs a polynomial given over the primes `idx` (indices into `params.moduli`); the other
    /// limbs are left empty.
    pub(crate) fn pack_at(params: &CkksParameters, idx: &[usize], p: &RnsPoly) -> Self {
        let mut limbs: Vec<PackedLimb> = (0..params.moduli.len())
            .map(|_| PackedLimb::Wide(Vec::new()))
            .collect();
        for (&i, l) in idx.iter().zip(&p.limbs) {
            limbs[i] = if params.moduli[i].value < NARROW_PRIME {
                // Values are reduced modulo a prime below 2^31: exact in 32 bits.
                PackedLimb::Narrow(l.iter().map(|&x| x as u32).collect())
            } else {
                PackedLimb::Wide(l.clone())
            };
        }
        Self { limbs }
    }

    /// The limbs at `idx` with 64-bit values.
    pub(crate) fn select(&self, idx: &[usize]) -> RnsPoly {
        RnsPoly {
            limbs: idx
                .iter()
                .map(|&i| match &self.limbs[i] {
                    PackedLimb::Narrow(v) => v.iter().map(|&x| u64::from(x)).collect(),
                    PackedLimb::Wide(v) => v.clone(),
                })
                .collect(),
        }
    }

    /// The polynomial with 64-bit limbs.
    pub(crate) fn unpack(&self) -> RnsPoly {
        let all: Vec<usize> = (0..self.limbs.len()).collect();
        self.select(&all)
    }
}

/// Runs `f` compiled for the best instruction set of this CPU (runtime dispatch, no unsafe), so
/// that the simple loops inside auto-vectorise (AVX-512 where available). The closure must be
/// marked `#[inline(always)]`: otherwise its body is compiled apart, for the baseline target.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `x mod t` for any `x < 2^62` and `2^20 <= t < 2^62`, branch-free (vectorisable): a float
/// estimate of the quotient is off by at most one, then corrected.
#[inline(always)]
pub(crate) fn reduce_any(x: u64, t: u64, inv_t: f64) -> u64 {
    // The quotient estimate (below 2^42) is rounded to an integer by adding 2^52 and reading the
    // mantissa: unlike a saturating float-to-int cast, this vectorises. `x < 2^63` converts as
    // an i64 (one instruction); the estimate is then off by at most one either way.
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let q = ((x as i64 as f64) * inv_t + MAGIC)
        .to_bits()
        .wrapping_sub(MAGIC.to_bits());
    let r = x.wrapping_sub(q.wrapping_mul(t)) as i64;
    let r = if r < 0 { r + t as i64 } else { r };
    let r = r as u64;
    if r >= t {
        r - t
    } else {
        r
    }
}

/// Moduli below this bound take the floating-point products of [`mul_mod_f64`].
pub(crate) const F64_MODULUS: u64 = 1 << 50;

/// `x * c mod q` for `x < 2^50` and `c < q < 2^50`, branch-free (vectorisable), given
/// `c_q = c / q`: the rounded quotient x·c/q is estimated in floating point (error below 1/2,
/// so it is floor or floor + 1), and the remainder, in (-q, q), is taken modulo 2^64 and
/// corrected once.
#[inline(always)]
pub(crate) fn mul_mod_f64(x: u64, c: u64, c_q: f64, q: u64) -> u64 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let est = ((x as i64 as f64) * c_q + MAGIC)
        .to_bits()
        .wrapping_sub(MAGIC.to_bits());
    let r = x.wrapping_mul(c).wrapping_sub(est.wrapping_mul(q)) as i64;
    (if r < 0 { r + q as i64 } else { r }) as u64
}

/// out += a ⊙ c for a constant c (reduced).
pub(crate) fn mul_const_acc(m: &Modulus, out: &mut [u64], a: &[u64], c: u64) {
    let mut cv = take_buf(a.len());
    cv.iter_mut().for_each(|x| *x = c);
    m.plan.mul_accumulate(out, a, &cv);
    recycle(cv);
}

/// out = a ⊙ c for a constant c (vectorised through tfhe-ntt's multiply-accumulate).
pub(crate) fn mul_const_into(m: &Modulus, out: &mut [u64], a: &[u64], c: u64) {
    let mut cv = take_buf(a.len());
    cv.iter_mut().for_each(|x| *x = c % m.value);
    out.iter_mut().for_each(|x| *x = 0);
    m.plan.mul_accumulate(out, a, &cv);
    recycle(cv);
}

/// Recycled limb buffers for the temporaries of key switching and rescaling (never secret data):
/// reusing them avoids zero-filling fresh allocations and the allocator returning pages to the OS
/// and faulting them back in on every operation. One pool for all threads: buffers are often
/// taken on a rayon worker and returned on another thread.
static POOL: std::sync::Mutex<Pool> = std::sync::Mutex::new(Pool {
    bufs: Vec::new(),
    words: 0,
});

/// The spare buffers and their total capacity in words.
struct Pool {
    bufs: Vec<Vec<u64>>,
    words: usize,
}

/// At most this many bytes of spare buffers are kept.
const POOL_BYTES: usize = 64 << 20;

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool holds no invariant a panic could break: a poisoned lock is still usable.
    POOL.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A buffer of `n` words with unspecified contents (to be overwritten).
pub(crate) fn take_buf(n: usize) -> Vec<u64> {
    let v = {
        let mut p = pool();
        let pos = p.bufs.iter().rposition(|v| v.capacity() >= n);
        pos.map(|i| {
            let v = p.bufs.swap_remove(i);
            p.words -= v.capacity();
            v
        })
    };
    match v {
        Some(mut v) => {
            v.resize(n, 0);
            v.truncate(n);
            v
        }
        None => vec![0u64; n],
    }
}

/// A zeroed buffer of `n` words.
pub(crate) fn take_zeroed(n: usize) -> Vec<u64> {
    let mut v = take_buf(n);
    v.iter_mut().for_each(|x| *x = 0);
    v
}

/// A pooled copy of `src`.
pub(crate) fn take_copy(src: &[u64]) -> Vec<u64> {
    let mut v = take_buf(src.len());
    v.copy_from_slice(src);
    v
}

/// Returns a temporary buffer to the pool.
pub(crate) fn recycle(v: Vec<u64>) {
    if v.capacity() == 0 {
        return;
    }
    let mut p = pool();
    if (p.words + v.capacity()) * 8 <= POOL_BYTES {
        p.words += v.capacity();
        p.bufs.push(v);
    }
}

/// Returns all limbs of a temporary polynomial to the pool.
pub(crate) fn recycle_poly(p: RnsPoly) {
    p.limbs.into_iter().for_each(recycle);
}

/// The moduli at the given indices of the parameters.
pub(crate) fn mods<'a>(params: &'a CkksParameters, idx: &[usize]) -> Vec<&'a Modulus> {
    idx.iter().map(|&i| &params.moduli[i]).collect()
}

/// Inverse NTT of every limb (normalised).
pub(crate) fn ntt_inv(m: &[&Modulus], p: &mut RnsPoly) {
    p.limbs.par_iter_mut().zip(m.par_iter()).for_each(|(l, m)| {
        m.plan.inv(l);
        m.plan.normalize(l);
    });
}

/// a += b.
pub(crate) fn add_assign(m: &[&Modulus], a: &mut RnsPoly, b: &RnsPoly) {
    zip_assign(m, a, b, add_mod);
}

/// a -= b.
pub(crate) fn sub_assign(m: &[&Modulus], a: &mut RnsPoly, b: &RnsPoly) {
    zip_assign(m, a, b, sub_mod);
}

/// `a[i] = op(a[i], b[i], q)` coefficient-wise in every limb (monomorphised per `op`, so the
/// loop vectorises as a hand-written one would).
fn zip_assign(
    m: &[&Modulus],
    a: &mut RnsPoly,
    b: &RnsPoly,
    op: impl Fn(u64, u64, u64) -> u64 + Sync,
) {
    a.limbs
        .par_iter_mut()
        .zip(b.limbs.par_iter())
        .zip(m.par_iter())
        .for_each(|((x, y), m)| {
            let q = m.value;
            simd(
                #[inline(always)]
                || x.iter_mut().zip(y).for_each(|(x, &y)| *x = op(*x, y, q)),
            );
        });
}

/// a = -a.
pub(crate) fn neg_assign(m: &[&Modulus], a: &mut RnsPoly) {
    a.limbs.par_iter_mut().zip(m.par_iter()).for_each(|(x, m)| {
        let q = m.value;
        simd(
            #[inline(always)]
            || x.iter_mut().for_each(|x| *x = sub_mod(0, *x, q)),
        );
    });
}

/// acc += a ⊙ b (NTT domain).
pub(crate) fn mul_acc(m: &[&Modulus], acc: &mut RnsPoly, a: &RnsPoly, b: &RnsPoly) {
    acc.limbs
        .par_iter_mut()
        .zip(a.limbs.par_iter())
        .zip(b.limbs.par_iter())
        .zip(m.par_iter())
        .for_each(|(((acc, a), b), m)| m.plan.mul_accumulate(acc, a, b));
}

/// a ⊙ b (NTT domain).
pub(crate) fn mul(m: &[&Modulus], a: &RnsPoly, b: &RnsPoly) -> RnsPoly {
    let n = a.limbs.first().map_or(0, Vec::len);
    let mut out = RnsPoly {
        limbs: (0..a.limbs.len()).map(|_| take_zeroed(n)).collect(),
    };
    mul_acc(m, &mut out, a, b);
    out
}

/// a *= c_i on limb i (one constant per limb, each already reduced).
pub(crate) fn mul_const_assign(m: &[&Modulus], a: &mut RnsPoly, c: &[u64]) {
    a.limbs
        .par_iter_mut()
        .zip(m.par_iter())
        .zip(c.par_iter())
        .for_each(|((x, m), &c)| {
            let q = m.value;
            let src = x.clone();
            mul_const_into(m, x, &src, c % q);
        });
}

/// a += c_i on every value of limb i (adds a constant polynomial in the NTT domain).
pub(crate) fn add_const_assign(m: &[&Modulus], a: &mut RnsPoly, c: &[u64]) {
    a.limbs
        .par_iter_mut()
        .zip(m.par_iter())
        .zip(c.par_iter())
        .for_each(|((x, m), &c)| {
            let q = m.value;
            simd(
                #[inline(always)]
                || x.iter_mut().for_each(|x| *x = add_mod(*x, c, q)),
            );
        });
}

/// Applies a permutation of NTT slots to every limb: out[j] = in[perm[j]].
pub(crate) fn permute(p: &RnsPoly, perm: &[u32]) -> RnsPoly {
    RnsPoly {
        limbs: p
            .limbs
            .par_iter()
            .map(|l| {
                if l.is_empty() {
                    // A key limb above the key's level.
                    return Vec::new();
                }
                simd(
                    #[inline(always)]
                    || perm.iter().map(|&k| l[k as usize]).collect(),
                )
            })
            .collect(),
    }
}

/// σ(a + b) for a slot permutation: out[j] = a[perm[j]] + b[perm[j]], one pass per limb.
pub(crate) fn add_permute(m: &[&Modulus], a: &RnsPoly, b: &RnsPoly, perm: &[u32]) -> RnsPoly {
    RnsPoly {
        limbs: a
            .limbs
            .par_iter()
            .zip(b.limbs.par_iter())
            .zip(m.par_iter())
            .map(|((a, b), m)| {
                let q = m.value;
                let mut out = take_buf(a.len());
                let rs = &mut out;
                simd(
                    #[inline(always)]
                    move || {
                        for (o, &k) in rs.iter_mut().zip(perm) {
                            let k = k as usize;
                            *o = add_mod(a[k], b[k], q);
                        }
                    },
                );
                out
            })
            .collect(),
    }
}

/// Inverse of [`permute`]: out[perm[j]] = in[j].
pub(crate) fn permute_inverse(p: &RnsPoly, perm: &[u32]) -> RnsPoly {
    RnsPoly {
        limbs: p
            .limbs
            .par_iter()
            .map(|l| {
                let mut out = vec![0u64; l.len()];
                perm.iter().zip(l).for_each(|(&k, &x)| out[k as usize] = x);
                out
            })
            .collect(),
    }
}

/// Fast basis conversion of coefficient-form residues from the `src` primes to one `dst` prime.
/// With a single source prime the lift is centred (exact); otherwise it is the usual approximate
/// conversion, off by a small multiple of the source product.
pub(crate) struct BasisConverter {
    src: Vec<u64>,
    /// (Q/s_i)^{-1} mod s_i.
    src_hat_inv: Vec<Shoup>,
    /// (Q/s_i) mod t for each destination t: dst x src.
    dst_hat: Vec<Vec<Shoup>>,
    /// Q mod t (for centring a single source).
    src_mod_dst: Vec<u64>,
    dst: Vec<u64>,
    /// Whether every prime is below [`F64_MODULUS`] (vectorised path for several sources).
    small: bool,
}

impl BasisConverter {
    pub(crate) fn new(src: &[u64], dst: &[u64]) -> Self {
        use crate::arith::{inv_mod, mul_mod};
        let hat_mod = |i: usize, t: u64| -> u64 {
            src.iter()
                .enumerate()
                .filter(|&(k, _)| k != i)
                .fold(1 % t, |acc, (_, &s)| mul_mod(acc, s % t, t))
        };
        let src_hat_inv = src
            .iter()
            .enumerate()
            .map(|(i, &s)| Shoup::new(inv_mod(hat_mod(i, s), s), s))
            .collect();
        let dst_hat = dst
            .iter()
            .map(|&t| {
                (0..src.len())
                    .map(|i| Shoup::new(hat_mod(i, t), t))
                    .collect()
            })
            .collect();
        let src_mod_dst = dst
            .iter()
            .map(|&t| src.iter().fold(1 % t, |acc, &s| mul_mod(acc, s % t, t)))
            .collect();
        let small = src.iter().chain(dst).all(|&q| q < F64_MODULUS);
        Self {
            src: src.to_vec(),
            src_hat_inv,
            dst_hat,
            src_mod_dst,
            dst: dst.to_vec(),
            small,
        }
    }

    /// First step of the conversion from several sources, shared by every destination:
    /// y_i = x_i · (Q/s_i)^{-1} mod s_i (pooled buffers).
    pub(crate) fn scale_sources(&self, src_limbs: &[&[u64]]) -> Vec<Vec<u64>> {
        src_limbs
            .iter()
            .zip(&self.src)
            .zip(&self.src_hat_inv)
            .map(|((limb, &s), hinv)| {
                let mut y = take_buf(limb.len());
                if self.small {
                    let (c, c_q) = (hinv.value(), hinv.value() as f64 / s as f64);
                    simd(
                        #[inline(always)]
                        || {
                            for (y, &x) in y.iter_mut().zip(limb.iter()) {
                                *y = mul_mod_f64(x, c, c_q, s);
                            }
                        },
                    );
                } else {
                    for (y, &x) in y.iter_mut().zip(limb.iter()) {
                        *y = hinv.mul(x, s);
                    }
                }
                y
            })
            .collect()
    }

    /// The multiple of Q that the sum of [`Self::combine_into`] exceeds [x]_Q by, for each
    /// coefficient: floor(Σ_i y_i / s_i), estimated in floating point (exact unless the sum
    /// lies within about 2^-50 of an integer, and then off by one).
    pub(crate) fn overflows(&self, ys: &[Vec<u64>]) -> Vec<u64> {
        let n = ys.first().map_or(0, Vec::len);
        let mut sum = vec![0f64; n];
        for (y, &s) in ys.iter().zip(&self.src) {
            let inv = 1.0 / s as f64;
            simd(
                #[inline(always)]
                || {
                    for (a, &y) in sum.iter_mut().zip(y.iter()) {
                        *a += y as i64 as f64 * inv;
                    }
                },
            );
        }
        let mut e = take_buf(n);
        simd(
            #[inline(always)]
            || {
                for (e, &a) in e.iter_mut().zip(&sum) {
                    *e = a.floor() as i64 as u64;
                }
            },
        );
        e
    }

    /// Q mod t_k.
    pub(crate) fn product_mod_dst(&self, k: usize) -> u64 {
        self.src_mod_dst[k]
    }

    /// Second step: out = Σ_i y_i · (Q/s_i) mod t_k, for the y_i of [`Self::scale_sources`].
    pub(crate) fn combine_into(&self, ys: &[Vec<u64>], k: usize, out: &mut [u64]) {
        let t = self.dst[k];
        out.iter_mut().for_each(|o| *o = 0);
        for (y, h) in ys.iter().zip(&self.dst_hat[k]) {
            if self.small {
                let (c, c_q) = (h.value(), h.value() as f64 / t as f64);
                simd(
                    #[inline(always)]
                    || {
                        for (o, &y) in out.iter_mut().zip(y.iter()) {
                            *o = add_mod(*o, mul_mod_f64(y, c, c_q, t), t);
                        }
                    },
                );
            } else {
                for (o, &y) in out.iter_mut().zip(y.iter()) {
                    // y < s may exceed t: reduce it first.
                    *o = add_mod(*o, h.mul(y % t, t), t);
                }
            }
        }
    }

    /// Converts the source limbs (coefficient form) into the destination limb `k`.
    pub(crate) fn convert_into(&self, src_limbs: &[&[u64]], k: usize, out: &mut [u64]) {
        let t = self.dst[k];
        if self.src.len() == 1 {
            let s = self.src[0];
            let half = s >> 1;
            let neg_s = sub_mod(0, self.src_mod_dst[k], t);
            let inv_t = 1.0 / t as f64;
            let src = src_limbs[0];
            // `move` closures: the constants are copied in, so the loops select between values
            // instead of conditionally loading through references.
            if s < t {
                simd(
                    #[inline(always)]
                    move || {
                        for (o, &x) in out.iter_mut().zip(src) {
                            *o = x + if x > half { neg_s } else { 0 };
                        }
                    },
                );
            } else {
                simd(
                    #[inline(always)]
                    move || {
                        for (o, &x) in out.iter_mut().zip(src) {
                            let r = reduce_any(x, t, inv_t);
                            *o = add_mod(r, if x > half { neg_s } else { 0 }, t);
                        }
                    },
                );
            }
            return;
        }
        let ys = self.scale_sources(src_limbs);
        self.combine_into(&ys, k, out);
        ys.into_iter().for_each(recycle);
    }
}

/// Divides by the product of the `drop` primes and rounds: given `a` over `keep ∪ drop` (NTT
/// form, keep limbs first), returns round(a / D) over `keep` (NTT form).
pub(crate) fn divide_round(
    params: &CkksParameters,
    keep: &[usize],
    drop: &[usize],
    a: &RnsPoly,
) -> RnsPoly {
    let nk = keep.len();
    let keep_m = mods(params, keep);
    let drop_m = mods(params, drop);
    let mut tail = RnsPoly {
        limbs: a.limbs[nk..].iter().map(|l| take_copy(l)).collect(),
    };
    ntt_inv(&drop_m, &mut tail);
    let src: Vec<u64> = drop_m.iter().map(|m| m.value).collect();
    let dst: Vec<u64> = keep_m.iter().map(|m| m.value).collect();
    let conv = BasisConverter::new(&src, &dst);
    let d_inv: Vec<u64> = dst
        .iter()
        .map(|&t| {
            let d = src
                .iter()
                .fold(1 % t, |acc, &s| crate::arith::mul_mod(acc, s % t, t));
            crate::arith::inv_mod(d, t)
        })
        .collect();
    let src_limbs: Vec<&[u64]> = tail.limbs.iter().map(Vec::as_slice).collect();
    let limbs = a.limbs[..nk]
        .par_iter()
        .enumerate()
        .map(|(k, al)| {
            let m = keep_m[k];
            let t = m.value;
            let mut r = take_buf(al.len());
            conv.convert_into(&src_limbs, k, &mut r);
            m.plan.fwd(&mut r);
            if t < F64_MODULUS {
                // r = (a - r) · D^{-1} in one pass.
                let (c, c_q) = (d_inv[k], d_inv[k] as f64 / t as f64);
                let rs = &mut r;
                simd(
                    #[inline(always)]
                    move || {
                        rs.iter_mut()
                            .zip(al)
                            .for_each(|(r, &x)| *r = mul_mod_f64(sub_mod(x, *r, t), c, c_q, t))
                    },
                );
                return r;
            }
            simd(
                #[inline(always)]
                || {
                    r.iter_mut()
                        .zip(al)
                        .for_each(|(r, &x)| *r = sub_mod(x, *r, t))
                },
            );
            let mut out = take_buf(al.len());
            mul_const_into(m, &mut out, &r, d_inv[k]);
            recycle(r);
            out
        })
        .collect();
    recycle_poly(tail);
    RnsPoly { limbs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_any_matches_remainder() {
        let moduli = [
            (1u64 << 20) + 7,
            67_108_879,
            2_147_483_659,
            (1u64 << 50) - 27,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for &t in &moduli {
            let inv_t = 1.0 / t as f64;
            let edges = [
                0,
                1,
                t - 1,
                t,
                t + 1,
                2 * t - 1,
                (1u64 << 62) - 1,
                (1u64 << 62) - t,
            ];
            for v in edges {
                assert_eq!(reduce_any(v, t, inv_t), v % t, "x = {v}, t = {t}");
            }
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = x >> 2;
                assert_eq!(reduce_any(v, t, inv_t), v % t, "x = {v}, t = {t}");
                let v = x >> (2 + x % 40);
                assert_eq!(reduce_any(v, t, inv_t), v % t, "x = {v}, t = {t}");
            }
        }
    }

    #[test]
    fn mul_mod_f64_matches_u128() {
        use crate::arith::mul_mod;
        let moduli = [
            (1u64 << 20) + 7,
            67_108_879,
            2_147_483_659,
            (1u64 << 50) - 27,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for &q in &moduli {
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (a, c) = (x % q, (x >> 7) % q);
                let a = if x & 1 == 0 { a } else { x % (1 << 50) };
                assert_eq!(mul_mod_f64(a, c, c as f64 / q as f64, q), mul_mod(a, c, q));
            }
        }
    }

    #[test]
    fn two_source_conversion_is_exact_up_to_one_multiple() {
        use crate::arith::mul_mod;
        let src = [67_108_879u64, 2_147_483_659];
        let dst = [1_073_741_827u64, 67_108_913];
        let conv = BasisConverter::new(&src, &dst);
        let big: u128 = u128::from(src[0]) * u128::from(src[1]);
        let vals: Vec<u128> = (0..64u128)
            .map(|i| (i * 0x1234_5678_9abc_def1) % big)
            .collect();
        let limbs: Vec<Vec<u64>> = src
            .iter()
            .map(|&s| vals.iter().map(|&v| (v % u128::from(s)) as u64).collect())
            .collect();
        let refs: Vec<&[u64]> = limbs.iter().map(Vec::as_slice).collect();
        let ys = conv.scale_sources(&refs);
        for (k, &t) in dst.iter().enumerate() {
            let mut out = vec![0u64; vals.len()];
            conv.combine_into(&ys, k, &mut out);
            for (o, &v) in out.iter().zip(&vals) {
                let exact = (v % u128::from(t)) as u64;
                let plus = (exact + (big % u128::from(t)) as u64) % t;
                assert!(*o == exact || *o == plus, "v = {v}, t = {t}");
            }
        }
        let _ = mul_mod(1, 1, 3);
    }
}
