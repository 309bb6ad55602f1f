//! Hybrid key-switching keys (one RLWE pair per digit of `special.len()` chain primes, over the
//! chain and the special primes).

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::arith::Shoup;
use crate::keys::SecretKey;
use crate::params::CkksParameters;
use crate::poly::{self, mods, RnsPoly};
use crate::sampling;

/// Encryptions under s of P · g_j · s' for each digit j, where g_j is the CRT basis element of
/// digit j: b_j = -a_j s + e_j + P g_j s', a_j expanded from `seed` (stream j).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySwitchingKey {
    pub(crate) params: Arc<CkksParameters>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: Vec<RnsPoly>,
    pub(crate) a: Vec<RnsPoly>,
}

impl KeySwitchingKey {
    /// Key switching from `from` (NTT form over all primes) to `sk`.
    pub(crate) fn new<R: RngCore + CryptoRng>(sk: &SecretKey, from: &RnsPoly, rng: &mut R) -> Self {
        let p = sk.params();
        let all: Vec<usize> = (0..p.moduli.len()).collect();
        let m = mods(p, &all);
        let seed = sampling::fresh_seed(rng);
        let digits = p.digits();
        let alpha = p.digit_size();
        let chain_len = p.chain().len();
        let errors: Vec<zeroize::Zeroizing<Vec<i64>>> = (0..digits)
            .map(|_| sampling::cbd_error(rng, p.degree()))
            .collect();
        let (b, a): (Vec<RnsPoly>, Vec<RnsPoly>) = errors
            .par_iter()
            .enumerate()
            .map(|(j, e)| {
                let a = sampling::uniform_from_seed(&seed, j as u64, &m, p.degree());
                let mut b = sampling::small_to_ntt(e, &m);
                let mut as_ = poly::mul(&m, &a, &sk.ntt);
                poly::sub_assign(&m, &mut b, &as_);
                zeroize::Zeroize::zeroize(&mut as_);
                #[expect(
                    clippy::needless_range_loop,
                    reason = "i indexes limbs of several polynomials"
                )]
                for i in (j * alpha)..((j + 1) * alpha).min(chain_len) {
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
            b,
            a,
        }
    }

    /// Re-expands the `a` parts from the seed (used by the deserialiser).
    pub(crate) fn expand_a(params: &CkksParameters, seed: &[u8; 32]) -> Vec<RnsPoly> {
        let all: Vec<usize> = (0..params.moduli.len()).collect();
        let m = mods(params, &all);
        (0..params.digits())
            .into_par_iter()
            .map(|j| sampling::uniform_from_seed(seed, j as u64, &m, params.degree()))
            .collect()
    }

    /// Replaces every key polynomial k by σ^{-1}(k) for the slot permutation of σ.
    pub(crate) fn enter_rotated_frame(&mut self, perm: &[u32]) {
        for k in self.b.iter_mut().chain(self.a.iter_mut()) {
            *k = poly::permute_inverse(k, perm);
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }
}
