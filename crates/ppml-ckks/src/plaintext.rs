//! Encoded (not encrypted) polynomials.

use std::sync::Arc;

use crate::params::CkksParameters;
use crate::poly::RnsPoly;

/// An encoded message: a polynomial in NTT form over the primes q_0..=q_level, with its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    params: Arc<CkksParameters>,
    pub(crate) poly: RnsPoly,
    level: usize,
    scale: f64,
}

impl Plaintext {
    pub(crate) fn from_parts(
        params: Arc<CkksParameters>,
        poly: RnsPoly,
        level: usize,
        scale: f64,
    ) -> Self {
        Self {
            params,
            poly,
            level,
            scale,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// The level (number of primes minus one).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Drops the primes above `level` (exact: the encoded value does not change).
    pub fn drop_to_level(&mut self, level: usize) -> crate::Result<()> {
        if level > self.level {
            return Err(crate::CkksError::LevelMismatch {
                left: self.level,
                right: level,
            });
        }
        self.poly.limbs.truncate(level + 1);
        self.level = level;
        Ok(())
    }
}
