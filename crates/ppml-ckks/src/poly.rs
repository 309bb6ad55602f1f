//! RNS polynomials: one residue vector ("limb") per prime, and the limb-parallel kernels built
//! on tfhe-ntt's NTT plans.

use rayon::prelude::*;
use zeroize::Zeroize;

use crate::arith::{add_mod, sub_mod, Modulus};
use crate::buffers::{recycle, take_buf, take_zeroed};
use crate::params::CkksParameters;
use crate::simd::{mul_const_into, simd};

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

/// Returns all limbs of a temporary polynomial to the pool.
pub(crate) fn recycle_poly(p: RnsPoly) {
    p.limbs.into_iter().for_each(recycle);
}
