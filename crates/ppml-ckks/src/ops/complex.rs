//! Operations that treat the real and imaginary parts of the slots as two independent real
//! vectors (two values per slot: twice the batch for the same ciphertexts).
//!
//! The monomial X^{N/2} evaluates to the imaginary unit at every slot's root ζ^{5^j}
//! (ζ^{5^j N/2} = i^{5^j} = i since 5^j ≡ 1 mod 4), so multiplying by i is an exact polynomial
//! product: no noise, no level, no key.

use crate::ciphertext::Ciphertext;
use crate::encoding::Complex;
use crate::error::Result;
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::ops::arithmetic::scaled_int;
use crate::ops::Evaluator;
use crate::params::CkksParameters;
use crate::poly::{self, mods, RnsPoly};

impl Evaluator {
    /// X^{N/2} in NTT form over q_0..=q_level.
    fn imaginary_unit(&self, level: usize) -> RnsPoly {
        let idx: Vec<usize> = (0..=level).collect();
        let n = self.params.degree();
        let limbs = mods(&self.params, &idx)
            .iter()
            .map(|m| {
                let mut l = vec![0u64; n];
                l[n / 2] = 1;
                m.plan.fwd(&mut l);
                l
            })
            .collect();
        RnsPoly { limbs }
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
            let (re, im) = (
                crate::arith::reduce_i128(re, q),
                crate::arith::reduce_i128(im, q),
            );
            for (x, &u) in l.iter_mut().zip(u) {
                let v = crate::arith::add_mod(re, crate::arith::mul_mod(im, u, q), q);
                *x = crate::arith::add_mod(*x, v, q);
            }
        }
        Ok(out)
    }

    /// For `z = x + i y` slot-wise, an encryption of `x^2 + i y^2` (each part squared on its
    /// own), relinearised and rescaled: one level, one conjugation and one relinearisation.
    ///
    /// With `z̄` the conjugate, `4 (x^2 + i y^2) = (1 - i)(z^2 + z̄^2) + 2 (1 + i) z z̄`; the three
    /// products are summed before one relinearisation and the factor 4 goes into the recorded
    /// scale (exact). `gk` must hold the conjugation key.
    pub fn square_real_imag(
        &self,
        z: &Ciphertext,
        rlk: &RelinearizationKey,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let zc = self.conjugate(z, gk)?;
        let a = self.add(&self.mul_no_relin(z, z)?, &self.mul_no_relin(&zc, &zc)?)?;
        let b2 = self.mul_integer(&self.mul_no_relin(z, &zc)?, 2)?;
        // (1 - i) a + (1 + i) b2 = (a + b2) + i (b2 - a)
        let sum = self.add(&self.add(&a, &b2)?, &self.mul_by_i(&self.sub(&b2, &a)?)?)?;
        let mut p = self.relinearize(&sum, rlk)?;
        p.set_scale(p.scale() * 4.0);
        self.rescale(&p)
    }
}
