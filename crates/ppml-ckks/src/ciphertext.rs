//! Ciphertexts.

use std::sync::Arc;

use crate::error::{CkksError, Result};
use crate::params::CkksParameters;
use crate::poly::RnsPoly;

/// A CKKS ciphertext (c_0, c_1[, c_2]) in NTT form over q_0..=q_level; decrypts to
/// c_0 + c_1 s (+ c_2 s^2) ≈ scale · message.
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    params: Arc<CkksParameters>,
    pub(crate) polys: Vec<RnsPoly>,
    level: usize,
    scale: f64,
    /// When set, `polys[1]` is the expansion of this seed (fresh symmetric encryption), which
    /// lets the serialiser send 32 bytes instead of the polynomial.
    pub(crate) seed: Option<[u8; 32]>,
}

impl Ciphertext {
    pub(crate) fn from_parts(
        params: Arc<CkksParameters>,
        polys: Vec<RnsPoly>,
        level: usize,
        scale: f64,
    ) -> Self {
        Self {
            params,
            polys,
            level,
            scale,
            seed: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// The level: the ciphertext lives modulo q_0 ... q_level.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale of the encrypted message.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Overrides the recorded scale (for callers that track scales themselves, e.g. to absorb
    /// the small difference between a prime and 2^bits).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// Number of polynomials (2 normally, 3 after a multiplication without relinearisation).
    pub fn size(&self) -> usize {
        self.polys.len()
    }

    pub(crate) fn scale_mut(&mut self) -> &mut f64 {
        self.seed = None;
        &mut self.scale
    }

    pub(crate) fn polys_mut(&mut self) -> &mut Vec<RnsPoly> {
        self.seed = None;
        &mut self.polys
    }

    /// Drops the primes above `level` (exact: the message and scale do not change).
    pub fn drop_to_level(&mut self, level: usize) -> Result<()> {
        if level > self.level {
            return Err(CkksError::LevelMismatch {
                left: self.level,
                right: level,
            });
        }
        if level < self.level {
            for p in self.polys_mut() {
                p.limbs.truncate(level + 1);
            }
            self.level = level;
        }
        Ok(())
    }
}
