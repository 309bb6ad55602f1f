//! Samplers: uniform polynomials from a public seed, ternary secrets, centred binomial errors,
//! flooding noise. Private randomness is a ChaCha20 stream seeded by the operating system.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::error::{Result, RlweError};
use crate::params::{Params, ERROR_ETA};

/// A ChaCha20 RNG seeded from the OS.
pub(crate) fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|_| RlweError::Rng)?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// A uniform polynomial expanded from `seed` by rejection sampling, taken as the NTT form.
pub(crate) fn uniform_from_seed(params: &Params, seed: [u8; 32]) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut out = Vec::with_capacity(params.poly_words());
    for (q, _) in params.limbs() {
        let mask = u64::MAX >> q.leading_zeros();
        let mut c = 0;
        while c < params.degree() {
            let v = rng.next_u64() & mask;
            if v < q {
                out.push(v);
                c += 1;
            }
        }
    }
    out
}

/// Uniform ternary coefficients.
pub(crate) fn ternary<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let w = rng.next_u64();
        for k in 0..32 {
            let t = (w >> (2 * k)) & 3;
            if t < 3 && out.len() < n {
                out.push(t as i64 - 1);
            }
        }
    }
    out
}

/// Centred binomial coefficients with parameter [`ERROR_ETA`] (`|e| <= 21`).
pub(crate) fn cbd<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Vec<i64> {
    let mask = (1u64 << ERROR_ETA) - 1;
    (0..n)
        .map(|_| {
            let w = rng.next_u64();
            i64::from((w & mask).count_ones()) - i64::from(((w >> 32) & mask).count_ones())
        })
        .collect()
}

/// Integers uniform in `[-2^bits, 2^bits)` (`bits < 127`).
pub(crate) fn wide_uniform<R: RngCore + CryptoRng>(rng: &mut R, n: usize, bits: u32) -> Vec<i128> {
    let mask = (1u128 << (bits + 1)) - 1;
    (0..n)
        .map(|_| {
            let w = (u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64)) & mask;
            w as i128 - (1i128 << bits)
        })
        .collect()
}
