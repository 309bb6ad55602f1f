//! The canonical-embedding encoder: N/2 complex (or real) slots <-> a scaled integer polynomial,
//! through the "special" FFT over the roots zeta^(5^j) of X^N + 1.

use std::sync::Arc;

use rayon::prelude::*;

use crate::arith::{reduce_i128, Shoup};
use crate::embedding::Complex;
use crate::error::{CkksError, Result};
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::poly::{mods, ntt_inv, RnsPoly};
use crate::simd::{reduce_any, simd};

/// Encodes and decodes vectors of slots for one parameter set.
#[derive(Debug, Clone)]
pub struct Encoder {
    params: Arc<CkksParameters>,
}

impl Encoder {
    /// An encoder for these parameters.
    pub fn new(params: &Arc<CkksParameters>) -> Self {
        Self {
            params: Arc::clone(params),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// Encodes up to N/2 real values (missing slots are zero) at `level` and `scale`.
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let slots: Vec<Complex> = values.iter().map(|&r| Complex::new(r, 0.0)).collect();
        self.encode_complex(&slots, level, scale)
    }

    /// Encodes up to N/2 complex values at `level` and `scale`.
    pub fn encode_complex(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        let p = &self.params;
        let coeffs = self.coefficients(values, level, scale)?;
        let poly = self.poly_from_signed(&coeffs, level);
        Ok(Plaintext::from_parts(Arc::clone(p), poly, level, scale))
    }

    /// The integer coefficients encoding `values` (at most N/2) at `scale`, after checking the
    /// values, the level and the scale.
    pub(crate) fn coefficients(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Vec<i128>> {
        let p = &self.params;
        let slots = p.slots();
        if values.len() > slots {
            return Err(CkksError::TooManyValues {
                given: values.len(),
                slots,
            });
        }
        if level > p.max_level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: p.max_level(),
            });
        }
        if !scale.is_finite() || scale <= 0.0 {
            return Err(CkksError::InvalidScale {
                scale,
                reason: "must be finite and positive",
            });
        }
        let mut v = vec![Complex::default(); slots];
        v[..values.len()].copy_from_slice(values);
        p.encoder.ifft(&mut v);
        let mut coeffs = vec![0i128; p.degree()];
        for (k, c) in v.iter().enumerate() {
            coeffs[k] = round_scaled(c.re, scale)?;
            coeffs[k + slots] = round_scaled(c.im, scale)?;
        }
        Ok(coeffs)
    }

    /// Encodes the same real value in every slot (a constant polynomial).
    pub fn encode_constant(&self, value: f64, level: usize, scale: f64) -> Result<Plaintext> {
        let p = &self.params;
        if level > p.max_level() {
            return Err(CkksError::InvalidLevel {
                level,
                max: p.max_level(),
            });
        }
        let c = round_scaled(value, scale)?;
        let limbs = (0..=level)
            .map(|i| vec![reduce_i128(c, p.moduli[i].value); p.degree()])
            .collect();
        Ok(Plaintext::from_parts(
            Arc::clone(p),
            RnsPoly { limbs },
            level,
            scale,
        ))
    }

    /// Integer polynomial (signed coefficients) -> NTT form over the primes of `level`.
    pub(crate) fn poly_from_signed(&self, coeffs: &[i128], level: usize) -> RnsPoly {
        let p = &self.params;
        let idx: Vec<usize> = (0..=level).collect();
        let m = mods(p, &idx);
        // The usual case, every |c| < 2^62: one conversion to i64, then a vectorised reduction.
        let small: Option<Vec<i64>> = coeffs
            .iter()
            .map(|&c| (c.unsigned_abs() < 1 << 62).then_some(c as i64))
            .collect();
        let limbs: Vec<Vec<u64>> = m
            .par_iter()
            .map(|m| {
                let q = m.value;
                let mut l: Vec<u64> = match &small {
                    Some(small) => {
                        let inv_q = 1.0 / q as f64;
                        simd(
                            #[inline(always)]
                            || {
                                small
                                    .iter()
                                    .map(|&c| {
                                        let r = reduce_any(c.unsigned_abs(), q, inv_q);
                                        if c < 0 && r != 0 {
                                            q - r
                                        } else {
                                            r
                                        }
                                    })
                                    .collect()
                            },
                        )
                    }
                    None => coeffs.iter().map(|&c| reduce_i128(c, q)).collect(),
                };
                m.plan.fwd(&mut l);
                l
            })
            .collect();
        RnsPoly { limbs }
    }

    /// Decodes the real parts of all N/2 slots.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<f64>> {
        Ok(self.decode_complex(pt)?.into_iter().map(|c| c.re).collect())
    }

    /// Decodes all N/2 complex slots.
    pub fn decode_complex(&self, pt: &Plaintext) -> Result<Vec<Complex>> {
        let p = &self.params;
        CkksParameters::check_same(p, pt.params())?;
        let level = pt.level();
        let idx: Vec<usize> = (0..=level).collect();
        let mut poly = pt.poly.clone();
        ntt_inv(&mods(p, &idx), &mut poly);
        let coeffs = crt_to_f64(p.chain(), &poly, level);
        let slots = p.slots();
        let inv = 1.0 / pt.scale();
        let mut v: Vec<Complex> = (0..slots)
            .map(|k| Complex::new(coeffs[k] * inv, coeffs[k + slots] * inv))
            .collect();
        p.encoder.fft(&mut v);
        Ok(v)
    }
}

fn round_scaled(x: f64, scale: f64) -> Result<i128> {
    let y = (x * scale).round();
    if !y.is_finite() {
        return Err(CkksError::EncodingOverflow {
            reason: "value is not finite",
        });
    }
    if y.abs() >= 2f64.powi(120) {
        return Err(CkksError::EncodingOverflow {
            reason: "scaled value exceeds 2^120",
        });
    }
    // f64 -> i64 is a single instruction, f64 -> i128 a library call.
    Ok(if y.abs() < 2f64.powi(62) {
        i128::from(y as i64)
    } else {
        y as i128
    })
}

/// CRT-reconstructs each coefficient (centred modulo Q_level) as an f64.
fn crt_to_f64(chain: &[u64], poly: &RnsPoly, level: usize) -> Vec<f64> {
    let n = poly.limbs[0].len();
    if level == 0 {
        let q = chain[0];
        return poly.limbs[0]
            .iter()
            .map(|&x| {
                if x > q / 2 {
                    -((q - x) as f64)
                } else {
                    x as f64
                }
            })
            .collect();
    }
    let q = &chain[..=level];
    // Big integers as little-endian u64 words.
    let words = level + 2;
    let mut big_q = vec![0u64; words];
    big_q[0] = 1;
    for &qi in q {
        big_mul_small(&mut big_q, qi);
    }
    let hats: Vec<Vec<u64>> = (0..q.len())
        .map(|i| {
            let mut h = vec![0u64; words];
            h[0] = 1;
            for (k, &qk) in q.iter().enumerate() {
                if k != i {
                    big_mul_small(&mut h, qk);
                }
            }
            h
        })
        .collect();
    let hat_inv: Vec<Shoup> = q
        .iter()
        .enumerate()
        .map(|(i, &qi)| {
            let h = q
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != i)
                .fold(1u64, |a, (_, &qk)| crate::arith::mul_mod(a, qk % qi, qi));
            Shoup::new(crate::arith::inv_mod(h, qi), qi)
        })
        .collect();
    let mut half_q = big_q.clone();
    big_shr1(&mut half_q);
    (0..n)
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0u64; words + 1];
            for (i, &qi) in q.iter().enumerate() {
                let y = hat_inv[i].mul(poly.limbs[i][c], qi);
                big_mul_add(&mut acc, &hats[i], y);
            }
            while big_cmp(&acc, &big_q) != std::cmp::Ordering::Less {
                big_sub(&mut acc, &big_q);
            }
            if big_cmp(&acc, &half_q) == std::cmp::Ordering::Greater {
                let mut neg = big_q.clone();
                neg.push(0);
                big_sub(&mut neg, &acc);
                -big_to_f64(&neg)
            } else {
                big_to_f64(&acc)
            }
        })
        .collect()
}

fn big_mul_small(a: &mut [u64], m: u64) {
    let mut carry = 0u128;
    for w in a.iter_mut() {
        let t = u128::from(*w) * u128::from(m) + carry;
        *w = t as u64;
        carry = t >> 64;
    }
}

fn big_mul_add(acc: &mut [u64], a: &[u64], m: u64) {
    let mut carry = 0u128;
    for (i, w) in acc.iter_mut().enumerate() {
        let ai = a.get(i).copied().unwrap_or(0);
        let t = u128::from(*w) + u128::from(ai) * u128::from(m) + carry;
        *w = t as u64;
        carry = t >> 64;
    }
}

fn big_cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    for i in (0..n).rev() {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

fn big_sub(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for (i, w) in a.iter_mut().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        let (d1, b1) = w.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(borrow);
        *w = d2;
        borrow = u64::from(b1 || b2);
    }
}

fn big_shr1(a: &mut [u64]) {
    let mut carry = 0u64;
    for w in a.iter_mut().rev() {
        let nc = *w & 1;
        *w = (*w >> 1) | (carry << 63);
        carry = nc;
    }
}

fn big_to_f64(a: &[u64]) -> f64 {
    a.iter()
        .rev()
        .fold(0.0, |acc, &w| acc * 18_446_744_073_709_551_616.0 + w as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_helpers() {
        let mut a = vec![u64::MAX, 0, 0];
        big_mul_small(&mut a, 3);
        assert_eq!(a, vec![u64::MAX - 2, 2, 0]);
        assert!((big_to_f64(&a) - 3.0 * (u64::MAX as f64)).abs() < 1e6);
    }
}
