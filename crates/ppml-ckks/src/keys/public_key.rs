//! The public key.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};

use crate::ciphertext::Ciphertext;
use crate::error::Result;
use crate::keys::SecretKey;
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::poly::{self, mods, RnsPoly};
use crate::sampling;

/// A public key (b, a) = (-a s + e, a) over the chain and special primes; `a` is expanded from
/// a seed. Encryption works over the special primes too and then divides by their product, so a
/// fresh ciphertext's noise is about that of rounding, not v e + e_0 + e_1 s.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub(crate) params: Arc<CkksParameters>,
    pub(crate) seed: [u8; 32],
    pub(crate) b: RnsPoly,
    pub(crate) a: RnsPoly,
}

impl PublicKey {
    pub(crate) fn new<R: RngCore + CryptoRng>(sk: &SecretKey, rng: &mut R) -> Self {
        let p = sk.params();
        let idx: Vec<usize> = (0..p.moduli.len()).collect();
        let m = mods(p, &idx);
        let seed = sampling::fresh_seed(rng);
        let a = sampling::uniform_from_seed(&seed, 0, &m, p.degree());
        let e = sampling::cbd_error(rng, p.degree());
        let mut b = sampling::small_to_ntt(&e, &m);
        let mut as_ = poly::mul(&m, &a, &sk.ntt);
        poly::sub_assign(&m, &mut b, &as_);
        zeroize::Zeroize::zeroize(&mut as_);
        Self {
            params: Arc::clone(p),
            seed,
            b,
            a,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// Encrypts with the OS CSPRNG: (v b + e_0 + m, v a + e_1), v ternary.
    pub fn encrypt(&self, pt: &Plaintext) -> Result<Ciphertext> {
        let mut rng = sampling::os_rng()?;
        self.encrypt_with_rng(pt, &mut rng)
    }

    /// [`Self::encrypt`] with an explicit RNG.
    pub fn encrypt_with_rng<R: RngCore + CryptoRng>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let p = &self.params;
        CkksParameters::check_same(p, pt.params())?;
        let level = pt.level();
        let ext = p.ext_indices(level);
        let m = mods(p, &ext);
        let n = p.degree();
        let v = sampling::ternary(rng, n);
        let e0 = sampling::cbd_error(rng, n);
        let e1 = sampling::cbd_error(rng, n);
        let (mut v, (mut c0, mut c1)) = rayon::join(
            || sampling::small_to_ntt(&v, &m),
            || {
                rayon::join(
                    || sampling::small_to_ntt(&e0, &m),
                    || sampling::small_to_ntt(&e1, &m),
                )
            },
        );
        let b = self.b.select(&ext);
        let a = self.a.select(&ext);
        poly::mul_acc(&m, &mut c0, &v, &b);
        poly::mul_acc(&m, &mut c1, &v, &a);
        zeroize::Zeroize::zeroize(&mut v);
        let keep: Vec<usize> = (0..=level).collect();
        let drop: Vec<usize> = p.special_indices().collect();
        let (mut c0, c1) = rayon::join(
            || crate::basis::divide_round(p, &keep, &drop, &c0),
            || crate::basis::divide_round(p, &keep, &drop, &c1),
        );
        poly::add_assign(&mods(p, &keep), &mut c0, &pt.poly);
        Ok(Ciphertext::from_parts(
            Arc::clone(p),
            vec![c0, c1],
            level,
            pt.scale(),
        ))
    }
}
