//! Galois keys for rotations and conjugation.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::error::{CkksError, Result};
use crate::keys::{KeySwitchingKey, SecretKey};
use crate::params::CkksParameters;
use crate::poly;

/// One key per Galois element g (X -> X^g), with the NTT-slot permutation that applies it. Each
/// key serves ciphertexts up to its own level ([`crate::SecretKey::galois_keys_at_levels`]).
///
/// Keys are stored in the "rotated frame" σ_g^{-1}(k_j), so that a (hoisted) rotation is an
/// inner product of the *unpermuted* digits followed by a single permutation of the result:
/// Σ_j σ(d_j) k_j = σ(Σ_j d_j σ^{-1}(k_j)).
#[derive(Debug, Clone, PartialEq)]
pub struct GaloisKeys {
    pub(crate) params: Arc<CkksParameters>,
    pub(crate) keys: BTreeMap<u64, (KeySwitchingKey, Vec<u32>)>,
}

impl GaloisKeys {
    /// Keys for left rotations by `(step, level)` serving ciphertexts up to `level`, and for
    /// conjugation at the top level if asked.
    pub(crate) fn new<R: RngCore + CryptoRng>(
        sk: &SecretKey,
        steps: &[(i64, usize)],
        conjugate: bool,
        rng: &mut R,
    ) -> Self {
        let p = sk.params();
        // Galois element -> the highest level asked for it.
        let mut elements: BTreeMap<u64, usize> = BTreeMap::new();
        let conj = conjugate.then(|| (p.galois_element_conjugate(), p.max_level()));
        for (g, level) in steps
            .iter()
            .map(|&(s, l)| (p.galois_element_for_rotation(s), l.min(p.max_level())))
            .chain(conj)
            .filter(|&(g, _)| g != 1)
        {
            let e = elements.entry(g).or_insert(level);
            *e = (*e).max(level);
        }
        let mut keys = BTreeMap::new();
        for (g, level) in elements {
            let perm = p.galois_permutation(g);
            let mut s_g = poly::permute(&sk.ntt, &perm);
            let mut ksk = KeySwitchingKey::new(sk, &s_g, level, rng);
            s_g.zeroize();
            ksk.enter_rotated_frame(&perm);
            keys.insert(g, (ksk, perm));
        }
        Self {
            params: Arc::clone(p),
            keys,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// The Galois elements covered.
    pub fn galois_elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Whether a left rotation by `step` is covered at some level (step 0 always is).
    pub fn supports_rotation(&self, step: i64) -> bool {
        let g = self.params.galois_element_for_rotation(step);
        g == 1 || self.keys.contains_key(&g)
    }

    /// Whether a left rotation by `step` of a ciphertext at `level` is covered.
    pub fn supports_rotation_at(&self, step: i64, level: usize) -> bool {
        let g = self.params.galois_element_for_rotation(step);
        g == 1 || self.keys.get(&g).is_some_and(|(k, _)| k.level >= level)
    }

    /// Whether complex conjugation is covered.
    pub fn supports_conjugation(&self) -> bool {
        self.keys
            .contains_key(&self.params.galois_element_conjugate())
    }

    /// The key for `g`, checked to serve a ciphertext at `level`.
    pub(crate) fn get(&self, g: u64, level: usize) -> Result<&(KeySwitchingKey, Vec<u32>)> {
        let entry = self
            .keys
            .get(&g)
            .ok_or(CkksError::MissingGaloisKey { galois_element: g })?;
        if entry.0.level < level {
            return Err(CkksError::KeyLevelTooLow {
                galois_element: g,
                key_level: entry.0.level,
                level,
            });
        }
        Ok(entry)
    }
}
