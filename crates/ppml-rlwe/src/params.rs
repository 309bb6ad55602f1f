//! Parameters: ring degree, RNS primes with their NTT plans, the constants of exact decryption,
//! and the noise budget.
//!
//! ## Noise budget
//!
//! A ciphertext of `m` (coefficients in `Z_2^64`, lifted to `(-2^63, 2^63]`) decrypts to the
//! integer polynomial `m + t e` with `t = 2^64`, fresh `|e| <= ERROR_ETA`. A product with a
//! plaintext `K` (integer coefficients) is `K m + t K e`; per coefficient its integer value is at
//! most `||K||_1 (2^63 + 2^64 * 21) < ||K||_1 2^69`, so writing it as `(K m mod t) + t k` gives
//! `|k| <= ||K||_1 2^5 + 1`. With the sum of `||K||_1` over a result's products at most
//! `2^MAX_L1_BITS`, the public-key encryption of zero added for re-randomisation
//! (`t (e_pk u + e_1 + e_2 s)`, at most `2^19` for `N <= 8192`) and the subtracted mask (one more
//! unit), the multiple of `t` stays below `2^NOISE_BITS`. Flooding adds `t E` with `E` uniform in
//! `[-2^FLOOD_BITS, 2^FLOOD_BITS)`: the statistical distance between what the client sees and a
//! distribution independent of the server's plaintexts is at most `2^(NOISE_BITS - FLOOD_BITS)`
//! per coefficient, `2^-40` over `2^33` coefficients (4 million results of degree 8192).
//! Decryption is exact while `|m + t (k + E)| < q / 4`, which [`Params::new`] checks.

use std::sync::Arc;

use tfhe_ntt::prime64::Plan;

use crate::error::{Result, RlweError};

/// Bound of the centred binomial error (standard deviation about 3.24).
pub const ERROR_ETA: u32 = 21;
/// Largest total L1 norm (log2) of the plaintexts summed into one result.
pub const MAX_L1_BITS: u32 = 40;
/// Bound (log2) of the multiple of `t` in a result before flooding.
pub const NOISE_BITS: u32 = MAX_L1_BITS + 6;
/// Flooding width (log2): 40 bits of statistical security over 2^33 coefficients.
pub const FLOOD_BITS: u32 = NOISE_BITS + 40 + 33;

/// Validated parameters, shared by `Arc`.
pub struct Params {
    degree: usize,
    moduli: Vec<u64>,
    plans: Vec<Plan>,
    /// `(q_0 ... q_{i-1})^{-1} mod q_i`.
    garner_inv: Vec<u64>,
    /// `prefix_mod[i][j] = q_0 ... q_{j-1} mod q_i` for `j <= i`.
    prefix_mod: Vec<Vec<u64>>,
    /// `q_0 ... q_{j-1} mod 2^64`.
    prefix_wrap: Vec<u64>,
    /// `q mod 2^64`.
    q_wrap: u64,
    /// `2^64 mod q_i`.
    two64: Vec<u64>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("degree", &self.degree)
            .field("moduli", &self.moduli)
            .finish()
    }
}

pub(crate) fn mul_mod(a: u64, b: u64, q: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(q)) as u64
}

pub(crate) fn add_mod(a: u64, b: u64, q: u64) -> u64 {
    let s = a + b;
    if s >= q {
        s - q
    } else {
        s
    }
}

pub(crate) fn sub_mod(a: u64, b: u64, q: u64) -> u64 {
    if a >= b {
        a - b
    } else {
        a + q - b
    }
}

fn pow_mod(mut b: u64, mut e: u64, q: u64) -> u64 {
    let mut r = 1u64;
    while e > 0 {
        if e & 1 == 1 {
            r = mul_mod(r, b, q);
        }
        b = mul_mod(b, b, q);
        e >>= 1;
    }
    r
}

impl Params {
    /// Ring degree `degree` and one prime of each of the given bit sizes (primes `= 1 mod 2N`).
    /// Refuses sets above the HomomorphicEncryption.org standard's modulus bound for 128-bit
    /// security (via `ppml_ckks::max_total_modulus_bits`) and sets too small for exact
    /// decryption under the noise budget.
    pub fn new(degree: usize, bits: &[u32]) -> Result<Arc<Self>> {
        let max =
            ppml_ckks::max_total_modulus_bits(degree).ok_or_else(|| RlweError::Parameters {
                reason: format!("degree {degree} is not in the security table"),
            })?;
        let moduli = ppml_ckks::generate_primes(degree, bits)?;
        let total: f64 = moduli.iter().map(|&q| (q as f64).log2()).sum();
        if total > f64::from(max) {
            return Err(RlweError::Parameters {
                reason: format!(
                    "log2(q) = {total:.1} exceeds {max}, the 128-bit bound for N = {degree}"
                ),
            });
        }
        let need = f64::from(64 + FLOOD_BITS + 3);
        if total < need {
            return Err(RlweError::Parameters {
                reason: format!(
                    "log2(q) = {total:.1} is below {need}, needed for exact decryption"
                ),
            });
        }
        let plans = moduli
            .iter()
            .map(|&q| {
                Plan::try_new(degree, q).ok_or_else(|| RlweError::Parameters {
                    reason: format!("no NTT plan for prime {q}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let k = moduli.len();
        let mut prefix_mod = vec![Vec::new(); k];
        let mut garner_inv = vec![1u64; k];
        for i in 0..k {
            let qi = moduli[i];
            let mut p = 1u64 % qi;
            prefix_mod[i].push(p);
            for &qj in &moduli[..i] {
                p = mul_mod(p, qj % qi, qi);
                prefix_mod[i].push(p);
            }
            garner_inv[i] = pow_mod(p, qi - 2, qi);
        }
        let mut prefix_wrap = Vec::with_capacity(k);
        let mut w = 1u64;
        for &q in &moduli {
            prefix_wrap.push(w);
            w = w.wrapping_mul(q);
        }
        let two64 = moduli
            .iter()
            .map(|&q| ((1u128 << 64) % u128::from(q)) as u64)
            .collect();
        Ok(Arc::new(Self {
            degree,
            moduli,
            plans,
            garner_inv,
            prefix_mod,
            prefix_wrap,
            q_wrap: w,
            two64,
        }))
    }

    /// The default set: N = 8192, primes of 60, 60, 60 and 38 bits (log2 q about 218).
    pub fn default_set() -> Result<Arc<Self>> {
        Self::new(8192, &[60, 60, 60, 38])
    }

    /// The ring degree N.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The RNS primes.
    pub fn moduli(&self) -> &[u64] {
        &self.moduli
    }

    /// Words in one polynomial (primes times degree).
    pub fn poly_words(&self) -> usize {
        self.degree * self.moduli.len()
    }

    /// log2 of the ciphertext modulus.
    pub fn modulus_bits(&self) -> f64 {
        self.moduli.iter().map(|&q| (q as f64).log2()).sum()
    }

    pub(crate) fn limbs(&self) -> impl Iterator<Item = (u64, &Plan)> {
        self.moduli.iter().copied().zip(&self.plans)
    }

    pub(crate) fn two64(&self, i: usize) -> u64 {
        self.two64[i]
    }

    /// Forward NTT of every limb.
    pub(crate) fn fwd(&self, p: &mut [u64]) {
        for (limb, plan) in p.chunks_exact_mut(self.degree).zip(&self.plans) {
            plan.fwd(limb);
        }
    }

    /// Inverse NTT (normalised) of every limb.
    pub(crate) fn inv(&self, p: &mut [u64]) {
        for (limb, plan) in p.chunks_exact_mut(self.degree).zip(&self.plans) {
            plan.inv(limb);
            plan.normalize(limb);
        }
    }

    /// The residues of signed integer coefficients.
    pub(crate) fn residues_of_signed(&self, c: &[i64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.poly_words());
        for &q in &self.moduli {
            out.extend(c.iter().map(|&v| {
                let r = (i128::from(v)).rem_euclid(i128::from(q));
                r as u64
            }));
        }
        out
    }

    /// The integers of `p` (`n` coefficients per prime, limb by limb, each of absolute value
    /// below `q / 4`), reduced modulo 2^64: Garner's mixed-radix conversion, centred by the top
    /// digit.
    pub(crate) fn decode_wrapping(&self, p: &[u64], n: usize) -> Vec<u64> {
        let k = self.moduli.len();
        let mut out = vec![0u64; n];
        let mut digits = vec![0u64; k];
        for (c, o) in out.iter_mut().enumerate() {
            for i in 0..k {
                let qi = self.moduli[i];
                let mut acc = 0u64;
                for (j, d) in digits.iter().enumerate().take(i) {
                    acc = add_mod(acc, mul_mod(*d % qi, self.prefix_mod[i][j], qi), qi);
                }
                digits[i] = mul_mod(sub_mod(p[i * n + c], acc, qi), self.garner_inv[i], qi);
            }
            let mut v = 0u64;
            for (d, w) in digits.iter().zip(&self.prefix_wrap) {
                v = v.wrapping_add(d.wrapping_mul(*w));
            }
            if digits[k - 1] >= self.moduli[k - 1] / 2 {
                v = v.wrapping_sub(self.q_wrap);
            }
            *o = v;
        }
        out
    }

    /// Checks `words` holds one polynomial with every word reduced modulo its prime.
    pub(crate) fn check_poly(
        &self,
        what: &'static str,
        words: &[u64],
        offset: usize,
    ) -> Result<()> {
        if words.len() != self.poly_words() {
            return Err(RlweError::Length {
                what,
                expected: self.poly_words(),
                got: words.len(),
            });
        }
        for (i, limb) in words.chunks_exact(self.degree).enumerate() {
            let q = self.moduli[i];
            if let Some(j) = limb.iter().position(|&w| w >= q) {
                return Err(RlweError::Unreduced {
                    what,
                    index: offset + i * self.degree + j,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_within_the_128_bit_security_bound_and_decodes_signed_values() -> Result<()> {
        let p = Params::default_set()?;
        assert!(p.modulus_bits() <= 218.0 && p.modulus_bits() > f64::from(64 + FLOOD_BITS + 3));
        let vals: Vec<i64> = (0..p.degree() as i64)
            .map(|i| (i - 4000) * 977_777_777)
            .collect();
        let res = p.residues_of_signed(&vals);
        let back = p.decode_wrapping(&res, p.degree());
        for (v, b) in vals.iter().zip(back) {
            assert_eq!(*v as u64, b);
        }
        // Too large a modulus for N = 4096 is refused, and so is too small a one.
        assert!(Params::new(4096, &[60, 60]).is_err());
        assert!(Params::new(8192, &[60, 60]).is_err());
        assert!(Params::new(1000, &[60]).is_err());
        Ok(())
    }
}
