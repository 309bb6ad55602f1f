//! Polynomials stored in 32 bits where their prime allows: what key switching and the encoded
//! diagonals read, at half the memory traffic, and how long 64-bit sums of their products may
//! stay unreduced.

use crate::params::CkksParameters;
use crate::poly::RnsPoly;

/// Residues modulo primes below this bound are stored in 32 bits by [`PackedPoly`] (and summed
/// lazily in 64 bits by the multiply-accumulate kernels).
pub(crate) const NARROW_PRIME: u64 = 1 << 31;

/// Lazy 64-bit accumulators stay below this bound for [`reduce_any`](crate::simd::reduce_any).
const ACC_BOUND: u64 = 1 << 62;

/// How many products of two residues modulo `q < NARROW_PRIME` a 64-bit accumulator (reduced
/// below `q` before) can add before it must be reduced again: acc < q + terms · (q - 1)^2 < 2^62.
pub(crate) fn lazy_terms(q: u64) -> usize {
    (((ACC_BOUND - q) / ((q - 1) * (q - 1)).max(1)) as usize).max(1)
}

/// A polynomial over all primes (NTT form) whose residues modulo primes below [`NARROW_PRIME`]
/// are stored in 32 bits: key-switching keys and encoded diagonals, whose products are bound by
/// reading them, so this halves what they read. Limbs not given (above a key's level) are empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedPoly {
    pub(crate) limbs: Vec<PackedLimb>,
}

/// One limb of a [`PackedPoly`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PackedLimb {
    /// Values of a prime below [`NARROW_PRIME`].
    Narrow(Vec<u32>),
    /// Values of a larger prime.
    Wide(Vec<u64>),
}

impl PackedPoly {
    /// Packs a polynomial over all primes of `params`.
    pub(crate) fn pack(params: &CkksParameters, p: &RnsPoly) -> Self {
        let all: Vec<usize> = (0..p.limbs.len()).collect();
        Self::pack_at(params, &all, p)
    }

    /// Packs a polynomial given over the primes `idx` (indices into `params.moduli`); the other
    /// limbs are left empty.
    pub(crate) fn pack_at(params: &CkksParameters, idx: &[usize], p: &RnsPoly) -> Self {
        let mut limbs: Vec<PackedLimb> = (0..params.moduli.len())
            .map(|_| PackedLimb::Wide(Vec::new()))
            .collect();
        for (&i, l) in idx.iter().zip(&p.limbs) {
            limbs[i] = if params.moduli[i].value < NARROW_PRIME {
                // Values are reduced modulo a prime below 2^31: exact in 32 bits.
                PackedLimb::Narrow(l.iter().map(|&x| x as u32).collect())
            } else {
                PackedLimb::Wide(l.clone())
            };
        }
        Self { limbs }
    }

    /// The limbs at `idx` with 64-bit values.
    pub(crate) fn select(&self, idx: &[usize]) -> RnsPoly {
        RnsPoly {
            limbs: idx
                .iter()
                .map(|&i| match &self.limbs[i] {
                    PackedLimb::Narrow(v) => v.iter().map(|&x| u64::from(x)).collect(),
                    PackedLimb::Wide(v) => v.clone(),
                })
                .collect(),
        }
    }

    /// The polynomial with 64-bit limbs.
    pub(crate) fn unpack(&self) -> RnsPoly {
        let all: Vec<usize> = (0..self.limbs.len()).collect();
        self.select(&all)
    }
}
