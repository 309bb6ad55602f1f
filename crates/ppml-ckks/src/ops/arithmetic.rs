//! Additions, multiplications, relinearisation, rescaling and level management.

use std::sync::Arc;

use crate::arith::reduce_i128;
use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::keys::RelinearizationKey;
use crate::ops::keyswitch::{decompose_product, key_switch, mod_down_rescale};
use crate::ops::Evaluator;
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::poly::{self, mods, RnsPoly};

pub(crate) fn scales_match(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl Evaluator {
    fn check(&self, ct: &Ciphertext) -> Result<()> {
        CkksParameters::check_same(&self.params, ct.params())
    }

    fn chain_mods(&self, level: usize) -> Vec<&crate::arith::Modulus> {
        let idx: Vec<usize> = (0..=level).collect();
        mods(&self.params, &idx)
    }

    /// Brings `ct` down to `level` by dropping primes (exact; scale unchanged).
    pub fn drop_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.check(ct)?;
        let mut out = ct.clone();
        out.drop_to_level(level)?;
        Ok(out)
    }

    /// `a` and `b` at the lower of their levels (borrowed when already there).
    fn matched<'a>(
        &self,
        a: &'a Ciphertext,
        b: &'a Ciphertext,
    ) -> Result<(
        std::borrow::Cow<'a, Ciphertext>,
        std::borrow::Cow<'a, Ciphertext>,
    )> {
        use std::borrow::Cow;
        self.check(a)?;
        self.check(b)?;
        let level = a.level().min(b.level());
        let at = |c: &'a Ciphertext| -> Result<Cow<'a, Ciphertext>> {
            if c.level() == level {
                Ok(Cow::Borrowed(c))
            } else {
                Ok(Cow::Owned(self.drop_to_level(c, level)?))
            }
        };
        Ok((at(a)?, at(b)?))
    }

    fn add_sub(&self, a: &Ciphertext, b: &Ciphertext, sub: bool) -> Result<Ciphertext> {
        if !scales_match(a.scale(), b.scale()) {
            return Err(CkksError::ScaleMismatch {
                left: a.scale(),
                right: b.scale(),
            });
        }
        let (a, b) = self.matched(a, b)?;
        let mut a = a.into_owned();
        let m = self.chain_mods(a.level());
        let size = a.size().max(b.size());
        let n = self.params.degree();
        let limbs = a.level() + 1;
        let polys = a.polys_mut();
        while polys.len() < size {
            polys.push(RnsPoly::zero(n, limbs));
        }
        for (x, y) in polys.iter_mut().zip(&b.polys) {
            if sub {
                poly::sub_assign(&m, x, y);
            } else {
                poly::add_assign(&m, x, y);
            }
        }
        Ok(a)
    }

    /// a + b.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.add_sub(a, b, false)
    }

    /// a - b.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.add_sub(a, b, true)
    }

    /// Sum of several ciphertexts.
    pub fn add_many(&self, cts: &[Ciphertext]) -> Result<Ciphertext> {
        let (first, rest) = cts.split_first().ok_or(CkksError::InvalidShape {
            reason: "empty sum",
        })?;
        rest.iter()
            .try_fold(first.clone(), |acc, c| self.add(&acc, c))
    }

    /// -a.
    pub fn negate(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check(a)?;
        let mut out = a.clone();
        let m = self.chain_mods(a.level());
        for p in out.polys_mut() {
            poly::neg_assign(&m, p);
        }
        Ok(out)
    }

    fn plain_at(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<RnsPoly> {
        CkksParameters::check_same(&self.params, pt.params())?;
        if pt.level() < ct.level() {
            return Err(CkksError::LevelMismatch {
                left: ct.level(),
                right: pt.level(),
            });
        }
        Ok(RnsPoly {
            limbs: pt.poly.limbs[..=ct.level()].to_vec(),
        })
    }

    /// a + pt (the plaintext must be at a level >= the ciphertext's and at the same scale).
    pub fn add_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.combine_plain(a, pt, poly::add_assign)
    }

    /// a - pt.
    pub fn sub_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.combine_plain(a, pt, poly::sub_assign)
    }

    /// Applies `op` to the ciphertext's first polynomial and the plaintext (same scale).
    fn combine_plain(
        &self,
        a: &Ciphertext,
        pt: &Plaintext,
        op: fn(&[&crate::arith::Modulus], &mut RnsPoly, &RnsPoly),
    ) -> Result<Ciphertext> {
        self.check(a)?;
        if !scales_match(a.scale(), pt.scale()) {
            return Err(CkksError::ScaleMismatch {
                left: a.scale(),
                right: pt.scale(),
            });
        }
        let p = self.plain_at(a, pt)?;
        let mut out = a.clone();
        let m = self.chain_mods(a.level());
        op(&m, &mut out.polys_mut()[0], &p);
        Ok(out)
    }

    /// a ⊙ pt; the result's scale is the product of the scales (rescale afterwards).
    pub fn mul_plain(&self, a: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check(a)?;
        let p = self.plain_at(a, pt)?;
        let m = self.chain_mods(a.level());
        let polys = a.polys.iter().map(|c| poly::mul(&m, c, &p)).collect();
        Ok(Ciphertext::from_parts(
            Arc::clone(&self.params),
            polys,
            a.level(),
            a.scale() * pt.scale(),
        ))
    }

    /// Adds the real constant `c` to every slot.
    pub fn add_scalar(&self, a: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.check(a)?;
        let v = scaled_int(c, a.scale())?;
        let consts: Vec<u64> = a.params().chain()[..=a.level()]
            .iter()
            .map(|&q| reduce_i128(v, q))
            .collect();
        let mut out = a.clone();
        let m = self.chain_mods(a.level());
        poly::add_const_assign(&m, &mut out.polys_mut()[0], &consts);
        Ok(out)
    }

    /// Multiplies every slot by the real constant `c`, encoded at `scale`; the result's scale is
    /// a.scale() * scale (rescale afterwards). Use [`Self::mul_integer`] for exact integers.
    pub fn mul_scalar(&self, a: &Ciphertext, c: f64, scale: f64) -> Result<Ciphertext> {
        self.check(a)?;
        let v = scaled_int(c, scale)?;
        let mut out = self.mul_int_raw(a, v)?;
        *out.scale_mut() = a.scale() * scale;
        Ok(out)
    }

    /// Multiplies every slot by the integer `k` (scale unchanged, no level consumed).
    pub fn mul_integer(&self, a: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.check(a)?;
        self.mul_int_raw(a, i128::from(k))
    }

    fn mul_int_raw(&self, a: &Ciphertext, v: i128) -> Result<Ciphertext> {
        let consts: Vec<u64> = a.params().chain()[..=a.level()]
            .iter()
            .map(|&q| reduce_i128(v, q))
            .collect();
        let mut out = a.clone();
        let m = self.chain_mods(a.level());
        for p in out.polys_mut() {
            poly::mul_const_assign(&m, p, &consts);
        }
        Ok(out)
    }

    /// a ⊗ b without relinearisation (3 polynomials; scale is the product).
    pub fn mul_no_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let (a, b) = self.matched(a, b)?;
        for c in [&a, &b] {
            if c.size() != 2 {
                return Err(CkksError::InvalidCiphertextSize {
                    size: c.size(),
                    expected: 2,
                });
            }
        }
        let m = self.chain_mods(a.level());
        let (a0, a1, b0, b1) = (&a.polys[0], &a.polys[1], &b.polys[0], &b.polys[1]);
        let ((d0, d2), d1) = rayon::join(
            || (poly::mul(&m, a0, b0), poly::mul(&m, a1, b1)),
            || {
                let mut d1 = poly::mul(&m, a0, b1);
                poly::mul_acc(&m, &mut d1, a1, b0);
                d1
            },
        );
        Ok(Ciphertext::from_parts(
            Arc::clone(&self.params),
            vec![d0, d1, d2],
            a.level(),
            a.scale() * b.scale(),
        ))
    }

    /// a^2 without relinearisation.
    pub fn square_no_relin(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.mul_no_relin(a, a)
    }

    /// Relinearises a 3-polynomial ciphertext back to 2 polynomials.
    pub fn relinearize(&self, a: &Ciphertext, rlk: &RelinearizationKey) -> Result<Ciphertext> {
        self.relinearize_owned(a.clone(), rlk)
    }

    fn relinearize_owned(&self, a: Ciphertext, rlk: &RelinearizationKey) -> Result<Ciphertext> {
        self.check(&a)?;
        CkksParameters::check_same(&self.params, rlk.params())?;
        match a.size() {
            2 => return Ok(a),
            3 => {}
            size => return Err(CkksError::InvalidCiphertextSize { size, expected: 3 }),
        }
        let level = a.level();
        let (u0, u1) = key_switch(&self.params, level, &a.polys[2], &rlk.ksk);
        let m = self.chain_mods(level);
        let scale = a.scale();
        let mut polys = a.polys;
        polys.truncate(2);
        let mut c1 = polys.pop().ok_or(CkksError::InvalidCiphertextSize {
            size: 0,
            expected: 3,
        })?;
        let mut c0 = polys.pop().ok_or(CkksError::InvalidCiphertextSize {
            size: 0,
            expected: 3,
        })?;
        poly::add_assign(&m, &mut c0, &u0);
        poly::add_assign(&m, &mut c1, &u1);
        poly::recycle_poly(u0);
        poly::recycle_poly(u1);
        Ok(Ciphertext::from_parts(
            Arc::clone(&self.params),
            vec![c0, c1],
            level,
            scale,
        ))
    }

    /// a ⊗ b, relinearised (scale is the product; rescale afterwards).
    pub fn mul(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        rlk: &RelinearizationKey,
    ) -> Result<Ciphertext> {
        let t = self.mul_no_relin(a, b)?;
        self.relinearize_owned(t, rlk)
    }

    /// a ⊗ b, relinearised and rescaled.
    pub fn mul_relin_rescale(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        rlk: &RelinearizationKey,
    ) -> Result<Ciphertext> {
        let t = self.mul_no_relin(a, b)?;
        CkksParameters::check_same(&self.params, rlk.params())?;
        let level = t.level();
        if level == 0 {
            return Err(CkksError::RescaleAtLevelZero);
        }
        // Relinearise and rescale at once: (c_0, c_1) + ModDown(acc) divided by q_level is
        // round((c_i·P + acc_i) / (P·q_level)), one division instead of two.
        let (acc0, acc1) = decompose_product(&self.params, level, &t.polys[2], &rlk.ksk);
        let (c0, c1) = rayon::join(
            || mod_down_rescale(&self.params, level, &acc0, &t.polys[0]),
            || mod_down_rescale(&self.params, level, &acc1, &t.polys[1]),
        );
        poly::recycle_poly(acc0);
        poly::recycle_poly(acc1);
        let q = self.params.chain()[level] as f64;
        let scale = t.scale() / q;
        t.polys.into_iter().for_each(poly::recycle_poly);
        Ok(Ciphertext::from_parts(
            Arc::clone(&self.params),
            vec![c0, c1],
            level - 1,
            scale,
        ))
    }

    /// Divides by the last prime q_level (rounding) and drops it; the scale is divided by q_level.
    pub fn rescale(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check(a)?;
        let level = a.level();
        if level == 0 {
            return Err(CkksError::RescaleAtLevelZero);
        }
        let keep: Vec<usize> = (0..level).collect();
        let drop = [level];
        use rayon::prelude::*;
        let polys = a
            .polys
            .par_iter()
            .map(|c| crate::basis::divide_round(&self.params, &keep, &drop, c))
            .collect();
        let q = self.params.chain()[level] as f64;
        Ok(Ciphertext::from_parts(
            Arc::clone(&self.params),
            polys,
            level - 1,
            a.scale() / q,
        ))
    }
}

pub(crate) fn scaled_int(c: f64, scale: f64) -> Result<i128> {
    let v = (c * scale).round();
    if !v.is_finite() || v.abs() >= 2f64.powi(120) {
        return Err(CkksError::EncodingOverflow {
            reason: "scaled constant is not finite or exceeds 2^120",
        });
    }
    Ok(v as i128)
}
