//! The relinearisation key.

use std::sync::Arc;

use zeroize::Zeroize;

use crate::error::Result;
use crate::keys::{KeySwitchingKey, SecretKey};
use crate::params::CkksParameters;
use crate::poly::{self, mods};
use crate::sampling;

/// Key switching from s^2 to s.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinearizationKey {
    pub(crate) ksk: KeySwitchingKey,
}

impl RelinearizationKey {
    pub(crate) fn new(sk: &SecretKey) -> Result<Self> {
        let p = sk.params();
        let all: Vec<usize> = (0..p.moduli.len()).collect();
        let mut s2 = poly::mul(&mods(p, &all), &sk.ntt, &sk.ntt);
        let mut rng = sampling::os_rng()?;
        let ksk = KeySwitchingKey::new(sk, &s2, p.max_level(), &mut rng);
        s2.zeroize();
        Ok(Self { ksk })
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.ksk.params
    }
}
