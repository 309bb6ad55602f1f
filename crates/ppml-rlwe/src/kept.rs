//! Results cut down to the coefficients the client keeps.
//!
//! A linear layer's result is read at a few known coefficients only (a dense layer's outputs
//! are one coefficient in dozens). Decrypting coefficient `j` needs `c_0[j]` and all of `c_1`
//! (every coefficient of `c_1 s` depends on every coefficient of `c_1`), so the server sends
//! `c_1` whole and `c_0` at the kept coefficients only, as Cheetah does (Huang et al., USENIX
//! Security 2022, section 3: the server "only needs to send the coefficients of `c_0` that are
//! used"). What is dropped is a function of the full result, so the client learns less, not
//! more.
//!
//! ```text
//! kept result = c1 (poly_words, coefficient form) | c0 at the kept coefficients, prime by prime
//! ```

use crate::error::{Result, RlweError};
use crate::keys::SecretKey;
use crate::params::{add_mod, Params};

/// Words of a result kept at `kept` coefficients.
pub fn kept_words(params: &Params, kept: usize) -> usize {
    params.poly_words() + params.moduli().len() * kept
}

/// Checks that every position is a coefficient of the ring.
fn check_positions(params: &Params, positions: &[usize]) -> Result<()> {
    match positions.iter().find(|&&j| j >= params.degree()) {
        Some(j) => Err(RlweError::Plaintext {
            reason: format!("coefficient {j} kept of a degree-{} ring", params.degree()),
        }),
        None => Ok(()),
    }
}

/// A result (`c_0` then `c_1`, as [`crate::Accumulator::finish`] returns it) cut down to what
/// decrypting the coefficients at `positions` needs.
pub fn keep_coefficients(params: &Params, ct: &[u64], positions: &[usize]) -> Result<Vec<u64>> {
    let (pw, n) = (params.poly_words(), params.degree());
    if ct.len() != 2 * pw {
        return Err(RlweError::Length {
            what: "ciphertext",
            expected: 2 * pw,
            got: ct.len(),
        });
    }
    check_positions(params, positions)?;
    let mut out = Vec::with_capacity(kept_words(params, positions.len()));
    out.extend_from_slice(&ct[pw..]);
    for limb in ct[..pw].chunks_exact(n) {
        out.extend(positions.iter().map(|&j| limb[j]));
    }
    Ok(out)
}

impl SecretKey {
    /// Decrypts a result kept at `positions` (see [`keep_coefficients`]) to those coefficients,
    /// in order, in `Z_2^64`. Every word is checked: lengths, positions, reduction modulo each
    /// prime.
    pub fn decrypt_kept(&self, words: &[u64], positions: &[usize]) -> Result<Vec<u64>> {
        let p = self.params();
        let (pw, n, k) = (p.poly_words(), p.degree(), positions.len());
        let expected = kept_words(p, k);
        if words.len() != expected {
            return Err(RlweError::Length {
                what: "kept ciphertext",
                expected,
                got: words.len(),
            });
        }
        check_positions(p, positions)?;
        let (c1, c0) = words.split_at(pw);
        for (i, (limb, &q)) in c0.chunks_exact(k.max(1)).zip(p.moduli()).enumerate() {
            if let Some(j) = limb.iter().position(|&w| w >= q) {
                return Err(RlweError::Unreduced {
                    what: "kept ciphertext c0",
                    index: pw + i * k + j,
                });
            }
        }
        let v = self.c1_times_s(c1, 0)?;
        let mut sel = Vec::with_capacity(p.moduli().len() * k);
        for (i, (limb, &q)) in c0.chunks_exact(k.max(1)).zip(p.moduli()).enumerate() {
            sel.extend(
                positions
                    .iter()
                    .zip(limb)
                    .map(|(&j, &c)| add_mod(v[i * n + j], c, q)),
            );
        }
        Ok(p.decode_wrapping(&sel, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Accumulator, PlainPoly};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn a_kept_result_decrypts_to_the_full_results_coefficients_and_bad_input_is_refused(
    ) -> Result<()> {
        let params = Params::default_set()?;
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sk = SecretKey::generate_with_rng(&params, &mut rng);
        let pk = sk.public_key_with_rng(&mut rng)?;
        let n = params.degree();
        let x: Vec<u64> = (0..n as u64).map(|i| i * 3 + 1).collect();
        let up = sk.encrypt_with_rng(&x, &mut rng)?;
        let ct = crate::Ciphertext::from_upload(&params, &up)?;
        let mut w = vec![0i64; n];
        w[0] = 2;
        w[5] = -1;
        let mut acc = Accumulator::new(&params);
        acc.add_product(&ct, &PlainPoly::new(&params, &w)?);
        let mask = vec![7u64; n];
        let full = acc.finish_with_rng(&pk, &mask, &mut rng)?;
        let all = sk.decrypt(&full)?;
        let positions = [0usize, 1, 17, n - 1, 4000];
        let kept = keep_coefficients(&params, &full, &positions)?;
        assert_eq!(kept.len(), kept_words(&params, positions.len()));
        let got = sk.decrypt_kept(&kept, &positions)?;
        let want: Vec<u64> = positions.iter().map(|&j| all[j]).collect();
        assert_eq!(got, want);
        // Wrong length, a position outside the ring, an unreduced word: typed errors.
        assert!(sk.decrypt_kept(&kept[1..], &positions).is_err());
        assert!(sk.decrypt_kept(&kept, &[0, 1, 17, n, 4000]).is_err());
        assert!(keep_coefficients(&params, &full, &[n]).is_err());
        let mut bad = kept.clone();
        let last = bad.len() - 1;
        bad[last] = u64::MAX;
        assert!(matches!(
            sk.decrypt_kept(&bad, &positions),
            Err(RlweError::Unreduced { .. })
        ));
        Ok(())
    }
}
