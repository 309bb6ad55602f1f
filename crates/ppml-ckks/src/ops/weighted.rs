//! Many weighted sums of many ciphertexts with scalar weights, in one cache-tiled pass over the
//! residues (the linear layers of one-value-per-slot packings).
//!
//! Scalar multiplication and addition act coefficient-wise on every residue, so the NTT form
//! does not matter. For a prime below 2^31 the products of two residues fit 62 bits and the inner
//! loop is a vectorised 32 x 32 -> 64-bit multiply-add; accumulators are reduced lazily, once
//! every few hundred terms, so the cost per term is one multiply and one add. Larger primes take
//! tfhe-ntt's vectorised modular multiply-accumulate (reduced per term).

use std::borrow::Borrow;
use std::sync::Arc;

use rayon::prelude::*;

use crate::arith::{add_mod, reduce_i128, Modulus};
use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::ops::arithmetic::{scaled_int, scales_match};
use crate::ops::Evaluator;
use crate::packed::{lazy_terms, NARROW_PRIME};
use crate::params::CkksParameters;
use crate::poly::RnsPoly;
use crate::simd::{reduce_any, simd};

/// Coefficients per tile: one tile of every input a task reads stays in the L2 cache while all
/// rows are accumulated.
const TILE: usize = 64;

/// Rows computed together when they read the same inputs.
const BLOCK: usize = 4;

impl Evaluator {
    /// `y_r = Σ_{(j, w) ∈ rows[r]} w · inputs[j] + bias[r]` for every row `r`, in one pass.
    ///
    /// Each weight `w` is encoded as the integer `round(w · weight_scale)` (like
    /// [`Self::mul_scalar`]), so every output has scale `inputs' scale · weight_scale`, stays at the
    /// inputs' level and needs a [`Self::rescale`] when `weight_scale` is a prime's size; with
    /// `weight_scale = 1` and integer weights the sums are exact and keep the inputs' scale. Each
    /// bias is added at the output scale. A row without terms gives an encryption of its bias.
    ///
    /// The inputs must share parameters, level, scale and size (2, or 3 for unrelinearised
    /// products: the sums of those relinearise as one). Errors on a column out of range, a bias
    /// count different from the row count, or a weight or bias that overflows its encoding.
    pub fn weighted_sums<C: Borrow<Ciphertext> + Sync>(
        &self,
        inputs: &[C],
        rows: &[Vec<(u32, f64)>],
        weight_scale: f64,
        bias: &[f64],
    ) -> Result<Vec<Ciphertext>> {
        let first = inputs
            .first()
            .ok_or(CkksError::InvalidShape {
                reason: "weighted sums of no inputs",
            })?
            .borrow();
        let (level, scale, size) = (first.level(), first.scale(), first.size());
        for c in inputs {
            let c = c.borrow();
            CkksParameters::check_same(&self.params, c.params())?;
            if c.level() != level {
                return Err(CkksError::LevelMismatch {
                    left: level,
                    right: c.level(),
                });
            }
            if !scales_match(scale, c.scale()) {
                return Err(CkksError::ScaleMismatch {
                    left: scale,
                    right: c.scale(),
                });
            }
            if c.size() != size || !(2..=3).contains(&size) {
                return Err(CkksError::InvalidCiphertextSize {
                    size: c.size(),
                    expected: size.clamp(2, 3),
                });
            }
        }
        if bias.len() != rows.len() {
            return Err(CkksError::InvalidShape {
                reason: "one bias per row is required",
            });
        }
        if rows
            .iter()
            .flatten()
            .any(|&(j, _)| j as usize >= inputs.len())
        {
            return Err(CkksError::InvalidShape {
                reason: "a weighted sum reads an input out of range",
            });
        }
        let out_scale = scale * weight_scale;
        let weights: Vec<Vec<i128>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(_, w)| scaled_int(w, weight_scale))
                    .collect()
            })
            .collect::<Result<_>>()?;
        let biases: Vec<i128> = bias
            .iter()
            .map(|&b| scaled_int(b, out_scale))
            .collect::<Result<_>>()?;
        let n = self.params.degree();
        let moduli = &self.params.chain()[..=level];
        let limbs = moduli.len();
        // Rows reading the same inputs in the same order (a convolution's output channels at one
        // position, every row of a dense layer) are computed BLOCK at a time: each input tile
        // loaded from the cache serves BLOCK rows.
        let mut by_columns: std::collections::HashMap<Vec<u32>, Vec<usize>> =
            std::collections::HashMap::new();
        for (r, row) in rows.iter().enumerate() {
            by_columns
                .entry(row.iter().map(|&(j, _)| j).collect())
                .or_default()
                .push(r);
        }
        let mut blocks: Vec<Vec<usize>> = by_columns
            .into_values()
            .flat_map(|rs| rs.chunks(BLOCK).map(<[usize]>::to_vec).collect::<Vec<_>>())
            .collect();
        blocks.sort_unstable();
        // One task per (polynomial, limb): its rows' limbs, computed tile by tile.
        let per_task: Vec<Vec<Vec<u64>>> = (0..size * limbs)
            .into_par_iter()
            .map(|task| {
                let (poly, limb) = (task / limbs, task % limbs);
                let m = &self.params.moduli[limb];
                let q = m.value;
                // Per block: the shared inputs and each row's weight modulo q (0 for padding).
                let block_terms: Vec<Vec<(u32, [u64; BLOCK])>> = blocks
                    .iter()
                    .map(|block| {
                        rows[block[0]]
                            .iter()
                            .enumerate()
                            .map(|(t, &(j, _))| {
                                let mut w = [0u64; BLOCK];
                                for (w, &r) in w.iter_mut().zip(block) {
                                    *w = reduce_i128(weights[r][t], q);
                                }
                                (j, w)
                            })
                            .collect()
                    })
                    .collect();
                // Degrees are powers of two >= 2^12, so the limbs split into whole tiles.
                let xs: Vec<&[[u64; TILE]]> = inputs
                    .iter()
                    .map(|c| c.borrow().polys[poly].limbs[limb].as_chunks::<TILE>().0)
                    .collect();
                let mut outs: Vec<Vec<u64>> = vec![vec![0u64; n]; rows.len()];
                let biases: Vec<u64> = biases
                    .iter()
                    .map(|&b| if poly == 0 { reduce_i128(b, q) } else { 0 })
                    .collect();
                // One dispatch per task; `inline(always)`: the body must be compiled inside
                // pulp's target-feature function.
                simd(
                    #[inline(always)]
                    || {
                        let mut acc = [[0u64; TILE]; BLOCK];
                        for tile in 0..n / TILE {
                            for (block, terms) in blocks.iter().zip(&block_terms) {
                                accumulate(&mut acc, block.len(), terms, &xs, tile, m);
                                for (&r, acc) in block.iter().zip(&acc) {
                                    let b = biases[r];
                                    outs[r][tile * TILE..(tile + 1) * TILE]
                                        .iter_mut()
                                        .zip(acc)
                                        .for_each(|(o, &a)| *o = add_mod(a, b, q));
                                }
                            }
                        }
                    },
                );
                outs
            })
            .collect();
        // Reassemble: output r, polynomial p, limb l is task (p, l)'s row r.
        let mut outputs: Vec<Vec<RnsPoly>> = (0..rows.len())
            .map(|_| {
                (0..size)
                    .map(|_| RnsPoly {
                        limbs: Vec::with_capacity(limbs),
                    })
                    .collect()
            })
            .collect();
        for (task, outs) in per_task.into_iter().enumerate() {
            for (polys, limb) in outputs.iter_mut().zip(outs) {
                polys[task / limbs].limbs.push(limb);
            }
        }
        Ok(outputs
            .into_iter()
            .map(|polys| Ciphertext::from_parts(Arc::clone(&self.params), polys, level, out_scale))
            .collect())
    }
}

/// `acc[r] = Σ_t w_t[r] · xs[input_t][tile] mod q` for the first `rows` rows of a block (fully
/// reduced).
#[inline(always)]
fn accumulate(
    acc: &mut [[u64; TILE]; BLOCK],
    rows: usize,
    terms: &[(u32, [u64; BLOCK])],
    xs: &[&[[u64; TILE]]],
    tile: usize,
    m: &Modulus,
) {
    let q = m.value;
    *acc = [[0; TILE]; BLOCK];
    if q >= NARROW_PRIME {
        // Wide prime: tfhe-ntt's vectorised modular multiply-accumulate against the broadcast
        // weight.
        for (j, w) in terms {
            for (acc, &w) in acc.iter_mut().zip(w).take(rows) {
                m.plan
                    .mul_accumulate(acc, &xs[*j as usize][tile], &[w; TILE]);
            }
        }
        return;
    }
    // Narrow prime: products fit 64 bits (a vectorised 32 x 32 -> 64-bit multiply); terms summed
    // between reductions keep acc < q + group · (q - 1)^2 < 2^62.
    let inv_q = 1.0 / q as f64;
    let group = lazy_terms(q);
    for chunk in terms.chunks(group) {
        for (j, w) in chunk {
            let x = &xs[*j as usize][tile];
            for (acc, &w) in acc.iter_mut().zip(w).take(rows) {
                let w = w & 0xffff_ffff;
                for (a, &x) in acc.iter_mut().zip(x) {
                    *a += (x & 0xffff_ffff) * w;
                }
            }
        }
        for acc in acc.iter_mut().take(rows) {
            acc.iter_mut().for_each(|a| *a = reduce_any(*a, q, inv_q));
        }
    }
}
