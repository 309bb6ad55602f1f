//! Hybrid key switching: decomposition into digits raised to the special basis (ModUp), inner
//! product with a key, and division by the special modulus (ModDown).

use rayon::prelude::*;

use crate::keys::KeySwitchingKey;
use crate::params::CkksParameters;
use crate::poly::{divide_round, mods, ntt_inv, BasisConverter, RnsPoly};

/// A polynomial decomposed into digits, each raised to the primes of its level plus the special
/// primes (NTT form). One decomposition serves many rotations (hoisting). A digit's limbs at its
/// own primes are left empty: they equal the decomposed polynomial's, kept in `source`.
#[derive(Debug, Clone)]
pub(crate) struct Decomposition {
    pub(crate) level: usize,
    pub(crate) source: RnsPoly,
    pub(crate) digits: Vec<RnsPoly>,
}

impl Decomposition {
    /// Returns the digits' buffers to the pool.
    pub(crate) fn recycle(self) {
        self.digits.into_iter().for_each(crate::poly::recycle_poly);
    }
}

/// ModUp of `d` (NTT form over q_0..=q_level).
pub(crate) fn decompose(params: &CkksParameters, level: usize, d: &RnsPoly) -> Decomposition {
    let alpha = params.digit_size();
    let ext = params.ext_indices(level);
    let ext_m = mods(params, &ext);
    let chain_idx: Vec<usize> = (0..=level).collect();
    let mut coef = d.clone();
    ntt_inv(&mods(params, &chain_idx), &mut coef);
    let ndig = (level + 1).div_ceil(alpha);
    let dst: Vec<u64> = ext_m.iter().map(|m| m.value).collect();
    let ranges: Vec<(usize, usize)> = (0..ndig)
        .map(|j| (j * alpha, (j * alpha + alpha).min(level + 1)))
        .collect();
    let convs: Vec<BasisConverter> = ranges
        .iter()
        .map(|&(lo, hi)| BasisConverter::new(&params.chain()[lo..hi], &dst))
        .collect();
    // One task per destination prime running through all digits, so that prime's NTT tables
    // stay in cache.
    let by_prime: Vec<Vec<Vec<u64>>> = ext
        .par_iter()
        .enumerate()
        .map(|(k, &mi)| {
            ranges
                .iter()
                .zip(&convs)
                .map(|(&(lo, hi), conv)| {
                    if (lo..hi).contains(&mi) {
                        // The digit's own limbs equal d's: left empty and read from d.
                        Vec::new()
                    } else {
                        let src_limbs: Vec<&[u64]> =
                            coef.limbs[lo..hi].iter().map(Vec::as_slice).collect();
                        let mut r = crate::poly::take_buf(params.degree());
                        conv.convert_into(&src_limbs, k, &mut r);
                        ext_m[k].plan.fwd(&mut r);
                        r
                    }
                })
                .collect()
        })
        .collect();
    let mut digits: Vec<RnsPoly> = (0..ndig)
        .map(|_| RnsPoly {
            limbs: Vec::with_capacity(ext.len()),
        })
        .collect();
    for limbs in by_prime {
        for (digit, limb) in digits.iter_mut().zip(limbs) {
            digit.limbs.push(limb);
        }
    }
    crate::poly::recycle_poly(coef);
    Decomposition {
        level,
        source: d.clone(),
        digits,
    }
}

/// Σ_j digit_j ⊙ (b_j, a_j) over the extended basis.
pub(crate) fn inner_product(
    params: &CkksParameters,
    dec: &Decomposition,
    key: &KeySwitchingKey,
) -> (RnsPoly, RnsPoly) {
    let ext = params.ext_indices(dec.level);
    let (l0, l1): (Vec<Vec<u64>>, Vec<Vec<u64>>) = ext
        .par_iter()
        .enumerate()
        .map(|(k, &mi)| {
            let limbs: Vec<&[u64]> = dec
                .digits
                .iter()
                .map(|digit| {
                    let limb = &digit.limbs[k];
                    if limb.is_empty() {
                        dec.source.limbs[k].as_slice()
                    } else {
                        limb.as_slice()
                    }
                })
                .collect();
            accumulate(params, mi, &limbs, key)
        })
        .unzip();
    (RnsPoly { limbs: l0 }, RnsPoly { limbs: l1 })
}

/// Limbs processed at once by [`accumulate`]: the two accumulator chunks stay in L1 while the
/// digits and the key stream through.
const CHUNK: usize = 512;

/// (Σ_j limbs_j ⊙ b_j, Σ_j limbs_j ⊙ a_j) at the prime `mi` (pooled buffers).
fn accumulate(
    params: &CkksParameters,
    mi: usize,
    limbs: &[&[u64]],
    key: &KeySwitchingKey,
) -> (Vec<u64>, Vec<u64>) {
    let n = params.degree();
    let plan = &params.moduli[mi].plan;
    let mut acc0 = crate::poly::take_zeroed(n);
    let mut acc1 = crate::poly::take_zeroed(n);
    for (c, (a0, a1)) in acc0
        .chunks_mut(CHUNK)
        .zip(acc1.chunks_mut(CHUNK))
        .enumerate()
    {
        let r = c * CHUNK..c * CHUNK + a0.len();
        for (j, limb) in limbs.iter().enumerate() {
            let x = &limb[r.clone()];
            plan.mul_accumulate(a0, x, &key.b[j].limbs[mi][r.clone()]);
            plan.mul_accumulate(a1, x, &key.a[j].limbs[mi][r.clone()]);
        }
    }
    (acc0, acc1)
}

/// Decomposition and inner product at once, without keeping the digits: each destination prime
/// raises, transforms and multiplies in every digit while its limb is in cache.
fn decompose_product(
    params: &CkksParameters,
    level: usize,
    d: &RnsPoly,
    key: &KeySwitchingKey,
) -> (RnsPoly, RnsPoly) {
    let alpha = params.digit_size();
    let ext = params.ext_indices(level);
    let ext_m = mods(params, &ext);
    let chain_idx: Vec<usize> = (0..=level).collect();
    let mut coef = RnsPoly {
        limbs: d.limbs[..=level]
            .iter()
            .map(|l| crate::poly::take_copy(l))
            .collect(),
    };
    ntt_inv(&mods(params, &chain_idx), &mut coef);
    let ndig = (level + 1).div_ceil(alpha);
    let dst: Vec<u64> = ext_m.iter().map(|m| m.value).collect();
    let ranges: Vec<(usize, usize)> = (0..ndig)
        .map(|j| (j * alpha, (j * alpha + alpha).min(level + 1)))
        .collect();
    let convs: Vec<BasisConverter> = ranges
        .iter()
        .map(|&(lo, hi)| BasisConverter::new(&params.chain()[lo..hi], &dst))
        .collect();
    let (l0, l1): (Vec<Vec<u64>>, Vec<Vec<u64>>) = ext
        .par_iter()
        .enumerate()
        .map(|(k, &mi)| {
            let raised: Vec<Option<Vec<u64>>> = ranges
                .iter()
                .zip(&convs)
                .map(|(&(lo, hi), conv)| {
                    if (lo..hi).contains(&mi) {
                        None
                    } else {
                        let src_limbs: Vec<&[u64]> =
                            coef.limbs[lo..hi].iter().map(Vec::as_slice).collect();
                        let mut r = crate::poly::take_buf(params.degree());
                        conv.convert_into(&src_limbs, k, &mut r);
                        ext_m[k].plan.fwd(&mut r);
                        Some(r)
                    }
                })
                .collect();
            let limbs: Vec<&[u64]> = raised
                .iter()
                .map(|r| match r {
                    Some(r) => r.as_slice(),
                    // The digit's own limb equals d's.
                    None => d.limbs[k].as_slice(),
                })
                .collect();
            let out = accumulate(params, mi, &limbs, key);
            raised.into_iter().flatten().for_each(crate::poly::recycle);
            out
        })
        .unzip();
    crate::poly::recycle_poly(coef);
    (RnsPoly { limbs: l0 }, RnsPoly { limbs: l1 })
}

/// ModDown: divides an extended-basis pair by P.
pub(crate) fn mod_down(
    params: &CkksParameters,
    level: usize,
    pair: &(RnsPoly, RnsPoly),
) -> (RnsPoly, RnsPoly) {
    let keep: Vec<usize> = (0..=level).collect();
    let drop: Vec<usize> = params.special_indices().collect();
    rayon::join(
        || divide_round(params, &keep, &drop, &pair.0),
        || divide_round(params, &keep, &drop, &pair.1),
    )
}

/// Full key switch of `d` at `level`: returns (u_0, u_1) with u_0 + u_1 s ≈ d s'.
pub(crate) fn key_switch(
    params: &CkksParameters,
    level: usize,
    d: &RnsPoly,
    key: &KeySwitchingKey,
) -> (RnsPoly, RnsPoly) {
    let acc = decompose_product(params, level, d, key);
    let out = mod_down(params, level, &acc);
    crate::poly::recycle_poly(acc.0);
    crate::poly::recycle_poly(acc.1);
    out
}
