//! RNS basis conversion, and division by a product of primes with rounding (rescaling and the
//! last step of key switching).

use rayon::prelude::*;

use crate::arith::{add_mod, sub_mod, Shoup};
use crate::buffers::{recycle, take_buf, take_copy};
use crate::params::CkksParameters;
use crate::poly::{mods, ntt_inv, recycle_poly, RnsPoly};
use crate::simd::{mul_const_into, mul_mod_f64, reduce_any, simd, F64_MODULUS};

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
    fn two_source_conversion_is_exact_up_to_one_multiple() {
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
    }
}
