//! The relinearisation key.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroize;

use crate::keys::{KeySwitchingKey, SecretKey};
use crate::params::CkksParameters;
use crate::poly::{self, mods};

/// Key switching from s^2 to s.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinearizationKey {
    pub(crate) ksk: KeySwitchingKey,
}

impl RelinearizationKey {
    pub(crate) fn new<R: RngCore + CryptoRng>(sk: &SecretKey, rng: &mut R) -> Self {
        let p = sk.params();
        let all: Vec<usize> = (0..p.moduli.len()).collect();
        let mut s2 = poly::mul(&mods(p, &all), &sk.ntt, &sk.ntt);
        let ksk = KeySwitchingKey::new(sk, &s2, p.max_level(), rng);
        s2.zeroize();
        Self { ksk }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.ksk.params
    }
}
