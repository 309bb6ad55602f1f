//! Operations that treat the real and imaginary parts of the slots as two independent real
//! vectors (two values per slot: twice the batch for the same ciphertexts).
//!
//! The monomial X^{N/2} evaluates to the imaginary unit at every slot's root ζ^{5^j}
//! (ζ^{5^j N/2} = i^{5^j} = i since 5^j ≡ 1 mod 4), so multiplying by i is an exact polynomial
//! product: no noise, no level, no key.

use crate::arith::{add_mod, reduce_i128, Shoup};
use crate::ciphertext::Ciphertext;
use crate::embedding::Complex;
use crate::error::Result;
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::ops::arithmetic::scaled_int;
use crate::ops::Evaluator;
use crate::params::CkksParameters;
use crate::poly::{self, mods, RnsPoly};

impl Evaluator {
    /// X^{N/2} in NTT form over q_0..=q_level.
    fn imaginary_unit(&self, level: usize) -> RnsPoly {
        RnsPoly {
            limbs: self.imaginary_unit.limbs[..=level].to_vec(),
        }
    }

    /// Multiplies every slot by the imaginary unit i (exact; scale and level unchanged).
    pub fn mul_by_i(&self, a: &Ciphertext) -> Result<Ciphertext> {
        CkksParameters::check_same(&self.params, a.params())?;
        let unit = self.imaginary_unit(a.level());
        let m = mods(&self.params, &(0..=a.level()).collect::<Vec<_>>());
        let mut out = a.clone();
        for p in out.polys_mut() {
            *p = poly::mul(&m, p, &unit);
        }
        Ok(out)
    }

    /// Adds the complex constant `c` to every slot.
    pub fn add_complex_scalar(&self, a: &Ciphertext, c: Complex) -> Result<Ciphertext> {
        CkksParameters::check_same(&self.params, a.params())?;
        let (re, im) = (scaled_int(c.re, a.scale())?, scaled_int(c.im, a.scale())?);
        let level = a.level();
        let unit = self.imaginary_unit(level);
        let mut out = a.clone();
        let chain = self.params.chain();
        for ((l, u), &q) in out.polys_mut()[0]
            .limbs
            .iter_mut()
            .zip(&unit.limbs)
            .zip(chain)
        {
            // re + im · X^{N/2} is re + im · u_k at NTT slot k.
            let re = reduce_i128(re, q);
            let im = Shoup::new(reduce_i128(im, q), q);
            for (x, &u) in l.iter_mut().zip(u) {
                *x = add_mod(*x, add_mod(re, im.mul(u, q), q), q);
            }
        }
        Ok(out)
    }

    /// For `z = x + i y` slot-wise, an encryption of `x^2 + i y^2` (each part squared on its
    /// own), relinearised and rescaled: one level, one conjugation and one relinearisation.
    /// `gk` must hold the conjugation key.
    pub fn square_real_imag(
        &self,
        z: &Ciphertext,
        rlk: &RelinearizationKey,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let p = self.relinearize(&self.square_real_imag_no_relin(z, gk)?, rlk)?;
        self.rescale(&p)
    }

    /// [`Self::square_real_imag`] without relinearisation or rescaling: a 3-polynomial
    /// ciphertext at `z`'s level (linear combinations of several such products relinearise
    /// once, after a rescale if wished).
    ///
    /// With `z̄` the conjugate, `4 (x^2 + i y^2) = (1 - i)(z^2 + z̄^2) + 2 (1 + i) z z̄`; the
    /// factor 4 goes into the recorded scale (exact).
    pub fn square_real_imag_no_relin(&self, z: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext> {
        self.square_real_imag_with_conjugate(z, &self.conjugate(z, gk)?)
    }

    /// [`Self::square_real_imag_no_relin`] given `zc`, an encryption of the conjugate of `z`
    /// at the same level and scale: no key switch. Conjugation commutes with real linear maps,
    /// so a map's conjugated outputs can come from its conjugated inputs, which is cheaper when
    /// the map has many more outputs than inputs.
    pub fn square_real_imag_with_conjugate(
        &self,
        z: &Ciphertext,
        zc: &Ciphertext,
    ) -> Result<Ciphertext> {
        let a = self.add(&self.mul_no_relin(z, z)?, &self.mul_no_relin(zc, zc)?)?;
        let b2 = self.mul_integer(&self.mul_no_relin(z, zc)?, 2)?;
        // (1 - i) a + (1 + i) b2 = (a + b2) + i (b2 - a)
        let mut p = self.add(&self.add(&a, &b2)?, &self.mul_by_i(&self.sub(&b2, &a)?)?)?;
        p.set_scale(p.scale() * 4.0);
        Ok(p)
    }
}
