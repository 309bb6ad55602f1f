//! Fixed-point numbers in `Z_2^64`: a real `v` is `round(v 2^16)` in two's complement; a product
//! carries 32 fractional bits until truncated.

/// Fractional bits (as CrypTen and SyMPC).
pub const FRAC_BITS: u32 = 16;

/// Encodes `v` with [`FRAC_BITS`] fractional bits (saturating; NaN encodes as 0).
pub fn encode(v: f32) -> u64 {
    let scaled = (f64::from(v) * f64::from(1u32 << FRAC_BITS)).round();
    (scaled.clamp(i64::MIN as f64, i64::MAX as f64) as i64) as u64
}

/// Decodes a ring element with [`FRAC_BITS`] fractional bits.
pub fn decode(x: u64) -> f32 {
    ((x as i64) as f64 / f64::from(1u32 << FRAC_BITS)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_half_a_unit() {
        for v in [0.0f32, 1.5, -2.25, 1e-5, -300.125] {
            assert!((decode(encode(v)) - v).abs() <= 0.5 / 65536.0 + 1e-6);
        }
        assert_eq!(encode(f32::NAN), 0);
    }
}
