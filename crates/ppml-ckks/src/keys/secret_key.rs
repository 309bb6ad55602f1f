//! The secret key.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::poly::{self, mods, RnsPoly};
use crate::sampling;

/// A uniform ternary secret key. Zeroised on drop; its `Debug` prints nothing secret; it has no
/// `PartialEq` and is never serialised by this crate.
pub struct SecretKey {
    params: Arc<CkksParameters>,
    /// Coefficients in {-1, 0, 1}.
    coeffs: Vec<i64>,
    /// NTT form over all primes (chain then special).
    pub(crate) ntt: RnsPoly,
}

impl Zeroize for SecretKey {
    fn zeroize(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize();
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("degree", &self.params.degree())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// Samples a secret key with the operating system's CSPRNG.
    pub fn generate(params: &Arc<CkksParameters>) -> Result<Self> {
        let mut rng = sampling::os_rng()?;
        Ok(Self::generate_with_rng(params, &mut rng))
    }

    /// Samples a secret key from the given cryptographic RNG.
    pub fn generate_with_rng<R: RngCore + CryptoRng>(
        params: &Arc<CkksParameters>,
        rng: &mut R,
    ) -> Self {
        let mut ternary = sampling::ternary(rng, params.degree());
        let coeffs = std::mem::take(&mut *ternary);
        let all: Vec<usize> = (0..params.moduli.len()).collect();
        let ntt = sampling::small_to_ntt(&coeffs, &mods(params, &all));
        Self {
            params: Arc::clone(params),
            coeffs,
            ntt,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// The secret's limbs at the given moduli indices (NTT form).
    pub(crate) fn limbs(&self, idx: &[usize]) -> zeroize::Zeroizing<RnsPoly> {
        zeroize::Zeroizing::new(self.ntt.select(idx))
    }

    /// Encrypts with the secret key (fresh noise only from one error polynomial). The mask is
    /// expanded from a seed, so the serialised ciphertext is half the size.
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
        CkksParameters::check_same(&self.params, pt.params())?;
        self.encrypt_message(pt.level(), pt.scale(), rng, |m, e| {
            let mut c0 = sampling::small_to_ntt(e, m);
            poly::add_assign(m, &mut c0, &pt.poly);
            c0
        })
    }

    /// Encodes real `values` (as [`Encoder::encode`](crate::Encoder::encode)) and encrypts them
    /// with the secret key in one step: the message and the error are added as integers before
    /// one NTT per prime, instead of one NTT each. Same ciphertext distribution as
    /// `encrypt(&encoder.encode(values, level, scale)?)`.
    pub fn encrypt_values(
        &self,
        encoder: &crate::Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext> {
        let mut rng = sampling::os_rng()?;
        self.encrypt_values_with_rng(encoder, values, level, scale, &mut rng)
    }

    /// [`Self::encrypt_values`] with an explicit RNG.
    pub fn encrypt_values_with_rng<R: RngCore + CryptoRng>(
        &self,
        encoder: &crate::Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let slots: Vec<crate::Complex> = values
            .iter()
            .map(|&r| crate::Complex::new(r, 0.0))
            .collect();
        self.encrypt_complex_values_with_rng(encoder, &slots, level, scale, rng)
    }

    /// [`Self::encrypt_values`] for complex slots.
    pub fn encrypt_complex_values(
        &self,
        encoder: &crate::Encoder,
        values: &[crate::Complex],
        level: usize,
        scale: f64,
    ) -> Result<Ciphertext> {
        let mut rng = sampling::os_rng()?;
        self.encrypt_complex_values_with_rng(encoder, values, level, scale, &mut rng)
    }

    /// [`Self::encrypt_complex_values`] with an explicit RNG.
    pub fn encrypt_complex_values_with_rng<R: RngCore + CryptoRng>(
        &self,
        encoder: &crate::Encoder,
        values: &[crate::Complex],
        level: usize,
        scale: f64,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        CkksParameters::check_same(&self.params, encoder.params())?;
        let mut coeffs = zeroize::Zeroizing::new(encoder.coefficients(values, level, scale)?);
        self.encrypt_message(level, scale, rng, |_, e| {
            coeffs
                .iter_mut()
                .zip(e)
                .for_each(|(c, &e)| *c += i128::from(e));
            encoder.poly_from_signed(&coeffs, level)
        })
    }

    /// `(m + e - a s, a)` with `a` expanded from a fresh seed; `message` turns the error
    /// polynomial (coefficients) into `m + e` in NTT form over the given primes.
    fn encrypt_message<R: RngCore + CryptoRng>(
        &self,
        level: usize,
        scale: f64,
        rng: &mut R,
        message: impl FnOnce(&[&crate::arith::Modulus], &[i64]) -> RnsPoly,
    ) -> Result<Ciphertext> {
        let p = &self.params;
        let idx: Vec<usize> = (0..=level).collect();
        let m = mods(p, &idx);
        let seed = sampling::fresh_seed(rng);
        let a = sampling::uniform_from_seed(&seed, 0, &m, p.degree());
        let e = sampling::cbd_error(rng, p.degree());
        let mut c0 = message(&m, &e);
        let s = self.limbs(&idx);
        let mut as_ = poly::mul(&m, &a, &s);
        poly::sub_assign(&m, &mut c0, &as_);
        as_.zeroize();
        let mut ct = Ciphertext::from_parts(Arc::clone(p), vec![c0, a], level, scale);
        ct.seed = Some(seed);
        Ok(ct)
    }

    /// Decrypts: c_0 + c_1 s (+ c_2 s^2).
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let p = &self.params;
        CkksParameters::check_same(p, ct.params())?;
        if !(2..=3).contains(&ct.size()) {
            return Err(CkksError::InvalidCiphertextSize {
                size: ct.size(),
                expected: 2,
            });
        }
        let level = ct.level();
        let idx: Vec<usize> = (0..=level).collect();
        let m = mods(p, &idx);
        let s = self.limbs(&idx);
        let mut acc = ct.polys[0].clone();
        let mut spow = s.clone();
        for (k, c) in ct.polys.iter().enumerate().skip(1) {
            if k > 1 {
                spow = zeroize::Zeroizing::new(poly::mul(&m, &spow, &s));
            }
            poly::mul_acc(&m, &mut acc, c, &spow);
        }
        spow.zeroize();
        Ok(Plaintext::from_parts(Arc::clone(p), acc, level, ct.scale()))
    }

    /// The public key, sampled with the operating system's CSPRNG.
    pub fn public_key(&self) -> Result<crate::PublicKey> {
        Ok(self.public_key_with_rng(&mut sampling::os_rng()?))
    }

    /// [`Self::public_key`] from the given cryptographic RNG.
    pub fn public_key_with_rng<R: RngCore + CryptoRng>(&self, rng: &mut R) -> crate::PublicKey {
        crate::PublicKey::new(self, rng)
    }

    /// The relinearisation key, sampled with the operating system's CSPRNG.
    pub fn relinearization_key(&self) -> Result<crate::RelinearizationKey> {
        Ok(self.relinearization_key_with_rng(&mut sampling::os_rng()?))
    }

    /// [`Self::relinearization_key`] from the given cryptographic RNG.
    pub fn relinearization_key_with_rng<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
    ) -> crate::RelinearizationKey {
        crate::RelinearizationKey::new(self, rng)
    }

    /// Galois keys for left rotations by each of `steps` (negative: right) and, if asked, for
    /// complex conjugation, sampled with the operating system's CSPRNG.
    pub fn galois_keys(&self, steps: &[i64], conjugate: bool) -> Result<crate::GaloisKeys> {
        Ok(self.galois_keys_with_rng(steps, conjugate, &mut sampling::os_rng()?))
    }

    /// [`Self::galois_keys`] from the given cryptographic RNG.
    pub fn galois_keys_with_rng<R: RngCore + CryptoRng>(
        &self,
        steps: &[i64],
        conjugate: bool,
        rng: &mut R,
    ) -> crate::GaloisKeys {
        let top = self.params().max_level();
        let steps: Vec<(i64, usize)> = steps.iter().map(|&s| (s, top)).collect();
        crate::GaloisKeys::new(self, &steps, conjugate, rng)
    }

    /// Galois keys for left rotations by `step` of ciphertexts up to `level`, for each
    /// `(step, level)`, and, if asked, for complex conjugation at every level. A key for level
    /// `l` holds `l / special_primes + 1` digits over `l + 1` chain primes and the special primes,
    /// so rotations used only deep in a circuit cost far less to send and hold.
    pub fn galois_keys_at_levels(
        &self,
        steps: &[(i64, usize)],
        conjugate: bool,
    ) -> Result<crate::GaloisKeys> {
        Ok(self.galois_keys_at_levels_with_rng(steps, conjugate, &mut sampling::os_rng()?))
    }

    /// [`Self::galois_keys_at_levels`] from the given cryptographic RNG.
    pub fn galois_keys_at_levels_with_rng<R: RngCore + CryptoRng>(
        &self,
        steps: &[(i64, usize)],
        conjugate: bool,
        rng: &mut R,
    ) -> crate::GaloisKeys {
        crate::GaloisKeys::new(self, steps, conjugate, rng)
    }
}
