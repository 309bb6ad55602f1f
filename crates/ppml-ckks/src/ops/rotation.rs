//! Rotations, conjugation and hoisted rotations.

use std::sync::Arc;

use rayon::prelude::*;

use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::keys::GaloisKeys;
use crate::ops::keyswitch::{decompose, inner_product, key_switch, mod_down, Decomposition};
use crate::ops::Evaluator;
use crate::params::CkksParameters;
use crate::poly::{self, mods, RnsPoly};

/// A ciphertext whose c_1 has been decomposed once (ModUp), ready for many cheap rotations:
/// each rotation then costs an inner product and a ModDown, not a full decomposition.
#[derive(Debug, Clone)]
pub struct HoistedCiphertext {
    ct: Ciphertext,
    dec: Decomposition,
}

impl HoistedCiphertext {
    /// The ciphertext.
    pub fn ciphertext(&self) -> &Ciphertext {
        &self.ct
    }
}

impl Evaluator {
    /// Applies X -> X^g with its Galois key.
    pub fn apply_galois(&self, a: &Ciphertext, g: u64, gk: &GaloisKeys) -> Result<Ciphertext> {
        let p = self.params();
        CkksParameters::check_same(p, a.params())?;
        if a.size() != 2 {
            return Err(CkksError::InvalidCiphertextSize {
                size: a.size(),
                expected: 2,
            });
        }
        CkksParameters::check_same(p, gk.params())?;
        let (key, perm) = gk.get(g, a.level())?;
        let u = key_switch(p, a.level(), &a.polys[1], key);
        Ok(self.finish_galois(a, u, perm))
    }

    /// Rotates the slots left by `step` (negative: right).
    pub fn rotate(&self, a: &Ciphertext, step: i64, gk: &GaloisKeys) -> Result<Ciphertext> {
        let g = self.params().galois_element_for_rotation(step);
        if g == 1 {
            CkksParameters::check_same(self.params(), a.params())?;
            return Ok(a.clone());
        }
        self.apply_galois(a, g, gk)
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, a: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext> {
        self.apply_galois(a, self.params().galois_element_conjugate(), gk)
    }

    /// Decomposes c_1 once for [`Self::rotate_hoisted`].
    pub fn hoist(&self, a: &Ciphertext) -> Result<HoistedCiphertext> {
        CkksParameters::check_same(self.params(), a.params())?;
        if a.size() != 2 {
            return Err(CkksError::InvalidCiphertextSize {
                size: a.size(),
                expected: 2,
            });
        }
        let dec = decompose(self.params(), a.level(), &a.polys[1]);
        Ok(HoistedCiphertext { ct: a.clone(), dec })
    }

    /// One rotation of a hoisted ciphertext.
    pub fn rotate_hoisted_one(
        &self,
        h: &HoistedCiphertext,
        step: i64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let g = self.params().galois_element_for_rotation(step);
        if g == 1 {
            return Ok(h.ct.clone());
        }
        self.apply_galois_hoisted(h, g, gk)
    }

    fn apply_galois_hoisted(
        &self,
        h: &HoistedCiphertext,
        g: u64,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let p = self.params();
        CkksParameters::check_same(p, gk.params())?;
        let level = h.ct.level();
        let (key, perm) = gk.get(g, level)?;
        // The key is stored as σ^{-1}(k): the inner product and ModDown run unpermuted and σ is
        // applied once to the result.
        let acc = inner_product(p, &h.dec, key);
        let u = mod_down(p, level, &acc);
        crate::poly::recycle_poly(acc.0);
        crate::poly::recycle_poly(acc.1);
        Ok(self.finish_galois(&h.ct, u, perm))
    }

    /// σ(c_0 + u_0, u_1) from the key-switched (u_0, u_1) of c_1 (the key is stored in the
    /// rotated frame, so σ is applied once at the end).
    fn finish_galois(&self, a: &Ciphertext, u: (RnsPoly, RnsPoly), perm: &[u32]) -> Ciphertext {
        let p = self.params();
        let level = a.level();
        let (u0, u1) = u;
        let idx: Vec<usize> = (0..=level).collect();
        let m = mods(p, &idx);
        let (r0, r1) = rayon::join(
            || poly::add_permute(&m, &u0, &a.polys[0], perm),
            || poly::permute(&u1, perm),
        );
        poly::recycle_poly(u0);
        poly::recycle_poly(u1);
        Ciphertext::from_parts(Arc::clone(p), vec![r0, r1], level, a.scale())
    }

    /// Many rotations of one ciphertext sharing a single decomposition (hoisting).
    pub fn rotate_hoisted(
        &self,
        a: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>> {
        let h = self.hoist(a)?;
        let out = steps
            .par_iter()
            .map(|&s| self.rotate_hoisted_one(&h, s, gk))
            .collect();
        h.dec.recycle();
        out
    }
}
