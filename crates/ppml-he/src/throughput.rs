//! Throughput mode (CryptoNets style): one image per slot, or two with complex packing (the real
//! and the imaginary part of each slot hold two images). Input `j` of the plan is one ciphertext
//! whose slot `b` holds image `b`'s value; an affine stage is a plaintext-scalar
//! multiply-accumulate across ciphertexts ([`ppml_ckks::Evaluator::weighted_sums`], weights
//! encoded so that after the rescale the scale is back to the parameters' scale), `x^2` is a
//! ciphertext square ([`ppml_ckks::Evaluator::square_real_imag`] with complex packing: each part
//! squared on its own).
//!
//! Each affine map followed by a square (and a sum pooling) is streamed: its final outputs are
//! computed a chunk at a time, the squares of a pooling window summed before their one
//! relinearisation, so that a large convolution's outputs are never all held
//! ([`ThroughputServer::with_chunk_budget`]).

use std::sync::Arc;

use ppml_ckks::{Ciphertext, CkksParameters, Complex, Evaluator};
use rayon::prelude::*;

use crate::error::{HeError, Result};
use crate::keys::ClientKeys;
use crate::plan::{Affine, Plan, Stage};
use crate::trace::span;

/// The server's side of throughput mode: the plan with its weights, the same for every client
/// (the client's keys come with each call, [`ClientKeys`]; with the conjugation key among them,
/// complex packing).
#[derive(Debug)]
pub struct ThroughputServer {
    params: Arc<CkksParameters>,
    eval: Evaluator,
    plan: Plan,
    needed: Vec<u32>,
    /// The plan's stages, the first one's columns renumbered to positions in `needed`.
    stages: Vec<Stage>,
    /// Bytes of intermediate ciphertexts one chunk of an activation step may hold.
    chunk_budget: u64,
}

/// Memory the server may use for one batch, beyond which setup refuses throughput mode.
/// Half of the 24 GiB of the machines ppml targets: `lenet-sq` needs 9 GiB at N = 16384.
pub const MEMORY_BUDGET: u64 = 12 << 30;

/// Peak bytes of ciphertexts the server holds while evaluating `plan` with complex packing, at
/// the level each step runs: the serialised request and its decoded inputs during the first
/// step, then each step's inputs, outputs and intermediates (an activation step's conjugated
/// inputs and its chunk, at most [`CHUNK_BUDGET`]; an unstreamed step's outputs).
pub fn peak_memory(params: &CkksParameters, plan: &Plan) -> u64 {
    let ct = |level: usize| ciphertext_bytes(params, 2, level);
    let mut level = plan.depth();
    let mut width = plan.needed_inputs().len() as u64;
    // Uploaded ciphertexts carry their mask as a seed: half a ciphertext each.
    let mut request = width * ct(level) / 2;
    let mut peak = 0;
    for step in steps(&plan.stages) {
        let held = request + width * ct(level);
        let (outputs, extra, levels) = match step {
            Step::Activation { map, pool } => {
                let n = pool.map_or(map.outputs(), Affine::outputs) as u64;
                let conjugated = conjugate_inputs(width as usize, map);
                let per_row = activation_bytes(params, level, conjugated);
                let chunk = (map.outputs() as u64 * per_row).min(CHUNK_BUDGET);
                let conjugates = if conjugated { width * ct(level) } else { 0 };
                (n, chunk + conjugates, 2)
            }
            Step::Affine(a) => (a.outputs() as u64, a.outputs() as u64 * ct(level), 1),
            Step::Sum(a) => (a.outputs() as u64, 0, 0),
            Step::Square => (width, ciphertext_bytes(params, 3, level) * width, 1),
        };
        level = level.saturating_sub(levels);
        peak = peak.max(held + extra + outputs * ct(level));
        width = outputs;
        request = 0;
    }
    peak
}

impl ThroughputServer {
    /// A server for `plan`.
    pub fn new(params: &Arc<CkksParameters>, plan: Plan) -> Self {
        let needed = plan.needed_inputs();
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
        Self {
            params: Arc::clone(params),
            eval: Evaluator::new(params),
            plan,
            needed,
            stages,
            chunk_budget: CHUNK_BUDGET,
        }
    }

    /// Checks a client's keys: with Galois keys (complex packing) they must hold the
    /// conjugation key.
    pub fn check_keys(&self, keys: &ClientKeys) -> Result<()> {
        if keys.gk.as_ref().is_some_and(|g| !g.supports_conjugation()) {
            return Err(HeError::Malformed(
                "complex packing needs the conjugation key",
            ));
        }
        Ok(())
    }

    /// Bounds the intermediate ciphertexts of one chunk of a streamed activation step (default
    /// [`CHUNK_BUDGET`]): a smaller budget holds less memory in more, smaller passes.
    pub fn with_chunk_budget(mut self, bytes: u64) -> Self {
        self.chunk_budget = bytes;
        self
    }

    /// Evaluates the plan on the serialised input ciphertexts (one per needed input, in order)
    /// with the client's keys (checked by [`Self::check_keys`]) and returns the serialised output
    /// ciphertexts (one per logit).
    pub fn handle(&self, request: &[Vec<u8>], keys: &ClientKeys) -> Result<Vec<Vec<u8>>> {
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
        let out = self.evaluate(cts, keys)?;
        Ok(span("server: encode outputs", || {
            out.par_iter().map(Ciphertext::to_bytes).collect()
        }))
    }

    fn evaluate(&self, mut state: Vec<Ciphertext>, keys: &ClientKeys) -> Result<Vec<Ciphertext>> {
        for step in steps(&self.stages) {
            let name = match step {
                Step::Activation { map, pool } => format!(
                    "server: affine {}x{}, square{}",
                    map.outputs(),
                    map.inputs,
                    pool.map(|p| format!(", sum {}x{}", p.outputs(), p.inputs))
                        .unwrap_or_default()
                ),
                Step::Affine(a) => format!("server: affine {}x{}", a.outputs(), a.inputs),
                Step::Sum(a) => format!("server: sum {}x{}", a.outputs(), a.inputs),
                Step::Square => format!("server: square x{}", state.len()),
            };
            state = span(&name, || match step {
                Step::Activation { map, pool } => self.activation(&state, map, pool, keys),
                Step::Affine(a) => self.affine(&state, &a.rows, &a.bias, false, keys),
                Step::Sum(a) => Ok(self.eval.weighted_sums(&state, &a.rows, 1.0, &a.bias)?),
                Step::Square => state
                    .par_iter()
                    .map(|x| {
                        let p = self.square_no_relin(x, keys)?;
                        Ok(self.eval.rescale(&self.eval.relinearize(&p, &keys.rlk)?)?)
                    })
                    .collect(),
            })?;
        }
        Ok(state)
    }

    /// The affine map with rows `rows` and biases `bias` on `state`, rescaled. `conjugate`: the
    /// inputs are conjugates, so the bias `b + i b` of complex packing enters as `b - i b`.
    fn affine(
        &self,
        state: &[Ciphertext],
        rows: &[Vec<(u32, f64)>],
        bias: &[f64],
        conjugate: bool,
        keys: &ClientKeys,
    ) -> Result<Vec<Ciphertext>> {
        let ev = &self.eval;
        let first = state
            .first()
            .ok_or(HeError::Malformed("no input ciphertexts"))?;
        let q = self.params.chain()[first.level()] as f64;
        // Weights at q · Δ / scale: after the rescale the scale is Δ again.
        let weight_scale = q * self.params.scale() / first.scale();
        let complex = keys.gk.is_some();
        let zeros;
        let sum_bias = if complex {
            zeros = vec![0.0; bias.len()];
            &zeros
        } else {
            bias
        };
        let sign = if conjugate { -1.0 } else { 1.0 };
        span("server: weighted sums", || {
            ev.weighted_sums(state, rows, weight_scale, sum_bias)
        })?
        .par_iter()
        .zip(bias)
        .map(|(c, &b)| {
            if complex {
                // The bias of both images: b + i b.
                let c = ev.add_complex_scalar(c, Complex::new(b, sign * b))?;
                Ok(ev.rescale(&c)?)
            } else {
                Ok(ev.rescale(c)?)
            }
        })
        .collect()
    }

    /// The square of each slot's value(s), not relinearised nor rescaled.
    fn square_no_relin(&self, x: &Ciphertext, keys: &ClientKeys) -> Result<Ciphertext> {
        Ok(match &keys.gk {
            Some(gk) => self.eval.square_real_imag_no_relin(x, gk)?,
            None => self.eval.square_no_relin(x)?,
        })
    }

    /// `map`, then the square, then the sum pooling `pool` if any, streamed: the final outputs
    /// are computed a chunk at a time, each chunk evaluating only the map rows it sums, so the
    /// map's outputs are never all held at once. Squares are summed before the one
    /// relinearisation and rescale per final output (both are linear), so a pooling of `k`
    /// values costs one key switch instead of `k`.
    fn activation(
        &self,
        state: &[Ciphertext],
        map: &Affine,
        pool: Option<&Affine>,
        keys: &ClientKeys,
    ) -> Result<Vec<Ciphertext>> {
        let level = state.first().map_or(0, Ciphertext::level);
        let outputs = pool.map_or(map.outputs(), Affine::outputs);
        // Complex packing squares need each map output's conjugate. When the map has many more
        // outputs than inputs, conjugating the inputs once and applying the map to them too
        // costs fewer key switches than conjugating every output.
        let conjugates = match &keys.gk {
            Some(gk) if conjugate_inputs(state.len(), map) => Some(span(
                &format!("server: conjugate x{}", state.len()),
                || {
                    state
                        .par_iter()
                        .map(|x| self.eval.conjugate(x, gk))
                        .collect::<std::result::Result<Vec<_>, _>>()
                },
            )?),
            _ => None,
        };
        // The map rows that final output `r` sums.
        let members = |r: usize| -> Vec<u32> {
            match pool {
                Some(p) => p.rows[r].iter().map(|&(j, _)| j).collect(),
                None => vec![r as u32],
            }
        };
        // Outputs in the order of the inputs their first map row reads, so that one chunk holds
        // map rows reading the same inputs (`weighted_sums` computes those together).
        let mut order: Vec<usize> = (0..outputs).collect();
        let reads = |r: usize| {
            members(r)
                .first()
                .map(|&j| {
                    map.rows[j as usize]
                        .iter()
                        .map(|&(k, _)| k)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        order.sort_by_cached_key(|&r| reads(r));
        let fan_in = (0..outputs).map(|r| members(r).len()).max().unwrap_or(1);
        let per_row = activation_bytes(&self.params, level, conjugates.is_some());
        let chunk = (self.chunk_budget / (fan_in.max(1) as u64 * per_row)).max(1) as usize;
        let mut done: Vec<(usize, Ciphertext)> = Vec::with_capacity(outputs);
        for rows in order.chunks(chunk) {
            let mut needed: Vec<u32> = rows.iter().flat_map(|&r| members(r)).collect();
            needed.sort_unstable();
            needed.dedup();
            let sub_rows: Vec<_> = needed
                .iter()
                .map(|&j| map.rows[j as usize].clone())
                .collect();
            let sub_bias: Vec<f64> = needed.iter().map(|&j| map.bias[j as usize]).collect();
            let values = self.affine(state, &sub_rows, &sub_bias, false, keys)?;
            let squares = match &conjugates {
                Some(conj) => values
                    .par_iter()
                    .zip(&self.affine(conj, &sub_rows, &sub_bias, true, keys)?)
                    .map(|(z, zc)| Ok(self.eval.square_real_imag_with_conjugate(z, zc)?))
                    .collect::<Result<Vec<_>>>()?,
                None => values
                    .par_iter()
                    .map(|x| self.square_no_relin(x, keys))
                    .collect::<Result<Vec<_>>>()?,
            };
            // The final outputs of this chunk and, in the same order, their sums of squares.
            let (ids, sums) = match pool {
                Some(p) => {
                    let local = |j: u32| needed.binary_search(&j).unwrap_or_default() as u32;
                    let pooled: Vec<Vec<(u32, f64)>> = rows
                        .iter()
                        .map(|&r| p.rows[r].iter().map(|&(j, w)| (local(j), w)).collect())
                        .collect();
                    let bias: Vec<f64> = rows.iter().map(|&r| p.bias[r]).collect();
                    let sums = self.eval.weighted_sums(&squares, &pooled, 1.0, &bias)?;
                    (rows.to_vec(), sums)
                }
                None => (needed.iter().map(|&j| j as usize).collect(), squares),
            };
            let finished = sums
                .par_iter()
                .map(|s| Ok(self.eval.rescale(&self.eval.relinearize(s, &keys.rlk)?)?))
                .collect::<Result<Vec<_>>>()?;
            done.extend(ids.into_iter().zip(finished));
        }
        done.sort_unstable_by_key(|&(r, _)| r);
        Ok(done.into_iter().map(|(_, c)| c).collect())
    }
}

/// Default bytes of intermediate ciphertexts one chunk of a streamed activation may hold.
pub const CHUNK_BUDGET: u64 = 1 << 30;

/// Ciphertext multiply-accumulates that cost about as much as one key switch (measured at
/// N = 16384, the 52-bit primes' multiply-accumulate path: about 70).
const KEY_SWITCH_IN_MACS: usize = 64;

/// Whether an activation step with complex packing should conjugate its `inputs` ciphertexts
/// and apply `map` to them too (`nnz` more multiply-accumulates) rather than conjugate each of
/// the map's outputs (one key switch each).
fn conjugate_inputs(inputs: usize, map: &Affine) -> bool {
    map.outputs().saturating_sub(inputs) * KEY_SWITCH_IN_MACS > map.nnz()
}

/// Bytes of one ciphertext of `size` polynomials at `level`.
fn ciphertext_bytes(params: &CkksParameters, size: u64, level: usize) -> u64 {
    size * (level as u64 + 1) * params.degree() as u64 * 8
}

/// Intermediate bytes per map row of an activation step whose inputs are at `level`: the map's
/// output (and its conjugate when the inputs were conjugated) and its unrelinearised square.
fn activation_bytes(params: &CkksParameters, level: usize, conjugated: bool) -> u64 {
    let outputs = if conjugated { 2 } else { 1 };
    outputs * ciphertext_bytes(params, 2, level)
        + ciphertext_bytes(params, 3, level.saturating_sub(1))
}

/// How the server walks the plan.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// An affine map, the square, and an optional sum pooling: streamed (see
    /// [`ThroughputServer::activation`]).
    Activation {
        map: &'a Affine,
        pool: Option<&'a Affine>,
    },
    /// An affine map not followed by a square (the last layer).
    Affine(&'a Affine),
    /// A sum pooling not preceded by an affine map and a square.
    Sum(&'a Affine),
    /// A square not preceded by an affine map.
    Square,
}

/// Groups the stages into steps: every `Affine, Square[, Sum]` becomes one activation step.
fn steps(stages: &[Stage]) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut it = stages.iter().peekable();
    while let Some(stage) = it.next() {
        out.push(match stage {
            Stage::Affine(map) if matches!(it.peek(), Some(Stage::Square)) => {
                it.next();
                let pool = match it.peek() {
                    Some(Stage::Sum(p)) => {
                        it.next();
                        Some(p)
                    }
                    _ => None,
                };
                Step::Activation { map, pool }
            }
            Stage::Affine(a) => Step::Affine(a),
            Stage::Sum(a) => Step::Sum(a),
            Stage::Square => Step::Square,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, reason = "test helpers fail loudly")]

    use ppml_nn::model::{Conv2d, Linear, Pool2d};
    use ppml_nn::{zoo, Layer, Model};

    use super::*;
    use crate::client::Client;
    use crate::params::{choose, PlannerGoals};
    use crate::plan::PoolStrategy;
    use crate::spec::ClientSpec;

    /// A small network with both kinds of activation step: a convolution, square and average
    /// pooling, then a dense layer and a square, then the output layer.
    fn pooled_model() -> Model {
        let mut m = zoo::architecture("lenet-sq").expect("zoo");
        m.name = "pooled".into();
        m.input = [1, 16, 16];
        let linear = |i: usize, o: usize| {
            Layer::Linear(Linear {
                in_features: i,
                out_features: o,
                weight: vec![0.0; i * o],
                bias: vec![0.0; o],
            })
        };
        m.layers = vec![
            // 864 outputs of 256 inputs: the server conjugates the inputs.
            Layer::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 6,
                kernel: 5,
                stride: 1,
                padding: 0,
                weight: vec![0.0; 6 * 25],
                bias: vec![0.0; 6],
            }),
            Layer::Square,
            Layer::AvgPool2d(Pool2d {
                kernel: 2,
                stride: 2,
            }),
            Layer::Flatten,
            // 12 outputs of 216 inputs, no pooling: the server conjugates the outputs.
            linear(216, 12),
            Layer::Square,
            linear(12, 10),
        ];
        zoo::init_weights(&mut m, 7);
        m
    }

    #[test]
    fn streamed_activations_match_the_plain_plan_in_any_chunk_size() {
        let m = pooled_model();
        let plan = Plan::compile(&m, PoolStrategy::SumStage, false).expect("plan");
        let steps = steps(&plan.stages);
        let [Step::Activation {
            map: conv,
            pool: Some(pool),
        }, Step::Activation {
            map: dense,
            pool: None,
        }, Step::Affine(_)] = steps[..]
        else {
            panic!("unexpected steps {steps:?}");
        };
        assert!(conjugate_inputs(plan.needed_inputs().len(), conv));
        assert!(!conjugate_inputs(pool.outputs(), dense));
        let params = choose(&PlannerGoals::new(plan.depth())).expect("params");
        let spec = ClientSpec::throughput(&params, &m, &plan);
        let (client, keys) = Client::new(spec).expect("client");
        let keys = ClientKeys::decode(&params, &keys).expect("keys");
        let server = || ThroughputServer::new(&params, plan.clone());
        // Images in both the real and the imaginary parts of the slots.
        let slots = params.slots();
        let n = slots + 2;
        let images: Vec<Vec<f32>> = (0..n)
            .map(|b| {
                (0..256)
                    .map(|p| ((b * 131 + p * 7) % 97) as f32 / 97.0 - 0.5)
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
        let request = client.encrypt_batch(&refs).expect("encrypt");
        // One chunk for the whole step, and one final output per chunk.
        for server in [server(), server().with_chunk_budget(1)] {
            server.check_keys(&keys).expect("keys");
            let logits = client
                .decrypt_batch(&server.handle(&request, &keys).expect("evaluate"), n)
                .expect("decrypt");
            for b in [0, 1, slots, slots + 1] {
                let want = plan.eval_plain(&plan.layout_input(&images[b]));
                for (g, w) in logits[b].iter().zip(&want) {
                    assert!(
                        (f64::from(*g) - w).abs() < 1e-3 * (1.0 + w.abs()),
                        "image {b}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
