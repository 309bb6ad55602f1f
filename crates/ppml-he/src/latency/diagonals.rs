//! Diagonal extraction: an affine map between two placements as the diagonals of one block
//! per (output ciphertext, input ciphertext) pair, and sum stages as ciphertext additions.
//!
//! An `m x n` map from period `P_in` to period `P_out` (a grid has period = slots) uses
//! diagonal `d` of slot `r` for input slot `(r + d) mod P_in`. When `P_out >= P_in` the weight of
//! output `a` and input `c` sits on diagonal `(c - a) mod P_in` in every replica of `a`. When
//! `P_out < P_in` it sits on diagonal `d = (c - a) mod P_out` in slot `r = (c - d) mod P_in`
//! (and its replicas), and a rotate-and-sum over `P_in / P_out` adds the pieces of each output,
//! which leaves the output periodic with `P_out` as the next stage expects.

use std::collections::BTreeMap;

use crate::layout::Placement;
use crate::plan::Affine;

/// Diagonals of `a` from `inp` to `out`, keyed by (output ciphertext, input ciphertext), then by
/// diagonal index; and the rotate-and-sum steps.
pub(super) type BlockDiagonals = BTreeMap<(usize, usize), BTreeMap<usize, Vec<f64>>>;

pub(super) fn block_diagonals(
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
pub(super) fn sum_by_additions(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Grid;
    use crate::plan::Affine;

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
}
