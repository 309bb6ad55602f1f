//! Homomorphic evaluation.

pub(crate) mod arithmetic;
mod complex;
pub(crate) mod keyswitch;
mod linear;
mod rotation;
mod weighted;

use std::sync::Arc;

pub use linear::{BabySteps, LinearTransform};
pub use rotation::HoistedCiphertext;

use crate::params::CkksParameters;

/// Evaluates operations on ciphertexts of one parameter set. Every operation checks that its
/// operands belong to these parameters; binary operations first bring the operand at the higher
/// level down to the lower one (exact), and require equal scales (relative difference < 1e-9).
#[derive(Debug, Clone)]
pub struct Evaluator {
    params: Arc<CkksParameters>,
}

impl Evaluator {
    /// An evaluator for these parameters.
    pub fn new(params: &Arc<CkksParameters>) -> Self {
        Self {
            params: Arc::clone(params),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }
}
