//! Galois keys for rotations and conjugation.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroize;

use crate::error::{CkksError, Result};
use crate::keys::{KeySwitchingKey, SecretKey};
use crate::params::CkksParameters;
use crate::poly;
use crate::sampling;

/// One key per Galois element g (X -> X^g), with the NTT-slot permutation that applies it.
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
    pub(crate) fn new(sk: &SecretKey, steps: &[i64], conjugate: bool) -> Result<Self> {
        let p = sk.params();
        let mut elements: Vec<u64> = steps
            .iter()
            .map(|&s| p.galois_element_for_rotation(s))
            .filter(|&g| g != 1)
            .collect();
        if conjugate {
            elements.push(p.galois_element_conjugate());
        }
        elements.sort_unstable();
        elements.dedup();
        let mut rng = sampling::os_rng()?;
        let mut keys = BTreeMap::new();
        for g in elements {
            let perm = p.galois_permutation(g);
            let mut s_g = poly::permute(&sk.ntt, &perm);
            let mut ksk = KeySwitchingKey::new(sk, &s_g, &mut rng);
            s_g.zeroize();
            ksk.enter_rotated_frame(&perm);
            keys.insert(g, (ksk, perm));
        }
        Ok(Self {
            params: Arc::clone(p),
            keys,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// The Galois elements covered.
    pub fn galois_elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Whether a left rotation by `step` is covered (step 0 always is).
    pub fn supports_rotation(&self, step: i64) -> bool {
        let g = self.params.galois_element_for_rotation(step);
        g == 1 || self.keys.contains_key(&g)
    }

    /// Whether complex conjugation is covered.
    pub fn supports_conjugation(&self) -> bool {
        self.keys
            .contains_key(&self.params.galois_element_conjugate())
    }

    pub(crate) fn get(&self, g: u64) -> Result<&(KeySwitchingKey, Vec<u32>)> {
        self.keys
            .get(&g)
            .ok_or(CkksError::MissingGaloisKey { galois_element: g })
    }
}
