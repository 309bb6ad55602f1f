//! Latency mode: one image in one ciphertext, or in a few when its feature maps exceed the
//! slots. The client lays its input vector (the im2col patch matrix when the model starts with a
//! convolution) out as a [`Placement`] tells it; each affine stage is a diagonal (Halevi–Shoup)
//! matrix-vector product per pair of output and input ciphertexts, with baby-step giant-step
//! (baby steps hoisted once per input ciphertext, giant steps shared by all inputs of an output,
//! [`ppml_ckks::Evaluator::linear_transform_sum`]); weights are encoded once at setup, and every
//! stage rescales once.
//!
//! The files: [`crate::layout`] places the vectors; `diagonals` extracts each map's diagonals
//! for those placements; `bsgs` splits them into baby and giant steps; this file encodes them
//! once and evaluates requests ([`LatencyServer`]).

mod bsgs;
mod diagonals;

use std::collections::BTreeMap;
use std::sync::Arc;

use ppml_ckks::{
    Ciphertext, CkksParameters, Encoder, Evaluator, GaloisKeys, LinearTransform, Plaintext,
};
use ppml_nn::Model;

use self::bsgs::choose_n1;
use self::diagonals::{block_diagonals, sum_by_additions};
use crate::error::{HeError, Result};
use crate::keys::ClientKeys;
use crate::layout::{layout, Placement};
use crate::plan::{Plan, Stage};
use crate::trace::span;

/// Memory the encoded weights of latency mode may take.
pub const PLAINTEXT_BUDGET: u64 = 2 << 30;

/// One output ciphertext of an affine stage.
struct OutputMap {
    /// (input ciphertext, its block's diagonals).
    terms: Vec<(usize, LinearTransform)>,
    bias: Plaintext,
}

enum LatStage {
    Affine {
        /// Baby steps of each input ciphertext (the union over the outputs that read it).
        babies: Vec<Vec<usize>>,
        outputs: Vec<OutputMap>,
        sum_steps: Vec<i64>,
    },
    Square,
    /// Output ciphertext `j` is the sum of the input ciphertexts `groups[j]`.
    Add {
        groups: Vec<Vec<usize>>,
    },
}

/// The server's side of latency mode: the plan's layout and encoded diagonals, the same for every
/// client (the client's keys come with each call, [`ClientKeys`]).
pub struct LatencyServer {
    params: Arc<CkksParameters>,
    eval: Evaluator,
    plan: Plan,
    input: Placement,
    stages: Vec<LatStage>,
    rotations: Vec<(i64, usize)>,
    input_level: usize,
    weight_bytes: u64,
}

impl std::fmt::Debug for LatencyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyServer")
            .field("stages", &self.stages.len())
            .field("input", &self.input)
            .field("rotations", &self.rotations)
            .field("input_level", &self.input_level)
            .finish_non_exhaustive()
    }
}

impl LatencyServer {
    /// Lays `model` out for parameters `params` ([`layout`]) and encodes its weights; the
    /// ciphertexts enter at the plan's depth. Fails when no layout fits or the encoded weights
    /// would exceed [`PLAINTEXT_BUDGET`].
    pub fn new(params: &Arc<CkksParameters>, model: &Model) -> Result<Self> {
        let slots = params.slots();
        let (plan, placements) = layout(model, slots)?;
        let refuse = |reason: String| HeError::Unsupported {
            mode: "latency",
            model: plan.model.clone(),
            reason,
        };
        // Diagonals first (cheap), so that the budget is checked before anything is encoded.
        let mut level = plan.depth();
        let mut bytes = 0u64;
        let mut maps = Vec::with_capacity(plan.stages.len());
        for (k, s) in plan.stages.iter().enumerate() {
            let (inp, out) = (&placements[k], &placements[k + 1]);
            maps.push(match s {
                Stage::Affine(a) => {
                    let (diags, sum_steps) = block_diagonals(a, inp, out, slots);
                    let count: usize = diags.values().map(BTreeMap::len).sum();
                    // The diagonals, and a bias plaintext per output (64-bit residues).
                    bytes += count as u64 * LinearTransform::bytes_per_diagonal(params, level)
                        + out.ciphertexts(slots) as u64
                            * (level as u64 + 1)
                            * params.degree() as u64
                            * 8;
                    level = level.saturating_sub(1);
                    Some((diags, sum_steps))
                }
                Stage::Square => {
                    level = level.saturating_sub(1);
                    None
                }
                Stage::Sum(_) => None,
            });
        }
        if bytes > PLAINTEXT_BUDGET {
            return Err(refuse(format!(
                "its encoded diagonals would take {:.1} GiB (budget {} GiB)",
                bytes as f64 / f64::from(1u32 << 30),
                PLAINTEXT_BUDGET >> 30
            )));
        }
        let encoder = Encoder::new(params);
        let mut level = plan.depth();
        let mut scale = params.scale();
        let mut stages = Vec::new();
        // Rotation step -> the highest level it is applied at (the first stage that uses it:
        // levels only go down).
        let mut rotations: BTreeMap<i64, usize> = BTreeMap::new();
        for (k, (s, map)) in plan.stages.iter().zip(maps).enumerate() {
            let (inp, out) = (&placements[k], &placements[k + 1]);
            let q = params.chain()[level] as f64;
            match (s, map) {
                (Stage::Affine(a), Some((diags, sum_steps))) => {
                    let (n_in, n_out) = (inp.ciphertexts(slots), out.ciphertexts(slots));
                    let mut idx: Vec<usize> =
                        diags.values().flat_map(|d| d.keys().copied()).collect();
                    idx.sort_unstable();
                    idx.dedup();
                    let span = inp.period(slots).min(out.period(slots));
                    let known: Vec<i64> = rotations.keys().copied().collect();
                    let n1 = choose_n1(&idx, span, n_in, n_out, &known);
                    let mut babies = vec![Vec::new(); n_in];
                    let mut outputs: Vec<OutputMap> = Vec::with_capacity(n_out);
                    for o in 0..n_out {
                        let mut terms = Vec::new();
                        for ((_, i), d) in diags.range((o, 0)..(o + 1, 0)) {
                            let lt = LinearTransform::new(params, d, level, q, n1)?;
                            for step in lt.required_rotations() {
                                rotations.entry(step).or_insert(level);
                            }
                            babies[*i].extend(lt.baby_steps());
                            terms.push((*i, lt));
                        }
                        if terms.is_empty() {
                            return Err(refuse(format!(
                                "output ciphertext {o} of stage {k} reads no input"
                            )));
                        }
                        let mut bias = vec![0.0; slots];
                        for (rho, b) in a.bias.iter().enumerate() {
                            let (oc, at) = out.locate(rho, slots);
                            if oc == o {
                                for r in (at..slots).step_by(out.period(slots)) {
                                    bias[r] = *b;
                                }
                            }
                        }
                        let bias = encoder.encode(&bias, level, scale * q)?;
                        outputs.push(OutputMap { terms, bias });
                    }
                    for b in &mut babies {
                        b.sort_unstable();
                        b.dedup();
                    }
                    for &step in &sum_steps {
                        rotations.entry(step).or_insert(level);
                    }
                    stages.push(LatStage::Affine {
                        babies,
                        outputs,
                        sum_steps,
                    });
                    level = level
                        .checked_sub(1)
                        .ok_or(HeError::Malformed("plan deeper than parameters"))?;
                }
                (Stage::Square, _) => {
                    scale = scale * scale / q;
                    stages.push(LatStage::Square);
                    level = level
                        .checked_sub(1)
                        .ok_or(HeError::Malformed("plan deeper than parameters"))?;
                }
                (Stage::Sum(a), _) => {
                    let groups = sum_by_additions(a, inp, out, slots).ok_or_else(|| {
                        refuse(format!("its sum stage {k} is not a sum of pooling phases"))
                    })?;
                    stages.push(LatStage::Add { groups });
                }
                (Stage::Affine(_), None) => {
                    return Err(HeError::Malformed("affine stage without diagonals"));
                }
            }
        }
        Ok(Self {
            params: Arc::clone(params),
            eval: Evaluator::new(params),
            input: placements[0],
            input_level: plan.depth(),
            plan,
            stages,
            rotations: rotations.into_iter().collect(),
            weight_bytes: bytes,
        })
    }

    /// The rotations whose Galois keys the client must provide, each with the highest level
    /// it is applied at.
    pub fn rotations(&self) -> &[(i64, usize)] {
        &self.rotations
    }

    /// The compiled plan (its input layout is what the client needs).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Where the client puts its input vector.
    pub fn input_placement(&self) -> Placement {
        self.input
    }

    /// Bytes of encoded weights held.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Rotations (key switches) one image costs: the baby steps of every input ciphertext, the
    /// giant steps of every output, and the rotate-and-sum steps.
    pub fn rotations_per_image(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                LatStage::Affine {
                    babies,
                    outputs,
                    sum_steps,
                } => {
                    let baby: usize = babies
                        .iter()
                        .map(|b| b.iter().filter(|&&s| s != 0).count())
                        .sum();
                    let giant: usize = outputs
                        .iter()
                        .map(|o| {
                            let mut g: Vec<usize> = o
                                .terms
                                .iter()
                                .flat_map(|(_, lt)| lt.giant_steps())
                                .collect();
                            g.sort_unstable();
                            g.dedup();
                            g.iter().filter(|&&s| s != 0).count() + sum_steps.len()
                        })
                        .sum();
                    baby + giant
                }
                LatStage::Square | LatStage::Add { .. } => 0,
            })
            .sum()
    }

    /// Checks that a client's Galois keys cover the plan's rotations at their levels.
    pub fn check_keys(&self, keys: &ClientKeys) -> Result<()> {
        let covered = |gk: &GaloisKeys| {
            self.rotations
                .iter()
                .all(|&(s, level)| gk.supports_rotation_at(s, level))
        };
        if !keys.gk.as_ref().is_some_and(covered) {
            return Err(HeError::Malformed(
                "Galois keys lack a rotation the plan needs",
            ));
        }
        Ok(())
    }

    /// Evaluates the plan on one image's serialised input ciphertexts with the client's keys
    /// (checked by [`Self::check_keys`]); returns the serialised output ciphertext.
    pub fn handle(&self, request: &[Vec<u8>], keys: &ClientKeys) -> Result<Vec<u8>> {
        let rlk = &keys.rlk;
        let gk = keys.gk.as_ref().ok_or(HeError::NotSetUp)?;
        if request.len() != self.input.ciphertexts(self.params.slots()) {
            return Err(HeError::Malformed("wrong number of input ciphertexts"));
        }
        let mut xs = request
            .iter()
            .map(|bytes| {
                let mut x = Ciphertext::from_bytes(&self.params, bytes)?;
                if x.size() != 2 || x.level() < self.input_level {
                    return Err(HeError::Malformed(
                        "input ciphertext has the wrong size or too few levels",
                    ));
                }
                x.drop_to_level(self.input_level)?;
                Ok(x)
            })
            .collect::<Result<Vec<_>>>()?;
        let ev = &self.eval;
        for (k, s) in self.stages.iter().enumerate() {
            let name = match s {
                LatStage::Affine { .. } => "affine",
                LatStage::Square => "square",
                LatStage::Add { .. } => "add",
            };
            xs = span(
                &format!("server: latency stage {k} ({name})"),
                || -> Result<_> {
                    Ok(match s {
                        LatStage::Affine {
                            babies,
                            outputs,
                            sum_steps,
                        } => {
                            let hoisted = xs
                                .iter()
                                .zip(babies)
                                .map(|(x, b)| ev.baby_steps(x, b, gk))
                                .collect::<std::result::Result<Vec<_>, _>>()?;
                            outputs
                                .iter()
                                .map(|out| {
                                    let terms: Vec<_> = out
                                        .terms
                                        .iter()
                                        .map(|(i, lt)| (&hoisted[*i], lt))
                                        .collect();
                                    let mut y = ev.linear_transform_sum(&terms, gk)?;
                                    for &step in sum_steps {
                                        y = ev.add(&y, &ev.rotate(&y, step, gk)?)?;
                                    }
                                    Ok(ev.rescale(&ev.add_plain(&y, &out.bias)?)?)
                                })
                                .collect::<Result<Vec<_>>>()?
                        }
                        LatStage::Square => xs
                            .iter()
                            .map(|x| ev.mul_relin_rescale(x, x, rlk))
                            .collect::<std::result::Result<Vec<_>, _>>()?,
                        LatStage::Add { groups } => groups
                            .iter()
                            .map(|g| {
                                let mut acc = xs[g[0]].clone();
                                for &i in &g[1..] {
                                    acc = ev.add(&acc, &xs[i])?;
                                }
                                Ok(acc)
                            })
                            .collect::<Result<Vec<_>>>()?,
                    })
                },
            )?;
        }
        match xs.as_slice() {
            [y] => Ok(y.to_bytes()),
            _ => Err(HeError::Malformed(
                "the plan does not end in one ciphertext",
            )),
        }
    }
}
