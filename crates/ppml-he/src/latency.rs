//! Latency mode: one image in one ciphertext, or in a few when its feature maps exceed the
//! slots. The client lays its input vector (the im2col patch matrix when the model starts with a
//! convolution) out as a [`Placement`] tells it; each affine stage is a diagonal (Halevi–Shoup)
//! matrix-vector product per pair of output and input ciphertexts, with baby-step giant-step
//! (baby steps hoisted once per input ciphertext, giant steps shared by all inputs of an output,
//! [`ppml_ckks::Evaluator::linear_transform_sum`]); weights are encoded once at setup, and every
//! stage rescales once.
//!
//! Two placements:
//! - [`Placement::Periodic`] (models whose vectors all fit one ciphertext: `cnn`, `mlp-sq`): a
//!   vector of length `n` lives periodically with period `P = next_pow2(n)`: slot `r` holds
//!   `v[r mod P]` (zero when `r mod P >= n`).
//! - [`Placement::Grid`] (`lenet-sq`, whose first convolution has 11,520 outputs): a feature map
//!   in channel blocks of a power-of-two size, rows `row_stride` slots apart, so that a
//!   convolution's diagonals do not depend on the output position (one diagonal per pair of
//!   channel blocks and kernel offset). Before the first pooling the positions are split into
//!   pooling phases, one set of ciphertexts each, so that sum pooling is ciphertext additions.
//!   The slots a map does not use hold zeros, or sums of zeros after pooling.
//!
//! An `m x n` map from period `P_in` to period `P_out` (a grid has period = slots) uses
//! diagonal `d` of slot `r` for input slot `(r + d) mod P_in`. When `P_out >= P_in` the weight of
//! output `a` and input `c` sits on diagonal `(c - a) mod P_in` in every replica of `a`. When
//! `P_out < P_in` it sits on diagonal `d = (c - a) mod P_out` in slot `r = (c - d) mod P_in`
//! (and its replicas), and a rotate-and-sum over `P_in / P_out` adds the pieces of each output,
//! which leaves the output periodic with `P_out` as the next stage expects.

use std::collections::BTreeMap;
use std::sync::Arc;

use ppml_ckks::{
    Ciphertext, CkksParameters, Encoder, Evaluator, GaloisKeys, LinearTransform, Plaintext,
};
use ppml_nn::{Model, Shape};

use crate::client::ClientKeys;
use crate::error::{HeError, Result};
use crate::plan::{Affine, Plan, PoolStrategy, Stage};
use crate::trace::span;

/// Period of a vector of length `n` in the periodic placement.
pub fn period(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Slots the periodic placement of `plan` needs.
pub fn required_slots(plan: &Plan) -> usize {
    let mut p = period(plan.input_len);
    for s in &plan.stages {
        if let Stage::Affine(a) | Stage::Sum(a) = s {
            p = p.max(period(a.outputs()));
        }
    }
    p
}

/// Most ciphertexts one vector may take.
pub const MAX_CIPHERTEXTS: usize = 64;

/// A `[channels, height, width]` feature map in channel blocks (see the module docs): element
/// `(c, y, x)` sits in phase `(y mod phase, x mod phase)`, channel block `c`, slot
/// `(y / phase) * row_stride + x / phase` of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Pooling phases per axis (1: none).
    pub phase: usize,
    /// Slots from one row to the next within a block.
    pub row_stride: usize,
    /// Slots per channel block: a power of two.
    pub block: usize,
}

impl Grid {
    fn blocks_per_ciphertext(&self, slots: usize) -> usize {
        (slots / self.block).max(1)
    }

    fn ciphertexts_per_phase(&self, slots: usize) -> usize {
        self.channels.div_ceil(self.blocks_per_ciphertext(slots))
    }
}

/// Where the elements of one vector live in latency mode (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// One ciphertext, element `k` in slot `k`, repeated with period `next_pow2(len)`.
    Periodic {
        /// Length of the vector.
        len: usize,
    },
    /// A feature map in channel blocks over one or more ciphertexts.
    Grid(Grid),
}

impl Placement {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Placement::Periodic { len } => *len,
            Placement::Grid(g) => g.channels * g.height * g.width,
        }
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of ciphertexts.
    pub fn ciphertexts(&self, slots: usize) -> usize {
        match self {
            Placement::Periodic { .. } => 1,
            Placement::Grid(g) => g.phase * g.phase * g.ciphertexts_per_phase(slots),
        }
    }

    /// Period of each ciphertext's slots.
    pub fn period(&self, slots: usize) -> usize {
        match self {
            Placement::Periodic { len } => period(*len),
            Placement::Grid(_) => slots,
        }
    }

    /// `(ciphertext, slot)` of element `k` (its first replica).
    pub fn locate(&self, k: usize, slots: usize) -> (usize, usize) {
        match self {
            Placement::Periodic { .. } => (0, k),
            Placement::Grid(g) => {
                let (c, y, x) = (
                    k / (g.height * g.width),
                    k / g.width % g.height,
                    k % g.width,
                );
                let bpc = g.blocks_per_ciphertext(slots);
                let phase = (y % g.phase) * g.phase + x % g.phase;
                (
                    phase * g.ciphertexts_per_phase(slots) + c / bpc,
                    (c % bpc) * g.block + (y / g.phase) * g.row_stride + x / g.phase,
                )
            }
        }
    }

    /// Checks that the placement fits `slots` and stays within [`MAX_CIPHERTEXTS`].
    pub fn validate(&self, slots: usize) -> Result<()> {
        match self {
            Placement::Periodic { len } if period(*len) <= slots => Ok(()),
            Placement::Periodic { .. } => {
                Err(HeError::Malformed("latency layout larger than the slots"))
            }
            Placement::Grid(g) => {
                let (h, w) = (
                    g.height.div_ceil(g.phase.max(1)),
                    g.width.div_ceil(g.phase.max(1)),
                );
                let fits = g.phase >= 1
                    && g.block.is_power_of_two()
                    && g.block <= slots
                    && g.row_stride >= w
                    && h.saturating_sub(1) * g.row_stride + w <= g.block;
                if !fits || g.channels == 0 || h == 0 || w == 0 {
                    return Err(HeError::Malformed("latency grid does not fit its blocks"));
                }
                if g.phase * g.phase * g.ciphertexts_per_phase(slots) > MAX_CIPHERTEXTS {
                    return Err(HeError::Malformed(
                        "latency grid needs too many ciphertexts",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The client's slot vectors, one per ciphertext, for a vector `x` of [`Self::len`] values.
    pub fn lay_out(&self, x: &[f64], slots: usize) -> Vec<Vec<f64>> {
        let mut cts = vec![vec![0.0; slots]; self.ciphertexts(slots)];
        let p = self.period(slots);
        for (k, &v) in x.iter().enumerate().take(self.len()) {
            let (ct, slot) = self.locate(k, slots);
            for r in (slot..slots).step_by(p) {
                cts[ct][r] = v;
            }
        }
        cts
    }
}

/// Baby-step count minimising the rotations per image for these diagonal indices (baby steps
/// once per input, giant steps once per output ciphertext) plus the Galois keys the client must
/// add to those of `known` rotations (each key is megabytes of upload).
fn choose_n1(
    indices: &[usize],
    span: usize,
    inputs: usize,
    outputs: usize,
    known: &[i64],
) -> usize {
    let mut best = (usize::MAX, 1);
    for n1 in 1..=span.max(1) {
        let mut babies: Vec<usize> = indices.iter().map(|i| i % n1).filter(|&b| b != 0).collect();
        babies.sort_unstable();
        babies.dedup();
        let mut giants: Vec<usize> = indices
            .iter()
            .map(|i| i / n1 * n1)
            .filter(|&g| g != 0)
            .collect();
        giants.sort_unstable();
        giants.dedup();
        let new_keys = babies
            .iter()
            .chain(&giants)
            .filter(|&&r| !known.contains(&(r as i64)))
            .count();
        let cost = babies.len() * inputs + giants.len() * outputs + new_keys;
        if cost < best.0 {
            best = (cost, n1);
        }
    }
    best.1
}

/// Memory the encoded weights of latency mode may take.
pub const PLAINTEXT_BUDGET: u64 = 2 << 30;

/// Diagonals of `a` from `inp` to `out`, keyed by (output ciphertext, input ciphertext), then by
/// diagonal index; and the rotate-and-sum steps.
type BlockDiagonals = BTreeMap<(usize, usize), BTreeMap<usize, Vec<f64>>>;

fn block_diagonals(
    a: &Affine,
    inp: &Placement,
    out: &Placement,
    slots: usize,
) -> (BlockDiagonals, Vec<i64>) {
    let (p_in, p_out) = (inp.period(slots), out.period(slots));
    let mut diags = BlockDiagonals::new();
    for (rho, row) in a.rows.iter().enumerate() {
        let (o, at) = out.locate(rho, slots);
        for &(col, w) in row {
            let (i, c) = inp.locate(col as usize, slots);
            let (d, first, step) = if p_out >= p_in {
                ((c + p_in - at % p_in) % p_in, at, p_out)
            } else {
                let d = (c + p_out - at) % p_out;
                (d, (c + p_in - d) % p_in, p_in)
            };
            let diag = diags
                .entry((o, i))
                .or_default()
                .entry(d)
                .or_insert_with(|| vec![0.0; slots]);
            for r in (first..slots).step_by(step) {
                diag[r] += w;
            }
        }
    }
    let mut sum_steps = Vec::new();
    let mut step = p_out;
    while step < p_in {
        sum_steps.push(step as i64);
        step *= 2;
    }
    (diags, sum_steps)
}

/// The input ciphertexts a sum stage adds for each output ciphertext, when each output sits in
/// the same slot as all its summands (pooling phases in separate ciphertexts); `None` otherwise.
fn sum_by_additions(
    a: &Affine,
    inp: &Placement,
    out: &Placement,
    slots: usize,
) -> Option<Vec<Vec<usize>>> {
    let mut groups: Vec<Option<Vec<usize>>> = vec![None; out.ciphertexts(slots)];
    for (rho, row) in a.rows.iter().enumerate() {
        let (o, at) = out.locate(rho, slots);
        let mut members = Vec::with_capacity(row.len());
        for &(col, w) in row {
            let (i, c) = inp.locate(col as usize, slots);
            if c != at || w != 1.0 {
                return None;
            }
            members.push(i);
        }
        members.sort_unstable();
        let group = groups.get_mut(o)?;
        match group {
            Some(g) if *g != members => return None,
            Some(_) => {}
            None => *group = Some(members),
        }
    }
    groups.into_iter().collect()
}

/// The latency plan of `model` and the placement of its input and of every stage's output.
/// Models whose vectors fit one ciphertext use the periodic placement with pooling folded into
/// the next map; the others a grid (see the module docs).
pub fn layout(model: &Model, slots: usize) -> Result<(Plan, Vec<Placement>)> {
    let plan = Plan::compile(model, PoolStrategy::Fold, true)?;
    if required_slots(&plan) <= slots {
        let mut placements = vec![Placement::Periodic {
            len: plan.input_len,
        }];
        placements.extend(
            plan.shapes
                .iter()
                .map(|s| Placement::Periodic { len: s.len() }),
        );
        return Ok((plan, placements));
    }
    let mut plan = Plan::compile(model, PoolStrategy::SumStage, true)?;
    // The first sum pooling right after a square splits the maps before it into pooling phases;
    // every other sum folds into the next map.
    let mut phased = None;
    if let Some(s1) = plan.stages.iter().position(|s| matches!(s, Stage::Sum(_))) {
        let mut i = s1 + 1;
        while i < plan.stages.len() {
            if !(matches!(plan.stages[i], Stage::Sum(_)) && plan.fold_sum(i)) {
                i += 1;
            }
        }
        let before = s1.checked_sub(1).map(|k| (&plan.stages[k], plan.shapes[k]));
        match (before, plan.shapes[s1]) {
            (Some((Stage::Square, Shape::Chw(_, h, w))), Shape::Chw(_, ph, pw))
                if ph > 0 && pw > 0 && h % ph == 0 && w % pw == 0 && h / ph == w / pw =>
            {
                phased = Some((s1, h / ph));
            }
            _ => {
                plan.fold_sum(s1);
            }
        }
    }
    // Boundary k is the plan's input (k = 0) or the output of stage k - 1.
    let boundaries: Vec<(Shape, usize)> = std::iter::once(plan.input_shape)
        .chain(plan.shapes.iter().copied())
        .enumerate()
        .map(|(k, s)| match phased {
            Some((s1, phase)) if k <= s1 => (s, phase),
            _ => (s, 1),
        })
        .collect();
    let grids = || {
        boundaries.iter().filter_map(|&(s, phase)| match s {
            Shape::Chw(_, h, w) => Some((h.div_ceil(phase), w.div_ceil(phase))),
            Shape::Flat(_) => None,
        })
    };
    let row_stride = grids().map(|(_, w)| w).max().unwrap_or(1);
    let placements: Vec<Placement> = boundaries
        .iter()
        .map(|&(s, phase)| match s {
            Shape::Chw(channels, height, width) => Placement::Grid(Grid {
                channels,
                height,
                width,
                phase,
                row_stride,
                block: period(
                    height.div_ceil(phase).saturating_sub(1) * row_stride + width.div_ceil(phase),
                ),
            }),
            Shape::Flat(len) => Placement::Periodic { len },
        })
        .collect();
    for p in &placements {
        p.validate(slots).map_err(|e| HeError::Unsupported {
            mode: "latency",
            model: plan.model.clone(),
            reason: format!("no layout fits {slots} slots ({e})"),
        })?;
    }
    Ok((plan, placements))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the block diagonals to laid-out slot vectors in the clear.
    fn apply(
        diags: &BlockDiagonals,
        sum_steps: &[i64],
        xs: &[Vec<f64>],
        outputs: usize,
        slots: usize,
    ) -> Vec<Vec<f64>> {
        let mut ys = vec![vec![0.0; slots]; outputs];
        for ((o, i), ds) in diags {
            for (d, v) in ds {
                for r in 0..slots {
                    ys[*o][r] += v[r] * xs[*i][(r + d) % slots];
                }
            }
        }
        for y in &mut ys {
            for &step in sum_steps {
                let prev = y.clone();
                for r in 0..slots {
                    y[r] = prev[r] + prev[(r + step as usize) % slots];
                }
            }
        }
        ys
    }

    fn dense(outputs: usize, inputs: usize) -> Affine {
        Affine {
            inputs,
            rows: (0..outputs)
                .map(|r| {
                    (0..inputs)
                        .map(|c| (c as u32, ((r * inputs + c) % 13) as f64 - 6.0))
                        .collect()
                })
                .collect(),
            bias: vec![0.0; outputs],
        }
    }

    /// A square map in blocks of 4 slots, rows 2 apart.
    fn small_grid(channels: usize, side: usize, phase: usize) -> Placement {
        Placement::Grid(Grid {
            channels,
            height: side,
            width: side,
            phase,
            row_stride: 2,
            block: 4,
        })
    }

    fn check(a: &Affine, inp: Placement, out: Placement, slots: usize) {
        let x: Vec<f64> = (0..a.inputs).map(|v| (v % 7) as f64 - 2.5).collect();
        let xs = inp.lay_out(&x, slots);
        let (diags, steps) = block_diagonals(a, &inp, &out, slots);
        let ys = apply(&diags, &steps, &xs, out.ciphertexts(slots), slots);
        let want = out.lay_out(&a.apply(&x), slots);
        for (o, (y, w)) in ys.iter().zip(&want).enumerate() {
            for r in 0..slots {
                assert!(
                    (y[r] - w[r]).abs() < 1e-9,
                    "ct {o} slot {r}: {} vs {}",
                    y[r],
                    w[r]
                );
            }
        }
    }

    #[test]
    fn periodic_diagonals_compute_the_product() {
        // P_out = 4 < P_in = 8, and P_out = 8 > P_in = 4, in 16 slots.
        check(
            &dense(3, 6),
            Placement::Periodic { len: 6 },
            Placement::Periodic { len: 3 },
            16,
        );
        check(
            &dense(6, 3),
            Placement::Periodic { len: 3 },
            Placement::Periodic { len: 6 },
            16,
        );
    }

    #[test]
    fn grid_diagonals_compute_the_product_across_ciphertexts() {
        // A 3-channel 4x4 map with two phases (8 ciphertexts of 2 blocks of 4 slots) to a
        // 5-channel 2x2 map (3 ciphertexts), and on to a periodic vector.
        let slots = 8;
        let (inp, mid) = (small_grid(3, 4, 2), small_grid(5, 2, 1));
        assert_eq!(inp.ciphertexts(slots), 8);
        assert_eq!(mid.ciphertexts(slots), 3);
        inp.validate(slots).expect("valid");
        check(&dense(20, 48), inp, mid, slots);
        check(&dense(3, 20), mid, Placement::Periodic { len: 3 }, slots);
    }

    #[test]
    fn pooling_phases_sum_by_additions() {
        let (c, h) = (3, 4);
        let sum = Affine {
            inputs: c * h * h,
            rows: (0..c * 4)
                .map(|k| {
                    let (ch, py, px) = (k / 4, k / 2 % 2, k % 2);
                    let mut row: Vec<(u32, f64)> = (0..4)
                        .map(|t| (((ch * h + 2 * py + t / 2) * h + 2 * px + t % 2) as u32, 1.0))
                        .collect();
                    row.sort_unstable_by_key(|e| e.0);
                    row
                })
                .collect(),
            bias: vec![0.0; c * 4],
        };
        let g = |side, phase| small_grid(c, side, phase);
        let slots = 8;
        let groups = sum_by_additions(&sum, &g(4, 2), &g(2, 1), slots).expect("phases");
        assert_eq!(groups, vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]]);
        // Without phases the summands sit in different slots.
        assert!(sum_by_additions(&sum, &g(4, 1), &g(2, 1), slots).is_none());
    }

    #[test]
    fn n1_for_strided_diagonals() {
        let idx: Vec<usize> = (0..64).map(|i| i * 64).collect();
        let n1 = choose_n1(&idx, 4096, 1, 1, &[]);
        assert_eq!(n1 % 64, 0);
    }
}
