//! Base oblivious transfers: the "simplest OT" of Chou and Orlandi (LATINCRYPT 2015) on the
//! Ristretto group of curve25519 (curve25519-dalek), semi-honest, 128 at a time to seed IKNP.
//!
//! Sender: `y` random, sends `S = yG`. Receiver with choice `c_i`: `x_i` random, sends
//! `R_i = c_i S + x_i G` and keeps `k_i = H(i, S, R_i, x_i S)`. Sender: `k_i^0 = H(i, S, R_i, y R_i)`
//! and `k_i^1 = H(i, S, R_i, y (R_i - S))`. `H` is SHA-256 truncated to 128 bits.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand::{rngs::OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::{HybridError, Result};
use crate::link::Link;

fn random_scalar() -> Scalar {
    let mut wide = [0u8; 64];
    OsRng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

fn point_words(p: &RistrettoPoint) -> [u64; 4] {
    let bytes = p.compress().to_bytes();
    let mut w = [0u64; 4];
    for (wi, c) in w.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *wi = u64::from_le_bytes(b);
    }
    w
}

fn words_point(what: &'static str, index: usize, w: &[u64]) -> Result<RistrettoPoint> {
    let mut bytes = [0u8; 32];
    for (c, wi) in bytes.chunks_exact_mut(8).zip(w) {
        c.copy_from_slice(&wi.to_le_bytes());
    }
    CompressedRistretto(bytes)
        .decompress()
        .ok_or(HybridError::InvalidContent { what, index })
}

fn key(i: usize, s: &RistrettoPoint, r: &RistrettoPoint, shared: &RistrettoPoint) -> u128 {
    let mut h = Sha256::new();
    h.update(b"ppml-hybrid/co15");
    h.update((i as u64).to_le_bytes());
    h.update(s.compress().as_bytes());
    h.update(r.compress().as_bytes());
    h.update(shared.compress().as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    u128::from_le_bytes(k)
}

/// The sender's side of `n` base OTs: returns the key pairs `(k_i^0, k_i^1)`.
pub fn send(link: &mut dyn Link, n: usize) -> Result<Vec<[u128; 2]>> {
    let y = random_scalar();
    let s = RistrettoPoint::mul_base(&y);
    link.send(point_words(&s).to_vec())?;
    let msg = link.recv_exact("base OT points", 4 * n)?;
    let ys = y * s;
    (0..n)
        .map(|i| {
            let r = words_point("base OT points", 4 * i, &msg[4 * i..4 * i + 4])?;
            let yr = y * r;
            Ok([key(i, &s, &r, &yr), key(i, &s, &r, &(yr - ys))])
        })
        .collect()
}

/// The receiver's side: returns `k_i^{c_i}` for its choices `c_i`.
pub fn receive(link: &mut dyn Link, choices: &[bool]) -> Result<Vec<u128>> {
    let s_words = link.recv_exact("base OT sender point", 4)?;
    let s = words_point("base OT sender point", 0, &s_words)?;
    let xs: Vec<Scalar> = choices.iter().map(|_| random_scalar()).collect();
    let rs: Vec<RistrettoPoint> = choices
        .iter()
        .zip(&xs)
        .map(|(&c, x)| {
            let xg = RistrettoPoint::mul_base(x);
            if c {
                xg + s
            } else {
                xg
            }
        })
        .collect();
    link.send(rs.iter().flat_map(point_words).collect())?;
    Ok(rs
        .iter()
        .zip(&xs)
        .enumerate()
        .map(|(i, (r, x))| key(i, &s, r, &(x * s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::memory_pair;
    use std::time::Duration;

    #[test]
    fn receiver_gets_the_chosen_key_and_not_the_other() -> Result<()> {
        let (mut a, mut b) = memory_pair(Duration::from_secs(10));
        let choices: Vec<bool> = (0..16).map(|i| i % 3 == 1).collect();
        let c2 = choices.clone();
        let h = std::thread::spawn(move || receive(&mut b, &c2));
        let pairs = send(&mut a, 16)?;
        let got = h.join().map_err(|_| HybridError::InvalidContent {
            what: "join",
            index: 0,
        })??;
        for ((p, g), c) in pairs.iter().zip(&got).zip(&choices) {
            assert_eq!(*g, p[usize::from(*c)]);
            assert_ne!(*g, p[usize::from(!*c)]);
        }
        Ok(())
    }

    #[test]
    fn an_invalid_point_is_a_typed_error() -> Result<()> {
        let (mut a, mut b) = memory_pair(Duration::from_secs(10));
        a.send(vec![u64::MAX; 4])?;
        assert!(matches!(
            receive(&mut b, &[true]),
            Err(HybridError::InvalidContent { .. })
        ));
        Ok(())
    }
}
