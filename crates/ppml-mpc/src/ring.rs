//! Fixed-point numbers in the ring `Z_2^64` (wrapping `u64`).
//!
//! A real `v` is encoded as `round(v * 2^f)` in two's complement; the product of two encodings
//! carries `2f` fractional bits and is brought back to `f` by a truncation. Every share is a
//! uniformly random ring element, so shares are plain `u64` vectors and all arithmetic wraps.

use crate::error::{MpcError, Result};

/// Fixed-point parameters: the number of fractional bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl FixedPoint {
    /// Fixed point with `frac_bits` fractional bits (1 to 30: products carry twice as many and
    /// must leave room for the integer part in 64 bits).
    pub fn new(frac_bits: u32) -> Result<Self> {
        if !(1..=30).contains(&frac_bits) {
            return Err(MpcError::Config {
                field: "frac_bits",
                value: frac_bits.to_string(),
                reason: "must be between 1 and 30",
            });
        }
        Ok(Self { frac_bits })
    }

    /// The number of fractional bits `f`.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// Encodes `v` with `f` fractional bits.
    pub fn encode(&self, v: f32) -> u64 {
        encode_scaled(f64::from(v), self.frac_bits)
    }

    /// Encodes `v` with `2f` fractional bits (biases are added to products before truncation).
    pub fn encode_double(&self, v: f32) -> u64 {
        encode_scaled(f64::from(v), 2 * self.frac_bits)
    }

    /// Decodes a ring element with `f` fractional bits.
    pub fn decode(&self, x: u64) -> f32 {
        ((x as i64) as f64 / (1u64 << self.frac_bits) as f64) as f32
    }

    /// The encoding of `1 / d` (rounded), for average pooling.
    pub fn reciprocal(&self, d: usize) -> u64 {
        encode_scaled(1.0 / d.max(1) as f64, self.frac_bits)
    }
}

impl Default for FixedPoint {
    /// 16 fractional bits, as CrypTen and SyMPC.
    fn default() -> Self {
        Self { frac_bits: 16 }
    }
}

fn encode_scaled(v: f64, bits: u32) -> u64 {
    let scaled = (v * (1u64 << bits) as f64).round();
    // Saturate instead of wrapping on absurd inputs (NaN encodes as 0).
    let clamped = scaled.clamp(i64::MIN as f64, i64::MAX as f64);
    (clamped as i64) as u64
}

/// The share-wise truncation of SecureML for the party holding the first of two additive shares.
#[inline]
pub fn trunc_first(x: u64, bits: u32) -> u64 {
    x >> bits
}

/// The share-wise truncation of SecureML for the party holding the second of two additive shares.
///
/// With `x = a + b`, `trunc_first(a) + trunc_second(b)` equals `x / 2^bits` up to one unit in
/// the last place, except with probability about `|x| / 2^63` (when the shares wrap around), in
/// which case the result is off by about `2^(64 - bits)`.
#[inline]
pub fn trunc_second(x: u64, bits: u32) -> u64 {
    (x.wrapping_neg() >> bits).wrapping_neg()
}

/// Element-wise wrapping sum.
pub fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// Element-wise wrapping difference.
pub fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

/// `a += b`, element-wise, wrapping.
pub fn add_assign(a: &mut [u64], b: &[u64]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(x, y)| *x = x.wrapping_add(*y));
}

/// `a -= b`, element-wise, wrapping.
pub fn sub_assign(a: &mut [u64], b: &[u64]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(x, y)| *x = x.wrapping_sub(*y));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_decode_round_trips_within_half_an_ulp() {
        let fp = FixedPoint::default();
        for v in [0.0f32, 1.0, -1.0, 2.5, -1234.5, 1e-5, -1e-5] {
            assert!((fp.decode(fp.encode(v)) - v).abs() <= 0.5 / 65536.0 + v.abs() * 1e-7);
        }
        assert_eq!(fp.encode(-1.0), (-(1i64 << 16)) as u64);
        assert_eq!(fp.reciprocal(4), 1 << 14);
        assert!(FixedPoint::new(0).is_err());
        assert!(FixedPoint::new(31).is_err());
    }

    proptest! {
        #[test]
        fn truncating_shares_is_off_by_at_most_one_ulp(x in -(1i64 << 40)..(1i64 << 40), a in any::<u64>()) {
            // Shares whose wrap-around has negligible probability for |x| < 2^40.
            let x = x as u64;
            let b = x.wrapping_sub(a);
            let t = trunc_first(a, 16).wrapping_add(trunc_second(b, 16)) as i64;
            let want = (x as i64) >> 16;
            // (A wrap, the documented failure, has probability below 2^-22 per case here.)
            prop_assert!((t - want).abs() <= 1);
        }

        #[test]
        fn ring_addition_of_encodings_is_addition(a in -1000.0f32..1000.0, b in -1000.0f32..1000.0) {
            let fp = FixedPoint::default();
            let s = fp.decode(fp.encode(a).wrapping_add(fp.encode(b)));
            prop_assert!((s - (a + b)).abs() < 1e-3);
        }
    }
}
