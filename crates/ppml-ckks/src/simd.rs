//! Branch-free modular reductions that auto-vectorise, and the runtime dispatch that compiles
//! them for the best instruction set of this CPU (the scalar, exact ones are in `arith`).

use crate::arith::Modulus;
use crate::buffers::{recycle, take_buf};

/// Runs `f` compiled for the best instruction set of this CPU (runtime dispatch, no unsafe), so
/// that the simple loops inside auto-vectorise (AVX-512 where available). The closure must be
/// marked `#[inline(always)]`: otherwise its body is compiled apart, for the baseline target.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `x mod t` for any `x < 2^62` and `2^20 <= t < 2^62`, branch-free (vectorisable): a float
/// estimate of the quotient is off by at most one, then corrected.
#[inline(always)]
pub(crate) fn reduce_any(x: u64, t: u64, inv_t: f64) -> u64 {
    // The quotient estimate (below 2^42) is rounded to an integer by adding 2^52 and reading the
    // mantissa: unlike a saturating float-to-int cast, this vectorises. `x < 2^63` converts as
    // an i64 (one instruction); the estimate is then off by at most one either way.
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let q = ((x as i64 as f64) * inv_t + MAGIC)
        .to_bits()
        .wrapping_sub(MAGIC.to_bits());
    let r = x.wrapping_sub(q.wrapping_mul(t)) as i64;
    let r = if r < 0 { r + t as i64 } else { r };
    let r = r as u64;
    if r >= t {
        r - t
    } else {
        r
    }
}

/// Moduli below this bound take the floating-point products of [`mul_mod_f64`].
pub(crate) const F64_MODULUS: u64 = 1 << 50;

/// `x * c mod q` for `x < 2^50` and `c < q < 2^50`, branch-free (vectorisable), given
/// `c_q = c / q`: the rounded quotient x·c/q is estimated in floating point (error below 1/2,
/// so it is floor or floor + 1), and the remainder, in (-q, q), is taken modulo 2^64 and
/// corrected once.
#[inline(always)]
pub(crate) fn mul_mod_f64(x: u64, c: u64, c_q: f64, q: u64) -> u64 {
    const MAGIC: f64 = 4_503_599_627_370_496.0; // 2^52
    let est = ((x as i64 as f64) * c_q + MAGIC)
        .to_bits()
        .wrapping_sub(MAGIC.to_bits());
    let r = x.wrapping_mul(c).wrapping_sub(est.wrapping_mul(q)) as i64;
    (if r < 0 { r + q as i64 } else { r }) as u64
}

/// out += a ⊙ c for a constant c (reduced).
pub(crate) fn mul_const_acc(m: &Modulus, out: &mut [u64], a: &[u64], c: u64) {
    let mut cv = take_buf(a.len());
    cv.iter_mut().for_each(|x| *x = c);
    m.plan.mul_accumulate(out, a, &cv);
    recycle(cv);
}

/// out = a ⊙ c for a constant c (vectorised through tfhe-ntt's multiply-accumulate).
pub(crate) fn mul_const_into(m: &Modulus, out: &mut [u64], a: &[u64], c: u64) {
    let mut cv = take_buf(a.len());
    cv.iter_mut().for_each(|x| *x = c % m.value);
    out.iter_mut().for_each(|x| *x = 0);
    m.plan.mul_accumulate(out, a, &cv);
    recycle(cv);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::mul_mod;

    /// Moduli of every size class the kernels serve: just above 2^20, 26 bits, just above
    /// 2^31 (wide), just below 2^50.
    const MODULI: [u64; 4] = [
        (1u64 << 20) + 7,
        67_108_879,
        2_147_483_659,
        (1u64 << 50) - 27,
    ];

    /// Marsaglia's xorshift64: a fixed, replayable stream of test values.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn reduce_any_matches_remainder() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for t in MODULI {
            let inv_t = 1.0 / t as f64;
            let edges = [
                0,
                1,
                t - 1,
                t,
                t + 1,
                2 * t - 1,
                (1u64 << 62) - 1,
                (1u64 << 62) - t,
            ];
            for v in edges {
                assert_eq!(reduce_any(v, t, inv_t), v % t, "x = {v}, t = {t}");
            }
            for _ in 0..100_000 {
                let r = next(&mut x);
                for v in [r >> 2, r >> (2 + r % 40)] {
                    assert_eq!(reduce_any(v, t, inv_t), v % t, "x = {v}, t = {t}");
                }
            }
        }
    }

    #[test]
    fn mul_mod_f64_matches_u128() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for q in MODULI {
            for _ in 0..100_000 {
                let r = next(&mut x);
                let (a, c) = (r % q, (r >> 7) % q);
                let a = if r & 1 == 0 { a } else { r % (1 << 50) };
                assert_eq!(mul_mod_f64(a, c, c as f64 / q as f64, q), mul_mod(a, c, q));
            }
        }
    }
}
