//! Keys, encryption and decryption (the client's side).
//!
//! Secret key `s` uniform ternary. Symmetric encryption of `m` (coefficients in `Z_2^64`):
//! `(c_0, c_1) = (-a s + m + t e, a)` with `a` uniform, expanded from a 32-byte seed that travels
//! instead of `a`. Public key `(p_0, p_1) = (-a s + t e, a)`, also seeded. Decryption:
//! `c_0 + c_1 s` lifted to the integers (centred) and reduced modulo `t = 2^64`.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{Result, RlweError};
use crate::params::{add_mod, mul_mod, sub_mod, Params};
use crate::sampling::{cbd, os_rng, ternary, uniform_from_seed};

/// Words of a seed on the wire.
pub(crate) const SEED_WORDS: usize = 4;

pub(crate) fn seed_words(seed: &[u8; 32]) -> Vec<u64> {
    seed.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

pub(crate) fn words_seed(w: &[u64]) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (c, v) in s.chunks_exact_mut(8).zip(w) {
        c.copy_from_slice(&v.to_le_bytes());
    }
    s
}

/// Pointwise product of two NTT-form polynomials.
pub(crate) fn ntt_mul(params: &Params, a: &[u64], b: &[u64]) -> Vec<u64> {
    let n = params.degree();
    let mut out = vec![0u64; a.len()];
    for (i, (_, plan)) in params.limbs().enumerate() {
        let r = i * n..(i + 1) * n;
        plan.mul_accumulate(&mut out[r.clone()], &a[r.clone()], &b[r]);
    }
    out
}

/// Adds `t * e + m` (signed coefficients `e`, `m` in `Z_2^64` lifted to `(-2^63, 2^63]`) to a
/// coefficient-form polynomial.
pub(crate) fn add_message(params: &Params, p: &mut [u64], m: &[u64], e: &[i64]) {
    let n = params.degree();
    for (i, (q, _)) in params.limbs().enumerate() {
        let t = params.two64(i);
        for (j, c) in p[i * n..(i + 1) * n].iter_mut().enumerate() {
            let mj = (i128::from(m[j] as i64)).rem_euclid(i128::from(q)) as u64;
            let ej = (i128::from(e[j])).rem_euclid(i128::from(q)) as u64;
            *c = add_mod(add_mod(*c, mj, q), mul_mod(t, ej, q), q);
        }
    }
}

/// The secret key (uniform ternary), kept in NTT form; zeroised on drop, never printed.
pub struct SecretKey {
    params: Arc<Params>,
    s_ntt: Zeroizing<Vec<u64>>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The public key in NTT form, with its wire form.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub(crate) p0: Vec<u64>,
    pub(crate) p1: Vec<u64>,
    words: Vec<u64>,
}

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(params: &Arc<Params>) -> Result<Self> {
        Ok(Self::generate_with_rng(params, &mut os_rng()?))
    }

    /// A fresh key from the given cryptographic RNG.
    pub fn generate_with_rng<R: RngCore + CryptoRng>(params: &Arc<Params>, rng: &mut R) -> Self {
        let s = Zeroizing::new(ternary(rng, params.degree()));
        let mut s_ntt = Zeroizing::new(params.residues_of_signed(&s));
        params.fwd(&mut s_ntt);
        Self {
            params: params.clone(),
            s_ntt,
        }
    }

    /// `-a s + m + t e` in coefficient form for a fresh seed; returns (seed, c_0).
    fn encrypt_raw<R: RngCore + CryptoRng>(
        &self,
        m: &[u64],
        rng: &mut R,
    ) -> Result<([u8; 32], Vec<u64>)> {
        let p = &self.params;
        if m.len() != p.degree() {
            return Err(RlweError::Plaintext {
                reason: format!("{} coefficients for degree {}", m.len(), p.degree()),
            });
        }
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = uniform_from_seed(p, seed);
        let mut c0 = ntt_mul(p, &a, &self.s_ntt);
        p.inv(&mut c0);
        for (i, (q, _)) in p.limbs().enumerate() {
            for c in &mut c0[i * p.degree()..(i + 1) * p.degree()] {
                *c = sub_mod(0, *c, q);
            }
        }
        let e = cbd(rng, p.degree());
        add_message(p, &mut c0, m, &e);
        Ok((seed, c0))
    }

    /// Encrypts `m` (one coefficient per ring element of `Z_2^64`, `degree` of them): the
    /// upload, a seed and `c_0`.
    pub fn encrypt(&self, m: &[u64]) -> Result<Vec<u64>> {
        self.encrypt_with_rng(m, &mut os_rng()?)
    }

    /// [`Self::encrypt`] with the given cryptographic RNG.
    pub fn encrypt_with_rng<R: RngCore + CryptoRng>(
        &self,
        m: &[u64],
        rng: &mut R,
    ) -> Result<Vec<u64>> {
        let (seed, c0) = self.encrypt_raw(m, rng)?;
        let mut out = seed_words(&seed);
        out.extend(c0);
        Ok(out)
    }

    /// The public key (an encryption of zero).
    pub fn public_key(&self) -> Result<PublicKey> {
        self.public_key_with_rng(&mut os_rng()?)
    }

    /// [`Self::public_key`] with the given cryptographic RNG.
    pub fn public_key_with_rng<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<PublicKey> {
        let zero = vec![0u64; self.params.degree()];
        let (seed, c0) = self.encrypt_raw(&zero, rng)?;
        let mut words = seed_words(&seed);
        words.extend_from_slice(&c0);
        PublicKey::from_words(&self.params, &words)
    }

    /// Decrypts a result (`c_0` then `c_1`, coefficient form) to its coefficients in `Z_2^64`.
    pub fn decrypt(&self, words: &[u64]) -> Result<Vec<u64>> {
        let p = &self.params;
        let pw = p.poly_words();
        if words.len() != 2 * pw {
            return Err(RlweError::Length {
                what: "ciphertext",
                expected: 2 * pw,
                got: words.len(),
            });
        }
        p.check_poly("ciphertext c0", &words[..pw], 0)?;
        let mut v = self.c1_times_s(&words[pw..], pw)?;
        for (i, (q, _)) in p.limbs().enumerate() {
            let r = i * p.degree()..(i + 1) * p.degree();
            for (x, c) in v[r.clone()].iter_mut().zip(&words[r]) {
                *x = add_mod(*x, *c, q);
            }
        }
        Ok(p.decode_wrapping(&v, p.degree()))
    }

    /// The parameters the key belongs to.
    pub(crate) fn params(&self) -> &Params {
        &self.params
    }

    /// `c_1 s` in coefficient form, after checking `c_1` (found at word `offset` of its message).
    pub(crate) fn c1_times_s(&self, c1: &[u64], offset: usize) -> Result<Vec<u64>> {
        let p = &self.params;
        p.check_poly("ciphertext c1", c1, offset)?;
        let mut c1 = c1.to_vec();
        p.fwd(&mut c1);
        let mut v = ntt_mul(p, &c1, &self.s_ntt);
        p.inv(&mut v);
        Ok(v)
    }
}

impl PublicKey {
    /// Decodes a public key (seed, then `p_0` in coefficient form), validating every word.
    pub fn from_words(params: &Arc<Params>, words: &[u64]) -> Result<Self> {
        let pw = params.poly_words();
        if words.len() != SEED_WORDS + pw {
            return Err(RlweError::Length {
                what: "public key",
                expected: SEED_WORDS + pw,
                got: words.len(),
            });
        }
        params.check_poly("public key", &words[SEED_WORDS..], SEED_WORDS)?;
        let mut p0 = words[SEED_WORDS..].to_vec();
        params.fwd(&mut p0);
        let p1 = uniform_from_seed(params, words_seed(&words[..SEED_WORDS]));
        Ok(Self {
            p0,
            p1,
            words: words.to_vec(),
        })
    }

    /// The wire form.
    pub fn to_words(&self) -> &[u64] {
        &self.words
    }
}
