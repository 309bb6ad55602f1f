//! Scalar modular arithmetic helpers (word-sized moduli below 2^62), and [`Modulus`]: one RNS
//! prime with its NTT plan.

use tfhe_ntt::prime64::Plan;

/// One RNS modulus with its NTT plan.
#[derive(Clone, Debug)]
pub(crate) struct Modulus {
    pub(crate) value: u64,
    pub(crate) plan: Plan,
}

/// `a * b mod p` through a 128-bit product (used off the hot paths).
#[inline]
pub(crate) fn mul_mod(a: u64, b: u64, p: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(p)) as u64
}

/// `a + b mod p` for `a, b < p`.
#[inline]
pub(crate) fn add_mod(a: u64, b: u64, p: u64) -> u64 {
    let s = a + b;
    s.min(s.wrapping_sub(p))
}

/// `a - b mod p` for `a, b < p`.
#[inline]
pub(crate) fn sub_mod(a: u64, b: u64, p: u64) -> u64 {
    let d = a.wrapping_sub(b);
    d.min(d.wrapping_add(p))
}

/// `base^exp mod p`.
pub(crate) fn pow_mod(mut base: u64, mut exp: u64, p: u64) -> u64 {
    let mut acc = 1 % p;
    base %= p;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, p);
        }
        base = mul_mod(base, base, p);
        exp >>= 1;
    }
    acc
}

/// Inverse of `a` modulo the prime `p` (Fermat); 0 maps to 0.
pub(crate) fn inv_mod(a: u64, p: u64) -> u64 {
    pow_mod(a, p - 2, p)
}

/// A constant prepared for Shoup multiplication modulo `p`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shoup {
    w: u64,
    w_shoup: u64,
}

impl Shoup {
    /// Prepares `w < p` for repeated multiplication modulo `p`.
    pub(crate) fn new(w: u64, p: u64) -> Self {
        let w = w % p;
        let w_shoup = ((u128::from(w) << 64) / u128::from(p)) as u64;
        Self { w, w_shoup }
    }

    /// The constant w.
    pub(crate) fn value(self) -> u64 {
        self.w
    }

    /// `x * w mod p` for `x < p` (p < 2^62).
    #[inline(always)]
    pub(crate) fn mul(self, x: u64, p: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.w_shoup)) >> 64) as u64;
        let r = x.wrapping_mul(self.w).wrapping_sub(q.wrapping_mul(p));
        r.min(r.wrapping_sub(p))
    }
}

/// Reduces a signed value into `[0, p)`.
#[inline]
pub(crate) fn reduce_i64(x: i64, p: u64) -> u64 {
    let r = x.rem_euclid(p as i64);
    r as u64
}

/// Reduces a signed 128-bit value into `[0, p)`.
#[inline]
pub(crate) fn reduce_i128(x: i128, p: u64) -> u64 {
    x.rem_euclid(i128::from(p)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shoup_matches_u128() {
        let p = (1u64 << 61) - 1;
        for (a, b) in [
            (3u64, 5u64),
            (p - 1, p - 1),
            (123_456_789_012, 987_654_321_098),
        ] {
            assert_eq!(Shoup::new(b, p).mul(a, p), mul_mod(a, b, p));
        }
        assert_eq!(mul_mod(inv_mod(12345, p), 12345, p), 1);
    }
}
