//! Latency mode: one image in one ciphertext. The client lays its input vector (the im2col
//! patch matrix when the model starts with a convolution) out periodically across all slots; each
//! affine stage is a diagonal (Halevi–Shoup) matrix-vector product with baby-step giant-step and
//! hoisted baby steps ([`ppml_ckks::LinearTransform`]), rectangular maps use the "hybrid" trick
//! (min(P_in, P_out) diagonals, then a rotate-and-sum), weights are encoded once at setup, and
//! every stage rescales once.
//!
//! Layout invariant: a vector of length `n` lives periodically with period `P = next_pow2(n)`:
//! slot `r` holds `v[r mod P]` (zero when `r mod P >= n`). For an `m x n` map with
//! `P_out = next_pow2(m)`, `P_in = next_pow2(n)`, diagonal `i < min(P_in, P_out)` is
//! `d_i[r] = M[r mod P_out][(r + i) mod P_in]`; `z = Σ_i d_i ⊙ rot_i(x)` and, when `P_out < P_in`,
//! `y[r] = Σ_t z[r + t P_out]`, which has period `P_out` as the next stage expects.

use std::collections::BTreeMap;
use std::sync::Arc;

use ppml_ckks::{
    Ciphertext, CkksParameters, Encoder, Evaluator, GaloisKeys, LinearTransform, Plaintext,
    RelinearizationKey,
};

use crate::error::{HeError, Result};
use crate::plan::{Affine, Plan, Stage};

/// Period of a vector of length `n` in the latency layout.
pub fn period(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Slots the latency layout of `plan` needs.
pub fn required_slots(plan: &Plan) -> usize {
    let mut p = period(plan.input_len);
    for s in &plan.stages {
        if let Stage::Affine(a) | Stage::Sum(a) = s {
            p = p.max(period(a.outputs()));
        }
    }
    p
}

/// The client's slot vector for an input vector `x` (length `plan.input_len`).
pub fn replicate(x: &[f64], slots: usize) -> Vec<f64> {
    let p = period(x.len());
    (0..slots)
        .map(|r| x.get(r % p).copied().unwrap_or(0.0))
        .collect()
}

enum LatStage {
    Affine {
        lt: LinearTransform,
        sum_steps: Vec<i64>,
        bias: Plaintext,
    },
    Square,
}

/// The server's side of latency mode: encoded diagonals and the client's evaluation keys.
pub struct LatencyServer {
    params: Arc<CkksParameters>,
    eval: Evaluator,
    stages: Vec<LatStage>,
    rotations: Vec<i64>,
    input_level: usize,
    keys: Option<(RelinearizationKey, GaloisKeys)>,
}

impl std::fmt::Debug for LatencyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyServer")
            .field("stages", &self.stages.len())
            .field("rotations", &self.rotations)
            .field("input_level", &self.input_level)
            .finish_non_exhaustive()
    }
}

/// Baby-step count minimising baby + giant rotations for these diagonal indices.
fn choose_n1(indices: &[usize], span: usize) -> usize {
    let mut best = (usize::MAX, 1);
    for n1 in 1..=span.max(1) {
        let mut babies: Vec<usize> = indices.iter().map(|i| i % n1).filter(|&b| b != 0).collect();
        babies.sort_unstable();
        babies.dedup();
        let mut giants: Vec<usize> = indices.iter().map(|i| i / n1).filter(|&g| g != 0).collect();
        giants.sort_unstable();
        giants.dedup();
        let cost = babies.len() + giants.len();
        if cost < best.0 {
            best = (cost, n1);
        }
    }
    best.1
}

/// Memory the encoded weights of latency mode may take.
pub const PLAINTEXT_BUDGET: u64 = 2 << 30;

fn diagonal_count(a: &Affine, slots: usize) -> usize {
    let (p_in, p_out) = (period(a.inputs), period(a.outputs()));
    let d = p_in.min(p_out);
    let mut seen = vec![false; d];
    for (rho, row) in a.rows.iter().enumerate() {
        for &(col, _) in row {
            for t in 0..slots / p_out {
                let i = (col as usize + p_in - (rho + t * p_out) % p_in) % p_in;
                if i < d {
                    seen[i] = true;
                }
            }
        }
    }
    seen.iter().filter(|&&b| b).count()
}

fn diagonals(a: &Affine, slots: usize) -> (BTreeMap<usize, Vec<f64>>, usize, usize) {
    let (p_in, p_out) = (period(a.inputs), period(a.outputs()));
    let d = p_in.min(p_out);
    let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (rho, row) in a.rows.iter().enumerate() {
        for &(col, w) in row {
            for t in 0..slots / p_out {
                let r = rho + t * p_out;
                let i = (col as usize + p_in - r % p_in) % p_in;
                if i < d {
                    diags.entry(i).or_insert_with(|| vec![0.0; slots])[r] = w;
                }
            }
        }
    }
    (diags, p_in, p_out)
}

impl LatencyServer {
    /// Encodes `plan`'s weights for parameters `params`; the ciphertext enters at level
    /// `plan.depth()`. Fails when the layout does not fit the slots.
    pub fn new(params: &Arc<CkksParameters>, plan: &Plan) -> Result<Self> {
        let slots = params.slots();
        if required_slots(plan) > slots {
            return Err(HeError::Unsupported {
                mode: "latency",
                model: plan.model.clone(),
                reason: format!(
                    "its layout needs {} slots, parameters have {slots}",
                    required_slots(plan)
                ),
            });
        }
        let mut bytes = 0u64;
        let mut level = plan.depth();
        for s in &plan.stages {
            if let Stage::Affine(a) | Stage::Sum(a) = s {
                bytes += (diagonal_count(a, slots) as u64 + 1)
                    * (level as u64 + 1)
                    * params.degree() as u64
                    * 8;
            }
            level = level.saturating_sub(1);
        }
        if bytes > PLAINTEXT_BUDGET {
            return Err(HeError::Unsupported {
                mode: "latency",
                model: plan.model.clone(),
                reason: format!(
                    "its encoded diagonals would take {:.1} GiB (budget {} GiB)",
                    bytes as f64 / f64::from(1u32 << 30),
                    PLAINTEXT_BUDGET >> 30
                ),
            });
        }
        let encoder = Encoder::new(params);
        let mut level = plan.depth();
        let mut scale = params.scale();
        let mut stages = Vec::new();
        let mut rotations = Vec::new();
        for s in &plan.stages {
            match s {
                Stage::Affine(a) | Stage::Sum(a) => {
                    let q = params.chain()[level] as f64;
                    let (diags, p_in, p_out) = diagonals(a, slots);
                    let idx: Vec<usize> = diags.keys().copied().collect();
                    let n1 = choose_n1(&idx, p_in.min(p_out));
                    let lt = LinearTransform::new(params, &diags, level, q, n1)?;
                    rotations.extend(lt.required_rotations());
                    let mut sum_steps = Vec::new();
                    let mut step = p_out;
                    while step < p_in {
                        sum_steps.push(step as i64);
                        step *= 2;
                    }
                    rotations.extend(&sum_steps);
                    let bias: Vec<f64> = (0..slots)
                        .map(|r| a.bias.get(r % p_out).copied().unwrap_or(0.0))
                        .collect();
                    let bias = encoder.encode(&bias, level, scale * q)?;
                    stages.push(LatStage::Affine {
                        lt,
                        sum_steps,
                        bias,
                    });
                    level = level
                        .checked_sub(1)
                        .ok_or(HeError::Malformed("plan deeper than parameters"))?;
                }
                Stage::Square => {
                    let q = params.chain()[level] as f64;
                    scale = scale * scale / q;
                    stages.push(LatStage::Square);
                    level = level
                        .checked_sub(1)
                        .ok_or(HeError::Malformed("plan deeper than parameters"))?;
                }
            }
        }
        rotations.sort_unstable();
        rotations.dedup();
        Ok(Self {
            params: Arc::clone(params),
            eval: Evaluator::new(params),
            stages,
            rotations,
            input_level: plan.depth(),
            keys: None,
        })
    }

    /// The rotations whose Galois keys the client must provide.
    pub fn rotations(&self) -> &[i64] {
        &self.rotations
    }

    /// Installs the client's serialised relinearisation and Galois keys.
    pub fn set_keys(&mut self, rlk: &[u8], gk: &[u8]) -> Result<()> {
        let rlk = RelinearizationKey::from_bytes(&self.params, rlk)?;
        let gk = GaloisKeys::from_bytes(&self.params, gk)?;
        if self.rotations.iter().any(|&s| !gk.supports_rotation(s)) {
            return Err(HeError::Malformed(
                "Galois keys lack a rotation the plan needs",
            ));
        }
        self.keys = Some((rlk, gk));
        Ok(())
    }

    /// Evaluates the plan on one serialised input ciphertext; returns the serialised output.
    pub fn handle(&self, request: &[u8]) -> Result<Vec<u8>> {
        let (rlk, gk) = self.keys.as_ref().ok_or(HeError::NotSetUp)?;
        let mut x = Ciphertext::from_bytes(&self.params, request)?;
        if x.size() != 2 || x.level() < self.input_level {
            return Err(HeError::Malformed(
                "input ciphertext has the wrong size or too few levels",
            ));
        }
        x.drop_to_level(self.input_level)?;
        let ev = &self.eval;
        for s in &self.stages {
            x = match s {
                LatStage::Affine {
                    lt,
                    sum_steps,
                    bias,
                } => {
                    let mut y = ev.linear_transform(&x, lt, gk)?;
                    for &step in sum_steps {
                        y = ev.add(&y, &ev.rotate(&y, step, gk)?)?;
                    }
                    ev.rescale(&ev.add_plain(&y, bias)?)?
                }
                LatStage::Square => ev.mul_relin_rescale(&x, &x, rlk)?,
            };
        }
        Ok(x.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_diagonals_compute_the_product() {
        // A 3 x 6 map: P_out = 4 < P_in = 8, slots 16.
        let a = Affine {
            inputs: 6,
            rows: (0..3)
                .map(|r| {
                    (0..6)
                        .map(|c| (c as u32, (r * 6 + c) as f64 + 1.0))
                        .collect()
                })
                .collect(),
            bias: vec![0.0; 3],
        };
        let slots = 16;
        let x: Vec<f64> = (0..6).map(|v| v as f64 - 2.5).collect();
        let xs = replicate(&x, slots);
        let (diags, p_in, p_out) = diagonals(&a, slots);
        let mut z = vec![0.0; slots];
        for (i, d) in &diags {
            for r in 0..slots {
                z[r] += d[r] * xs[(r + i) % slots];
            }
        }
        let mut y = z.clone();
        let mut step = p_out;
        while step < p_in {
            let prev = y.clone();
            for r in 0..slots {
                y[r] = prev[r] + prev[(r + step) % slots];
            }
            step *= 2;
        }
        let want = a.apply(&x);
        for r in 0..slots {
            let w = if r % p_out < 3 { want[r % p_out] } else { 0.0 };
            assert!((y[r] - w).abs() < 1e-9, "slot {r}: {} vs {w}", y[r]);
        }
    }

    #[test]
    fn n1_for_strided_diagonals() {
        let idx: Vec<usize> = (0..64).map(|i| i * 64).collect();
        let n1 = choose_n1(&idx, 4096);
        assert_eq!(n1 % 64, 0);
    }
}
