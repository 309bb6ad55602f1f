//! Hybrid key switching: decomposition into digits raised to the special basis (ModUp), inner
//! product with a key, and division by the special modulus (ModDown).

use rayon::prelude::*;

use crate::basis::{divide_round, BasisConverter};
use crate::keys::KeySwitchingKey;
use crate::packed::{PackedLimb, NARROW_PRIME};
use crate::params::CkksParameters;
use crate::poly::{mods, ntt_inv, RnsPoly};

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

/// The digits of a key switch at `level`: ranges of `alpha` primes of q_0..=q_level, each with
/// the converter that raises it to every prime of the extended basis.
struct Digits<'a> {
    /// Indices of the extended basis' primes (q_0..=q_level, then the special primes).
    ext: Vec<usize>,
    /// Their moduli.
    ext_m: Vec<&'a crate::arith::Modulus>,
    /// Each digit's primes, `lo..hi` in the chain.
    ranges: Vec<(usize, usize)>,
    /// Each digit's basis converter to `ext`.
    convs: Vec<BasisConverter>,
}

impl<'a> Digits<'a> {
    fn new(params: &'a CkksParameters, level: usize) -> Self {
        let alpha = params.digit_size();
        let ext = params.ext_indices(level);
        let ext_m = mods(params, &ext);
        let dst: Vec<u64> = ext_m.iter().map(|m| m.value).collect();
        let ranges: Vec<(usize, usize)> = (0..(level + 1).div_ceil(alpha))
            .map(|j| (j * alpha, (j * alpha + alpha).min(level + 1)))
            .collect();
        let convs = ranges
            .iter()
            .map(|&(lo, hi)| BasisConverter::new(&params.chain()[lo..hi], &dst))
            .collect();
        Self {
            ext,
            ext_m,
            ranges,
            convs,
        }
    }
}

/// `d`'s limbs q_0..=q_level in coefficient form (pooled buffers), the digits' source.
fn coefficients(params: &CkksParameters, level: usize, d: &RnsPoly) -> RnsPoly {
    let mut coef = RnsPoly {
        limbs: d.limbs[..=level]
            .iter()
            .map(|l| crate::buffers::take_copy(l))
            .collect(),
    };
    ntt_inv(&mods(params, &(0..=level).collect::<Vec<_>>()), &mut coef);
    coef
}

/// ModUp of `d` (NTT form over q_0..=q_level).
pub(crate) fn decompose(params: &CkksParameters, level: usize, d: &RnsPoly) -> Decomposition {
    let coef = coefficients(params, level, d);
    let Digits {
        ext,
        ext_m,
        ranges,
        convs,
    } = Digits::new(params, level);
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
                        let mut r = crate::buffers::take_buf(params.degree());
                        conv.convert_into(&src_limbs, k, &mut r);
                        ext_m[k].plan.fwd(&mut r);
                        r
                    }
                })
                .collect()
        })
        .collect();
    let mut digits: Vec<RnsPoly> = (0..ranges.len())
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
    if plan.modulus() < NARROW_PRIME {
        return accumulate_small(params, mi, limbs, key);
    }
    let mut acc0 = crate::buffers::take_zeroed(n);
    let mut acc1 = crate::buffers::take_zeroed(n);
    for (c, (a0, a1)) in acc0
        .chunks_mut(CHUNK)
        .zip(acc1.chunks_mut(CHUNK))
        .enumerate()
    {
        let r = c * CHUNK..c * CHUNK + a0.len();
        for (j, limb) in limbs.iter().enumerate() {
            let x = &limb[r.clone()];
            plan.mul_accumulate(a0, x, &wide(&key.b[j].limbs[mi])[r.clone()]);
            plan.mul_accumulate(a1, x, &wide(&key.a[j].limbs[mi])[r.clone()]);
        }
    }
    (acc0, acc1)
}

/// The limb of a prime of at least [`NARROW_PRIME`] (stored in 64 bits).
fn wide(l: &PackedLimb) -> &[u64] {
    match l {
        PackedLimb::Wide(v) => v,
        // Not reached: narrow limbs belong to primes below NARROW_PRIME, which take
        // accumulate_small. An empty slice would fail loudly on indexing.
        PackedLimb::Narrow(_) => &[],
    }
}

/// The limb of a prime below [`NARROW_PRIME`] (stored in 32 bits).
fn narrow(l: &PackedLimb) -> &[u32] {
    match l {
        PackedLimb::Narrow(v) => v,
        PackedLimb::Wide(_) => &[],
    }
}

/// [`accumulate`] for a prime q < 2^31 with lazy reduction: each product (< 2^62) is added
/// exactly into two 64-bit sums, of its low and its high 32 bits, and every coefficient is
/// reduced once at the end (hi · 2^32 + lo mod q) instead of once per product.
fn accumulate_small(
    params: &CkksParameters,
    mi: usize,
    limbs: &[&[u64]],
    key: &KeySwitchingKey,
) -> (Vec<u64>, Vec<u64>) {
    use crate::simd::{reduce_any, simd};
    const LOW: u64 = 0xFFFF_FFFF;
    let n = params.degree();
    let q = params.moduli[mi].value;
    let inv_q = 1.0 / q as f64;
    let r32 = (1u64 << 32) % q;
    let mut acc0 = crate::buffers::take_buf(n);
    let mut acc1 = crate::buffers::take_buf(n);
    // Sums: low and high halves for each accumulator. With at most 2^30 digits they stay below
    // 2^62, and hi mod q · 2^32 + lo below 2^63, as reduce_any requires.
    let mut sums = vec![0u64; 4 * CHUNK];
    for (c, (a0, a1)) in acc0
        .chunks_mut(CHUNK)
        .zip(acc1.chunks_mut(CHUNK))
        .enumerate()
    {
        let len = a0.len();
        let r = c * CHUNK..c * CHUNK + len;
        let (lo0, rest) = sums.split_at_mut(CHUNK);
        let (hi0, rest) = rest.split_at_mut(CHUNK);
        let (lo1, hi1) = rest.split_at_mut(CHUNK);
        let (lo0, hi0, lo1, hi1) = (
            &mut lo0[..len],
            &mut hi0[..len],
            &mut lo1[..len],
            &mut hi1[..len],
        );
        for v in [&mut *lo0, &mut *hi0, &mut *lo1, &mut *hi1] {
            v.iter_mut().for_each(|x| *x = 0);
        }
        for (j, limb) in limbs.iter().enumerate() {
            let x = &limb[r.clone()];
            let b = &narrow(&key.b[j].limbs[mi])[r.clone()];
            let a = &narrow(&key.a[j].limbs[mi])[r.clone()];
            let (lo0, hi0, lo1, hi1) = (&mut *lo0, &mut *hi0, &mut *lo1, &mut *hi1);
            simd(
                #[inline(always)]
                move || {
                    for ((((&x, &b), &a), (l0, h0)), (l1, h1)) in x
                        .iter()
                        .zip(b)
                        .zip(a)
                        .zip(lo0.iter_mut().zip(hi0.iter_mut()))
                        .zip(lo1.iter_mut().zip(hi1.iter_mut()))
                    {
                        // Operands are below 2^31: 32 x 32 -> 64-bit products.
                        let x = x & LOW;
                        let p0 = x * u64::from(b);
                        let p1 = x * u64::from(a);
                        *l0 = l0.wrapping_add(p0 & LOW);
                        *h0 = h0.wrapping_add(p0 >> 32);
                        *l1 = l1.wrapping_add(p1 & LOW);
                        *h1 = h1.wrapping_add(p1 >> 32);
                    }
                },
            );
        }
        for (out, lo, hi) in [(&mut *a0, &*lo0, &*hi0), (&mut *a1, &*lo1, &*hi1)] {
            simd(
                #[inline(always)]
                move || {
                    for (o, (&l, &h)) in out.iter_mut().zip(lo.iter().zip(hi)) {
                        let h = reduce_any(h, q, inv_q);
                        *o = reduce_any(h * r32 + l, q, inv_q);
                    }
                },
            );
        }
    }
    (acc0, acc1)
}

/// Decomposition and inner product at once, without keeping the digits: each destination prime
/// raises, transforms and multiplies in every digit while its limb is in cache.
pub(crate) fn decompose_product(
    params: &CkksParameters,
    level: usize,
    d: &RnsPoly,
    key: &KeySwitchingKey,
) -> (RnsPoly, RnsPoly) {
    let coef = coefficients(params, level, d);
    let Digits {
        ext,
        ext_m,
        ranges,
        convs,
    } = Digits::new(params, level);
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
                        let mut r = crate::buffers::take_buf(params.degree());
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
            raised
                .into_iter()
                .flatten()
                .for_each(crate::buffers::recycle);
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

/// ModDown and rescale at once. Given the extended-basis accumulator `acc` of a key switch at
/// `level` (NTT form, chain limbs then special limbs) and the polynomial `c` over q_0..=q_level
/// it is to be added to, returns round((c·P + acc) / (q_level·P)) over q_0..q_{level-1} (NTT
/// form): that is, rescale(c + ModDown(acc)) up to a rounding difference of at most one, with
/// one basis conversion from {q_level} ∪ special instead of one for ModDown and one for the
/// rescale.
pub(crate) fn mod_down_rescale(
    params: &CkksParameters,
    level: usize,
    acc: &RnsPoly,
    c: &RnsPoly,
) -> RnsPoly {
    use crate::arith::{add_mod, inv_mod, mul_mod, sub_mod};
    use crate::buffers::{recycle, take_buf, take_copy};
    use crate::simd::{mul_const_acc, mul_mod_f64, simd};
    let n = params.degree();
    let ml = &params.moduli[level];
    let special: Vec<usize> = params.special_indices().collect();
    // Drop primes: q_level, then the special ones; D is their product.
    let drop_q: Vec<u64> = std::iter::once(ml.value)
        .chain(special.iter().map(|&i| params.moduli[i].value))
        .collect();
    let keep_q: Vec<u64> = params.chain()[..level].to_vec();
    // (c·P + acc) at the drop primes, in coefficient form, plus D/2 (for rounding).
    let mut drop_limbs: Vec<Vec<u64>> = Vec::with_capacity(drop_q.len());
    let mut top = take_copy(&acc.limbs[level]);
    mul_const_acc(
        ml,
        &mut top,
        &c.limbs[level],
        params.special_product_mod(level),
    );
    drop_limbs.push(top);
    for k in 0..special.len() {
        drop_limbs.push(take_copy(&acc.limbs[level + 1 + k]));
    }
    let half_d_mod = |t: u64| -> u64 {
        // floor(D/2) mod t = (D - 1)/2 for odd D: ((D mod t) - 1) · 2^{-1} mod t.
        let d = drop_q.iter().fold(1 % t, |a, &s| mul_mod(a, s % t, t));
        mul_mod(sub_mod(d, 1 % t, t), inv_mod(2, t), t)
    };
    drop_limbs
        .par_iter_mut()
        .zip(
            std::iter::once(level)
                .chain(special.iter().copied())
                .collect::<Vec<_>>(),
        )
        .for_each(|(l, mi)| {
            let m = &params.moduli[mi];
            m.plan.inv(l);
            m.plan.normalize(l);
            let (h, q) = (half_d_mod(m.value), m.value);
            simd(
                #[inline(always)]
                move || l.iter_mut().for_each(|x| *x = add_mod(*x, h, q)),
            );
        });
    let conv = BasisConverter::new(&drop_q, &keep_q);
    let refs: Vec<&[u64]> = drop_limbs.iter().map(Vec::as_slice).collect();
    let ys = conv.scale_sources(&refs);
    // The conversion is made exact by subtracting the overflow e·D it computes: an
    // approximate one would be off by -e ∈ {0, -1}, a bias that adds up to a visible error.
    let e = conv.overflows(&ys);
    let limbs = (0..level)
        .into_par_iter()
        .map(|k| {
            let m = &params.moduli[k];
            let t = m.value;
            let mut r = take_buf(n);
            conv.combine_into(&ys, k, &mut r);
            let h = half_d_mod(t);
            let d_t = conv.product_mod_dst(k);
            // r = [T + D/2]_D - D/2 at t (the sum minus e·D), then r = T_t - r with
            // T_t = acc_t + c_t·P.
            let (e, inv_t, rs) = (&e, 1.0 / t as f64, &mut r);
            // e is below the number of drop primes, so e·(D mod t) < 2^62.
            simd(
                #[inline(always)]
                move || {
                    rs.iter_mut().zip(e.iter()).for_each(|(x, &e)| {
                        let ed = crate::simd::reduce_any(e * d_t, t, inv_t);
                        *x = sub_mod(sub_mod(*x, h, t), ed, t)
                    })
                },
            );
            m.plan.fwd(&mut r);
            let (a, cl) = (&acc.limbs[k], &c.limbs[k]);
            let d = drop_q.iter().fold(1 % t, |a, &s| mul_mod(a, s % t, t));
            let d_inv = inv_mod(d, t);
            // out = (acc_t - r)·D^{-1} + c_t·P·D^{-1} = (acc_t - r)·D^{-1} + c_t·q_level^{-1}.
            let ql_inv = inv_mod(ml.value % t, t);
            if t < crate::simd::F64_MODULUS {
                // One pass: r = (acc_t - r)·D^{-1} + c_t·q_level^{-1}.
                let (d_q, ql_q) = (d_inv as f64 / t as f64, ql_inv as f64 / t as f64);
                let rs = &mut r;
                simd(
                    #[inline(always)]
                    move || {
                        for ((r, &a), &c) in rs.iter_mut().zip(a).zip(cl) {
                            let x = mul_mod_f64(sub_mod(a, *r, t), d_inv, d_q, t);
                            *r = add_mod(x, mul_mod_f64(c, ql_inv, ql_q, t), t);
                        }
                    },
                );
                return r;
            }
            simd(
                #[inline(always)]
                || {
                    r.iter_mut()
                        .zip(a)
                        .for_each(|(r, &a)| *r = sub_mod(a, *r, t))
                },
            );
            let mut out = take_buf(n);
            crate::simd::mul_const_into(m, &mut out, &r, d_inv);
            mul_const_acc(m, &mut out, cl, ql_inv);
            recycle(r);
            out
        })
        .collect();
    ys.into_iter().for_each(recycle);
    recycle(e);
    drop_limbs.into_iter().for_each(recycle);
    RnsPoly { limbs }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, SecretKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The lazy accumulation for small primes equals tfhe-ntt's reduced multiply-accumulate,
    /// on forward-NTT outputs (the digits it sees) and on extreme values.
    #[test]
    fn accumulate_small_matches_reference() {
        let params = Preset::N8192Depth6.build().expect("params");
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = SecretKey::generate_with_rng(&params, &mut rng);
        let rlk = sk.relinearization_key_with_rng(&mut rng);
        let key = &rlk.ksk;
        let n = params.degree();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for (mi, m) in params.moduli.iter().enumerate() {
            let q = m.value;
            assert!(
                q < NARROW_PRIME,
                "the preset's primes all take the lazy path"
            );
            let limbs: Vec<Vec<u64>> = (0..key.b.len())
                .map(|j| {
                    let mut v: Vec<u64> = (0..n)
                        .map(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            seed % q
                        })
                        .collect();
                    if j == 0 {
                        v.iter_mut().for_each(|x| *x = q - 1);
                    } else {
                        m.plan.fwd(&mut v);
                        assert!(v.iter().all(|&x| x < q), "NTT output is reduced");
                    }
                    v
                })
                .collect();
            let refs: Vec<&[u64]> = limbs.iter().map(Vec::as_slice).collect();
            let (got0, got1) = accumulate_small(&params, mi, &refs, key);
            let mut want0 = vec![0u64; n];
            let mut want1 = vec![0u64; n];
            for (j, l) in refs.iter().enumerate() {
                m.plan
                    .mul_accumulate(&mut want0, l, &key.b[j].unpack().limbs[mi]);
                m.plan
                    .mul_accumulate(&mut want1, l, &key.a[j].unpack().limbs[mi]);
            }
            assert_eq!(got0, want0, "prime {mi}");
            assert_eq!(got1, want1, "prime {mi}");
        }
    }

    /// The fused ModDown + rescale agrees with ModDown, addition and rescale done in turn, up
    /// to one unit per coefficient.
    #[test]
    fn mod_down_rescale_matches_two_steps() {
        let params = Preset::N8192Depth6.build().expect("params");
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sk = SecretKey::generate_with_rng(&params, &mut rng);
        let rlk = sk.relinearization_key_with_rng(&mut rng);
        let level = params.max_level();
        let chain: Vec<usize> = (0..=level).collect();
        let pk = sk.public_key_with_rng(&mut rng);
        let enc = crate::Encoder::new(&params);
        let pt = enc
            .encode(&[0.5, 0.25], level, params.scale())
            .expect("encode");
        let ct = pk.encrypt_with_rng(&pt, &mut rng).expect("encrypt");
        let ev = crate::Evaluator::new(&params);
        let t = ev.mul_no_relin(&ct, &ct).expect("mul");
        let (d, c) = (&t.polys[2], &t.polys[1]);
        let acc = decompose_product(&params, level, d, &rlk.ksk);
        let fused = mod_down_rescale(&params, level, &acc.1, c);
        let (_, mut u1) = mod_down(&params, level, &acc);
        crate::poly::add_assign(&mods(&params, &chain), &mut u1, c);
        let keep: Vec<usize> = (0..level).collect();
        let two = crate::basis::divide_round(&params, &keep, &[level], &u1);
        let mut f = fused.clone();
        let mut t = two.clone();
        ntt_inv(&mods(&params, &keep), &mut f);
        ntt_inv(&mods(&params, &keep), &mut t);
        for (k, (fl, tl)) in f.limbs.iter().zip(&t.limbs).enumerate() {
            let q = params.moduli[k].value;
            for (&a, &b) in fl.iter().zip(tl) {
                let diff = crate::arith::sub_mod(a, b, q);
                assert!(diff <= 1 || diff >= q - 1, "limb {k}: {a} vs {b}");
            }
        }
    }
}
