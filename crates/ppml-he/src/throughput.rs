//! Throughput mode (CryptoNets style): one image per slot, or two with complex packing (the real
//! and the imaginary part of each slot hold two images). Input `j` of the plan is one ciphertext
//! whose slot `b` holds image `b`'s value; an affine stage is a plaintext-scalar
//! multiply-accumulate across ciphertexts ([`ppml_ckks::Evaluator::weighted_sums`], weights
//! encoded so that after the rescale the scale is back to the parameters' scale), `x^2` is a
//! ciphertext square ([`ppml_ckks::Evaluator::square_real_imag`] with complex packing: each part
//! squared on its own).

use std::sync::Arc;

use ppml_ckks::{Ciphertext, CkksParameters, Complex, Evaluator, GaloisKeys, RelinearizationKey};
use rayon::prelude::*;

use crate::error::{HeError, Result};
use crate::plan::{Plan, Stage};
use crate::trace::span;

/// The server's side of throughput mode: the plan with its weights and the relinearisation key.
#[derive(Debug)]
pub struct ThroughputServer {
    params: Arc<CkksParameters>,
    eval: Evaluator,
    rlk: RelinearizationKey,
    /// With the conjugation key: complex packing.
    gk: Option<GaloisKeys>,
    plan: Plan,
    needed: Vec<u32>,
    /// The plan's stages, the first one's columns renumbered to positions in `needed`.
    stages: Vec<Stage>,
}

/// Memory the server may use for one batch, beyond which setup refuses throughput mode.
pub const MEMORY_BUDGET: u64 = 8 << 30;

/// Peak bytes of ciphertexts the server holds while evaluating `plan` (a stage's inputs and
/// outputs, and the outputs' rescaled copies), at the level each stage runs.
pub fn peak_memory(params: &CkksParameters, plan: &Plan) -> u64 {
    let ct = |level: usize| 2 * (level as u64 + 1) * params.degree() as u64 * 8;
    let mut level = plan.depth();
    let mut width = needed_inputs(plan).len() as u64;
    let mut peak = 0;
    for s in &plan.stages {
        match s {
            Stage::Affine(a) => {
                peak = peak.max((2 * width + a.outputs() as u64) * ct(level));
                width = a.outputs() as u64;
                level = level.saturating_sub(1);
            }
            Stage::Sum(a) => {
                peak = peak.max((width + a.outputs() as u64) * ct(level));
                width = a.outputs() as u64;
            }
            Stage::Square => {
                peak = peak.max(2 * width * ct(level));
                level = level.saturating_sub(1);
            }
        }
    }
    peak
}

/// The input indices the first stage reads (the client encrypts only these).
pub fn needed_inputs(plan: &Plan) -> Vec<u32> {
    match plan.stages.first() {
        Some(Stage::Affine(a) | Stage::Sum(a)) => {
            let mut used = vec![false; a.inputs];
            a.rows
                .iter()
                .flatten()
                .for_each(|&(j, _)| used[j as usize] = true);
            (0..a.inputs as u32).filter(|&j| used[j as usize]).collect()
        }
        _ => (0..plan.input_len as u32).collect(),
    }
}

impl ThroughputServer {
    /// A server for `plan` with the client's relinearisation key and, for complex packing, Galois
    /// keys holding the conjugation key.
    pub fn new(
        params: &Arc<CkksParameters>,
        plan: Plan,
        rlk: RelinearizationKey,
        gk: Option<GaloisKeys>,
    ) -> Result<Self> {
        if gk.as_ref().is_some_and(|g| !g.supports_conjugation()) {
            return Err(HeError::Malformed(
                "complex packing needs the conjugation key",
            ));
        }
        let needed = needed_inputs(&plan);
        let mut position = vec![0u32; plan.input_len];
        for (k, &j) in needed.iter().enumerate() {
            position[j as usize] = k as u32;
        }
        let mut stages = plan.stages.clone();
        if let Some(Stage::Affine(a) | Stage::Sum(a)) = stages.first_mut() {
            a.rows
                .iter_mut()
                .flatten()
                .for_each(|(j, _)| *j = position[*j as usize]);
            a.inputs = needed.len();
        }
        Ok(Self {
            params: Arc::clone(params),
            eval: Evaluator::new(params),
            rlk,
            gk,
            plan,
            needed,
            stages,
        })
    }

    /// Evaluates the plan on the serialised input ciphertexts (one per needed input, in order)
    /// and returns the serialised output ciphertexts (one per logit).
    pub fn handle(&self, request: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        if request.len() != self.needed.len() {
            return Err(HeError::BadInput {
                expected: format!("{} input ciphertexts", self.needed.len()),
                got: request.len().to_string(),
            });
        }
        let depth = self.plan.depth();
        let cts: Vec<Ciphertext> = span("server: decode inputs", || {
            request
                .par_iter()
                .map(|b| {
                    let mut c = Ciphertext::from_bytes(&self.params, b)?;
                    if c.level() > depth {
                        c.drop_to_level(depth)?;
                    }
                    Ok(c)
                })
                .collect::<Result<_>>()
        })?;
        let level = cts.first().map(Ciphertext::level);
        if cts
            .iter()
            .any(|c| Some(c.level()) != level || c.size() != 2)
        {
            return Err(HeError::Malformed(
                "input ciphertexts differ in level or size",
            ));
        }
        if level.unwrap_or(0) < self.plan.depth() {
            return Err(HeError::Malformed(
                "input ciphertexts have too few levels for the plan",
            ));
        }
        let out = self.evaluate(cts)?;
        Ok(span("server: encode outputs", || {
            out.par_iter().map(Ciphertext::to_bytes).collect()
        }))
    }

    fn evaluate(&self, mut state: Vec<Ciphertext>) -> Result<Vec<Ciphertext>> {
        let ev = &self.eval;
        for stage in &self.stages {
            let name = match stage {
                Stage::Affine(a) => format!("server: affine {}x{}", a.outputs(), a.inputs),
                Stage::Sum(a) => format!("server: sum {}x{}", a.outputs(), a.inputs),
                Stage::Square => format!("server: square x{}", state.len()),
            };
            state = span(&name, || -> Result<Vec<Ciphertext>> {
                Ok(match stage {
                    Stage::Affine(a) => {
                        let first = state
                            .first()
                            .ok_or(HeError::Malformed("no input ciphertexts"))?;
                        let q = self.params.chain()[first.level()] as f64;
                        // Weights at q · Δ / scale: after the rescale the scale is Δ again.
                        let weight_scale = q * self.params.scale() / first.scale();
                        let complex = self.gk.is_some();
                        let zeros;
                        let bias = if complex {
                            zeros = vec![0.0; a.bias.len()];
                            &zeros
                        } else {
                            &a.bias
                        };
                        span("server: weighted sums", || {
                            ev.weighted_sums(&state, &a.rows, weight_scale, bias)
                        })?
                        .par_iter()
                        .zip(&a.bias)
                        .map(|(c, &b)| {
                            if complex {
                                // The bias of both images: b + i b.
                                let c = ev.add_complex_scalar(c, Complex::new(b, b))?;
                                Ok(ev.rescale(&c)?)
                            } else {
                                Ok(ev.rescale(c)?)
                            }
                        })
                        .collect::<Result<_>>()?
                    }
                    Stage::Sum(a) => ev.weighted_sums(&state, &a.rows, 1.0, &a.bias)?,
                    Stage::Square => state
                        .par_iter()
                        .map(|x| match &self.gk {
                            Some(gk) => Ok(ev.square_real_imag(x, &self.rlk, gk)?),
                            None => Ok(ev.mul_relin_rescale(x, x, &self.rlk)?),
                        })
                        .collect::<Result<_>>()?,
                })
            })?;
        }
        Ok(state)
    }
}
