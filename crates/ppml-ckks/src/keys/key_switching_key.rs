//! Hybrid key-switching keys (one RLWE pair per digit of `special.len()` chain primes, over the
//! chain and the special primes). A key may serve only ciphertexts up to some level: it then
//! holds the digits and limbs of the primes up to that level (and the special primes), which
//! makes keys used only deep in a circuit much smaller.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::arith::Shoup;
use crate::keys::SecretKey;
use crate::packed::PackedPoly;
use crate::params::CkksParameters;
use crate::poly::{self, mods, RnsPoly};
use crate::sampling;

/// Encryptions under s of P · g_j · s' for each digit j, where g_j is the CRT basis element of
/// digit j: b_j = -a_j s + e_j + P g_j s', a_j expanded from `seed` (stream j), over the primes
/// q_0..=q_level and the special primes (the other limbs are empty).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySwitchingKey {
    pub(crate) params: Arc<CkksParameters>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<PackedPoly>,
    pub(crate) a: Vec<PackedPoly>,
    /// The highest ciphertext level the key serves.
    pub(crate) level: usize,
}

impl KeySwitchingKey {
    /// Key switching from `from` (NTT form over all primes) to `sk`, for ciphertexts up to
    /// `level` (at most the top level).
    pub(crate) fn new<R: RngCore + CryptoRng>(
        sk: &SecretKey,
        from: &RnsPoly,
        level: usize,
        rng: &mut R,
    ) -> Self {
        let p = sk.params();
        let level = level.min(p.max_level());
        let idx = p.ext_indices(level);
        let m = mods(p, &idx);
        let seed = sampling::fresh_seed(rng);
        let digits = Self::digits_at(p, level);
        let alpha = p.digit_size();
        let s = zeroize::Zeroizing::new(sk.ntt.select(&idx));
        let errors: Vec<zeroize::Zeroizing<Vec<i64>>> = (0..digits)
            .map(|_| sampling::cbd_error(rng, p.degree()))
            .collect();
        let (b, a): (Vec<RnsPoly>, Vec<RnsPoly>) = errors
            .par_iter()
            .enumerate()
            .map(|(j, e)| {
                let a = sampling::uniform_from_seed(&seed, j as u64, &m, p.degree());
                let mut b = sampling::small_to_ntt(e, &m);
                let mut as_ = poly::mul(&m, &a, &s);
                poly::sub_assign(&m, &mut b, &as_);
                zeroize::Zeroize::zeroize(&mut as_);
                #[expect(
                    clippy::needless_range_loop,
                    reason = "i indexes limbs of several polynomials"
                )]
                // Chain prime i is limb i of the selection (it starts with q_0..=q_level).
                for i in (j * alpha)..((j + 1) * alpha).min(level + 1) {
                    let q = m[i].value;
                    let f = Shoup::new(p.special_product_mod(i), q);
                    b.limbs[i]
                        .iter_mut()
                        .zip(&from.limbs[i])
                        .for_each(|(x, &s)| {
                            *x = crate::arith::add_mod(*x, f.mul(s, q), q);
                        });
                }
                (b, a)
            })
            .unzip();
        Self {
            params: Arc::clone(p),
            seed,
            b: b.iter().map(|x| PackedPoly::pack_at(p, &idx, x)).collect(),
            a: a.iter().map(|x| PackedPoly::pack_at(p, &idx, x)).collect(),
            level,
        }
    }

    /// Digits of a key serving ciphertexts up to `level`.
    pub(crate) fn digits_at(params: &CkksParameters, level: usize) -> usize {
        level / params.digit_size() + 1
    }

    /// Re-expands the `a` parts from the seed (used by the deserialiser).
    pub(crate) fn expand_a(
        params: &CkksParameters,
        seed: &[u8; 32],
        level: usize,
    ) -> Vec<PackedPoly> {
        let idx = params.ext_indices(level);
        let m = mods(params, &idx);
        (0..Self::digits_at(params, level))
            .into_par_iter()
            .map(|j| {
                let a = sampling::uniform_from_seed(seed, j as u64, &m, params.degree());
                PackedPoly::pack_at(params, &idx, &a)
            })
            .collect()
    }

    /// Replaces every key polynomial k by σ^{-1}(k) for the slot permutation of σ.
    pub(crate) fn enter_rotated_frame(&mut self, perm: &[u32]) {
        let params = Arc::clone(&self.params);
        for k in self.b.iter_mut().chain(self.a.iter_mut()) {
            *k = PackedPoly::pack(&params, &poly::permute_inverse(&k.unpack(), perm));
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }
}
