//! The layout search: the latency plan of a model and the placement of every vector in it,
//! periodic when every vector fits one ciphertext, a grid of channel blocks otherwise.

use ppml_nn::{Model, Shape};

use super::placement::{period, Grid, Placement};
use crate::error::{HeError, Result};
use crate::plan::{Plan, PoolStrategy, Stage};

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
