//! Throughput mode (CryptoNets style): one image per slot. Input `j` of the plan is one
//! ciphertext whose slot `b` holds image `b`'s value; an affine stage is a plaintext-scalar
//! multiply-accumulate across ciphertexts (weights encoded at the scale of the prime the stage
//! rescales by, so the scale returns to the input scale), `x^2` is a ciphertext square.

use std::sync::Arc;

use ppml_ckks::{Ciphertext, CkksParameters, Evaluator, RelinearizationKey};
use rayon::prelude::*;

use crate::error::{HeError, Result};
use crate::plan::{Affine, Plan, Stage};
use crate::raw::{self, RawCt};

/// The server's side of throughput mode: the plan with its weights and the relinearisation key.
#[derive(Debug)]
pub struct ThroughputServer {
    params: Arc<CkksParameters>,
    eval: Evaluator,
    rlk: RelinearizationKey,
    plan: Plan,
    needed: Vec<u32>,
    fused: bool,
}

/// Memory the server may use for one batch, beyond which setup refuses throughput mode.
pub const MEMORY_BUDGET: u64 = 8 << 30;

/// Peak bytes of ciphertexts the server holds while evaluating `plan` (inputs, their residue
/// copies for the fused kernel, outputs), at the level each stage runs.
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
    /// A server for `plan` with the client's relinearisation key.
    pub fn new(params: &Arc<CkksParameters>, plan: Plan, rlk: RelinearizationKey) -> Self {
        let needed = needed_inputs(&plan);
        Self {
            params: Arc::clone(params),
            eval: Evaluator::new(params),
            rlk,
            plan,
            needed,
            fused: true,
        }
    }

    /// Uses the evaluator's `mul_scalar`/`add` instead of the fused residue kernel (for tests
    /// and comparison).
    pub fn without_fused_kernel(mut self) -> Self {
        self.fused = false;
        self
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
        let cts: Vec<Ciphertext> = request
            .par_iter()
            .map(|b| {
                let mut c = Ciphertext::from_bytes(&self.params, b)?;
                if c.level() > depth {
                    c.drop_to_level(depth)?;
                }
                Ok(c)
            })
            .collect::<Result<_>>()?;
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
        let mut state: Vec<Option<Ciphertext>> = vec![None; self.plan.input_len];
        for (&j, c) in self.needed.iter().zip(cts) {
            state[j as usize] = Some(c);
        }
        let out = self.evaluate(state)?;
        Ok(out.par_iter().map(Ciphertext::to_bytes).collect())
    }

    fn evaluate(&self, mut state: Vec<Option<Ciphertext>>) -> Result<Vec<Ciphertext>> {
        let ev = &self.eval;
        for stage in &self.plan.stages {
            let any = state
                .iter()
                .flatten()
                .next()
                .cloned()
                .ok_or(HeError::Malformed("no input ciphertexts"))?;
            let next: Vec<Ciphertext> = match stage {
                Stage::Affine(a) if self.fused => match self.fused_affine(&state, a) {
                    Some(out) => out?,
                    None => self.affine_ops(&state, a, &any)?,
                },
                Stage::Affine(a) => self.affine_ops(&state, a, &any)?,
                Stage::Sum(a) => a
                    .rows
                    .par_iter()
                    .map(|row| {
                        let mut acc: Option<Ciphertext> = None;
                        for &(j, _) in row {
                            let x = state[j as usize]
                                .as_ref()
                                .ok_or(HeError::Malformed("missing input"))?;
                            acc = Some(match acc {
                                None => x.clone(),
                                Some(s) => ev.add(&s, x)?,
                            });
                        }
                        match acc {
                            Some(s) => Ok(s),
                            None => Ok(ev.mul_integer(&any, 0)?),
                        }
                    })
                    .collect::<Result<_>>()?,
                Stage::Square => state
                    .par_iter()
                    .map(|x| match x {
                        Some(x) => Ok(ev.mul_relin_rescale(x, x, &self.rlk)?),
                        None => Err(HeError::Malformed("missing input")),
                    })
                    .collect::<Result<_>>()?,
            };
            state = next.into_iter().map(Some).collect();
        }
        state
            .into_iter()
            .map(|c| c.ok_or(HeError::Malformed("missing output")))
            .collect()
    }

    /// An affine stage with the evaluator's operations (one `mul_scalar` and `add` per weight).
    fn affine_ops(
        &self,
        state: &[Option<Ciphertext>],
        a: &Affine,
        any: &Ciphertext,
    ) -> Result<Vec<Ciphertext>> {
        let ev = &self.eval;
        let q = self.params.chain()[any.level()] as f64;
        a.rows
            .par_iter()
            .zip(&a.bias)
            .map(|(row, &b)| {
                let mut acc: Option<Ciphertext> = None;
                for &(j, w) in row {
                    let x = state[j as usize]
                        .as_ref()
                        .ok_or(HeError::Malformed("missing input"))?;
                    let t = ev.mul_scalar(x, w, q)?;
                    acc = Some(match acc {
                        None => t,
                        Some(s) => ev.add(&s, &t)?,
                    });
                }
                let acc = match acc {
                    Some(s) => s,
                    None => ev.mul_scalar(any, 0.0, q)?,
                };
                Ok(ev.rescale(&ev.add_scalar(&acc, b)?)?)
            })
            .collect()
    }

    /// An affine stage with the fused residue kernel ([`crate::raw`]); `None` to fall back.
    fn fused_affine(
        &self,
        state: &[Option<Ciphertext>],
        a: &Affine,
    ) -> Option<Result<Vec<Ciphertext>>> {
        let raw: Option<Vec<Option<RawCt>>> = state
            .par_iter()
            .map(|c| match c {
                None => Some(None),
                // A fresh (seed-compressed) ciphertext must first be materialised by an operation.
                Some(c) => RawCt::from_ciphertext(c)
                    .or_else(|| RawCt::from_ciphertext(&self.eval.mul_integer(c, 1).ok()?))
                    .map(Some),
            })
            .collect();
        let out = raw::affine(&self.params, &raw?, &a.rows, &a.bias)?;
        Some(out.and_then(|cts| cts.par_iter().map(|c| Ok(self.eval.rescale(c)?)).collect()))
    }
}
