//! Evaluation keys: what the client sends at setup ([`EvaluationKeys`], serialised) and what
//! the server holds for a session ([`ClientKeys`], decoded once for both modes). Never the
//! secret key.

use std::sync::Arc;

use ppml_ckks::{CkksParameters, GaloisKeys, RelinearizationKey};

use crate::error::Result;

/// Serialised evaluation keys the client sends at setup.
#[derive(Debug, Clone)]
pub struct EvaluationKeys {
    /// Relinearisation key.
    pub relin: Vec<u8>,
    /// Galois keys (empty when no rotation is needed).
    pub galois: Vec<u8>,
}

/// A client's evaluation keys as the server holds them: decoded once per session and used by
/// both modes.
#[derive(Debug)]
pub struct ClientKeys {
    pub(crate) rlk: RelinearizationKey,
    /// Galois keys: rotations for latency mode, conjugation for complex packing.
    pub(crate) gk: Option<GaloisKeys>,
}

impl ClientKeys {
    /// Decodes and validates serialised keys for `params`.
    pub fn decode(params: &Arc<CkksParameters>, keys: &EvaluationKeys) -> Result<Self> {
        Ok(Self {
            rlk: RelinearizationKey::from_bytes(params, &keys.relin)?,
            gk: if keys.galois.is_empty() {
                None
            } else {
                Some(GaloisKeys::from_bytes(params, &keys.galois)?)
            },
        })
    }
}
