//! Samplers: uniform (from a seed), ternary, centred binomial error. All randomness comes from a
//! ChaCha20 stream seeded by the operating system's CSPRNG, or from an explicit seed.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::{Zeroize, Zeroizing};

use crate::arith::Modulus;
use crate::error::{CkksError, Result};
use crate::poly::RnsPoly;

/// A ChaCha20 RNG seeded from the OS.
pub(crate) fn os_rng() -> Result<ChaCha20Rng> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut seed)
        .map_err(|_| CkksError::Rng)?;
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    Ok(rng)
}

/// 32 fresh random bytes.
pub(crate) fn fresh_seed<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; 32] {
    let mut s = [0u8; 32];
    rng.fill_bytes(&mut s);
    s
}

/// Uniform polynomial over the given moduli (directly in the NTT domain), expanded from `seed`
/// by rejection sampling: 32-bit draws for primes below 2^32, 64-bit draws otherwise. Limbs are
/// sampled in order, so a prefix of the moduli gives a prefix of the limbs.
pub(crate) fn uniform_from_seed(
    seed: &[u8; 32],
    stream: u64,
    m: &[&Modulus],
    degree: usize,
) -> RnsPoly {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    let limbs = m
        .iter()
        .map(|m| {
            let q = m.value;
            let mask = u64::MAX >> q.leading_zeros();
            let mut l = Vec::with_capacity(degree);
            while l.len() < degree {
                let x = if q <= 1 << 32 {
                    u64::from(rng.next_u32())
                } else {
                    rng.next_u64()
                } & mask;
                if x < q {
                    l.push(x);
                }
            }
            l
        })
        .collect();
    RnsPoly { limbs }
}

/// Uniform ternary coefficients in {-1, 0, 1}.
pub(crate) fn ternary<R: RngCore + CryptoRng>(rng: &mut R, degree: usize) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(Vec::with_capacity(degree));
    let mut buf = [0u8; 64];
    while out.len() < degree {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 255 = 3 * 85: reject 255 for an unbiased value mod 3.
            if b < 255 && out.len() < degree {
                out.push(i64::from(b % 3) - 1);
            }
        }
    }
    buf.zeroize();
    out
}

/// Centred binomial error with eta = 21 (variance 10.5, standard deviation ≈ 3.24).
pub(crate) fn cbd_error<R: RngCore + CryptoRng>(rng: &mut R, degree: usize) -> Zeroizing<Vec<i64>> {
    const MASK: u64 = (1 << 21) - 1;
    let v = (0..degree)
        .map(|_| {
            let r = rng.next_u64();
            i64::from((r & MASK).count_ones()) - i64::from(((r >> 21) & MASK).count_ones())
        })
        .collect();
    Zeroizing::new(v)
}

/// Small signed coefficients -> NTT form over the given moduli.
pub(crate) fn small_to_ntt(coeffs: &[i64], m: &[&Modulus]) -> RnsPoly {
    use rayon::prelude::*;
    let limbs = m
        .par_iter()
        .map(|m| {
            let q = m.value;
            let mut l: Vec<u64> = coeffs
                .iter()
                .map(|&c| crate::arith::reduce_i64(c, q))
                .collect();
            m.plan.fwd(&mut l);
            l
        })
        .collect();
    RnsPoly { limbs }
}
