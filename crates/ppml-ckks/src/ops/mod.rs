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
use crate::poly::RnsPoly;

/// Evaluates operations on ciphertexts of one parameter set. Every operation checks that its
/// operands belong to these parameters; binary operations first bring the operand at the higher
/// level down to the lower one (exact), and require equal scales (relative difference < 1e-9).
#[derive(Debug, Clone)]
pub struct Evaluator {
    params: Arc<CkksParameters>,
    /// X^{N/2} (the imaginary unit in every slot) in NTT form over the chain primes.
    imaginary_unit: Arc<RnsPoly>,
}

impl Evaluator {
    /// An evaluator for these parameters.
    pub fn new(params: &Arc<CkksParameters>) -> Self {
        let degree = params.degree();
        let imaginary_unit = RnsPoly {
            limbs: params.moduli[..params.chain().len()]
                .iter()
                .map(|m| {
                    let mut l = vec![0u64; degree];
                    l[degree / 2] = 1;
                    m.plan.fwd(&mut l);
                    l
                })
                .collect(),
        };
        Self {
            params: Arc::clone(params),
            imaginary_unit: Arc::new(imaginary_unit),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }
}
