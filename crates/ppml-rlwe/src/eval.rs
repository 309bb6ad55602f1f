//! The server's side: ciphertexts from the client, products with plaintext polynomials, and the
//! masked, re-randomised, noise-flooded result that goes back.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};

use crate::error::{Result, RlweError};
use crate::keys::{add_message, ntt_mul, words_seed, PublicKey, SEED_WORDS};
use crate::params::{add_mod, mul_mod, sub_mod, Params, FLOOD_BITS, MAX_L1_BITS};
use crate::sampling::{cbd, os_rng, ternary, uniform_from_seed, wide_uniform};

/// A plaintext polynomial with integer coefficients (the server's weights), in NTT form.
#[derive(Clone, Debug)]
pub struct PlainPoly {
    ntt: Vec<u64>,
    l1: u128,
}

impl PlainPoly {
    /// From `degree` signed coefficients.
    pub fn new(params: &Params, coeffs: &[i64]) -> Result<Self> {
        if coeffs.len() != params.degree() {
            return Err(RlweError::Plaintext {
                reason: format!(
                    "{} coefficients for degree {}",
                    coeffs.len(),
                    params.degree()
                ),
            });
        }
        let mut ntt = params.residues_of_signed(coeffs);
        params.fwd(&mut ntt);
        let l1 = coeffs.iter().map(|c| u128::from(c.unsigned_abs())).sum();
        Ok(Self { ntt, l1 })
    }

    /// The L1 norm of the coefficients.
    pub fn l1(&self) -> u128 {
        self.l1
    }
}

/// A client's ciphertext in NTT form.
#[derive(Clone, Debug)]
pub struct Ciphertext {
    c0: Vec<u64>,
    c1: Vec<u64>,
}

impl Ciphertext {
    /// Decodes an upload (seed, then `c_0` in coefficient form), validating every word.
    pub fn from_upload(params: &Params, words: &[u64]) -> Result<Self> {
        let pw = params.poly_words();
        if words.len() != SEED_WORDS + pw {
            return Err(RlweError::Length {
                what: "upload",
                expected: SEED_WORDS + pw,
                got: words.len(),
            });
        }
        params.check_poly("upload", &words[SEED_WORDS..], SEED_WORDS)?;
        let mut c0 = words[SEED_WORDS..].to_vec();
        params.fwd(&mut c0);
        let c1 = uniform_from_seed(params, words_seed(&words[..SEED_WORDS]));
        Ok(Self { c0, c1 })
    }
}

/// A sum of ciphertext-plaintext products, to be finished into a result.
#[derive(Clone, Debug)]
pub struct Accumulator {
    params: Arc<Params>,
    c0: Vec<u64>,
    c1: Vec<u64>,
    l1: u128,
}

impl Accumulator {
    /// An empty sum.
    pub fn new(params: &Arc<Params>) -> Self {
        Self {
            params: params.clone(),
            c0: vec![0; params.poly_words()],
            c1: vec![0; params.poly_words()],
            l1: 0,
        }
    }

    /// Adds `ct * pt`.
    pub fn add_product(&mut self, ct: &Ciphertext, pt: &PlainPoly) {
        let n = self.params.degree();
        for (i, (_, plan)) in self.params.limbs().enumerate() {
            let r = i * n..(i + 1) * n;
            plan.mul_accumulate(
                &mut self.c0[r.clone()],
                &ct.c0[r.clone()],
                &pt.ntt[r.clone()],
            );
            plan.mul_accumulate(&mut self.c1[r.clone()], &ct.c1[r.clone()], &pt.ntt[r]);
        }
        self.l1 += pt.l1;
    }

    /// The result for the client: the sum minus `mask` (`degree` elements of `Z_2^64`),
    /// re-randomised with a fresh public-key encryption of zero and flooded with uniform noise
    /// of [`FLOOD_BITS`] bits times `t`; `c_0` then `c_1` in coefficient form.
    pub fn finish(self, pk: &PublicKey, mask: &[u64]) -> Result<Vec<u64>> {
        self.finish_with_rng(pk, mask, &mut os_rng()?)
    }

    /// [`Self::finish`] with the given cryptographic RNG.
    pub fn finish_with_rng<R: RngCore + CryptoRng>(
        mut self,
        pk: &PublicKey,
        mask: &[u64],
        rng: &mut R,
    ) -> Result<Vec<u64>> {
        let p = self.params.clone();
        let n = p.degree();
        if self.l1 > 1u128 << MAX_L1_BITS {
            return Err(RlweError::Plaintext {
                reason: format!(
                    "L1 norm 2^{:.1} exceeds the noise budget",
                    (self.l1 as f64).log2()
                ),
            });
        }
        if mask.len() != n {
            return Err(RlweError::Plaintext {
                reason: format!("mask of {} for degree {n}", mask.len()),
            });
        }
        let mut u = p.residues_of_signed(&ternary(rng, n));
        p.fwd(&mut u);
        let pu0 = ntt_mul(&p, &pk.p0, &u);
        let pu1 = ntt_mul(&p, &pk.p1, &u);
        for (i, (q, _)) in p.limbs().enumerate() {
            for j in i * n..(i + 1) * n {
                self.c0[j] = add_mod(self.c0[j], pu0[j], q);
                self.c1[j] = add_mod(self.c1[j], pu1[j], q);
            }
        }
        p.inv(&mut self.c0);
        p.inv(&mut self.c1);
        let e1 = cbd(rng, n);
        let e2 = cbd(rng, n);
        let zero = vec![0u64; n];
        add_message(&p, &mut self.c1, &zero, &e2);
        add_message(&p, &mut self.c0, &zero, &e1);
        let flood = wide_uniform(rng, n, FLOOD_BITS);
        for (i, (q, _)) in p.limbs().enumerate() {
            let t = p.two64(i);
            let qq = i128::from(q);
            for (j, c) in self.c0[i * n..(i + 1) * n].iter_mut().enumerate() {
                let f = flood[j].rem_euclid(qq) as u64;
                let m = mask[j] % q;
                *c = sub_mod(add_mod(*c, mul_mod(t, f, q), q), m, q);
            }
        }
        let mut out = self.c0;
        out.extend(self.c1);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Negacyclic product over Z_2^64 of `m` (lifted centred) and integer `k`, the reference.
    fn negacyclic(m: &[u64], k: &[i64]) -> Vec<u64> {
        let n = m.len();
        let mut out = vec![0u64; n];
        for (i, &a) in m.iter().enumerate() {
            if a == 0 {
                continue;
            }
            for (j, &b) in k.iter().enumerate() {
                if b == 0 {
                    continue;
                }
                let prod = a.wrapping_mul(b as u64);
                let idx = i + j;
                if idx < n {
                    out[idx] = out[idx].wrapping_add(prod);
                } else {
                    out[idx - n] = out[idx - n].wrapping_sub(prod);
                }
            }
        }
        out
    }

    #[test]
    fn products_of_encrypted_shares_decrypt_exactly_after_masking() -> Result<()> {
        let params = Params::default_set()?;
        let n = params.degree();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let sk = SecretKey::generate_with_rng(&params, &mut rng);
        let pk = PublicKey::from_words(&params, sk.public_key_with_rng(&mut rng)?.to_words())?;
        // Two uploads of full-range ring elements, two sparse plaintexts of 17-bit weights.
        let m1: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
        let m2: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
        let mut k1 = vec![0i64; n];
        let mut k2 = vec![0i64; n];
        for j in (0..n).step_by(97) {
            k1[j] = (rng.next_u64() % (1 << 17)) as i64 - (1 << 16);
            k2[(j * 7 + 3) % n] = (rng.next_u64() % (1 << 17)) as i64 - (1 << 16);
        }
        let mask: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
        let up1 = Ciphertext::from_upload(&params, &sk.encrypt_with_rng(&m1, &mut rng)?)?;
        let up2 = Ciphertext::from_upload(&params, &sk.encrypt_with_rng(&m2, &mut rng)?)?;
        let mut acc = Accumulator::new(&params);
        acc.add_product(&up1, &PlainPoly::new(&params, &k1)?);
        acc.add_product(&up2, &PlainPoly::new(&params, &k2)?);
        let res = acc.finish_with_rng(&pk, &mask, &mut rng)?;
        let got = sk.decrypt(&res)?;
        let want: Vec<u64> = negacyclic(&m1, &k1)
            .iter()
            .zip(negacyclic(&m2, &k2))
            .zip(&mask)
            .map(|((a, b), r)| a.wrapping_add(b).wrapping_sub(*r))
            .collect();
        assert!(got == want, "decryption differs from the plain product");
        Ok(())
    }

    #[test]
    fn decoders_reject_bad_lengths_and_unreduced_words_and_the_budget_is_enforced() -> Result<()> {
        let params = Params::default_set()?;
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sk = SecretKey::generate_with_rng(&params, &mut rng);
        let mut up = sk.encrypt_with_rng(&vec![1u64; params.degree()], &mut rng)?;
        assert!(matches!(
            Ciphertext::from_upload(&params, &up[1..]),
            Err(RlweError::Length { .. })
        ));
        up[10] = u64::MAX;
        assert!(matches!(
            Ciphertext::from_upload(&params, &up),
            Err(RlweError::Unreduced { index: 10, .. })
        ));
        assert!(sk.decrypt(&[0u64; 5]).is_err());
        let pk = sk.public_key_with_rng(&mut rng)?;
        let mut big = vec![0i64; params.degree()];
        big[0] = 1 << 41;
        let mut acc = Accumulator::new(&params);
        let ct = Ciphertext::from_upload(
            &params,
            &sk.encrypt_with_rng(&vec![0u64; params.degree()], &mut rng)?,
        )?;
        acc.add_product(&ct, &PlainPoly::new(&params, &big)?);
        assert!(acc
            .finish_with_rng(&pk, &vec![0u64; params.degree()], &mut rng)
            .is_err());
        Ok(())
    }
}
