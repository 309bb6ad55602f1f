//! Diagonal (Halevi–Shoup) matrix-vector products with baby-step giant-step and hoisted baby
//! steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ciphertext::Ciphertext;
use crate::encoding::Encoder;
use crate::error::{CkksError, Result};
use crate::keys::GaloisKeys;
use crate::ops::Evaluator;
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;

/// A slots x slots matrix given by its non-zero generalised diagonals
/// (diag_i[k] = M[k][(k + i) mod slots]), encoded once for y = M x with baby-step giant-step:
/// y = Σ_j rot_{j n1}( Σ_b rot_{-j n1}(diag_{j n1 + b}) ⊙ rot_b(x) ).
#[derive(Debug, Clone)]
pub struct LinearTransform {
    params: Arc<CkksParameters>,
    n1: usize,
    /// giant step j -> [(baby step b, pre-rotated diagonal)].
    blocks: BTreeMap<usize, Vec<(usize, Plaintext)>>,
    scale: f64,
    level: usize,
}

impl LinearTransform {
    /// Encodes the diagonals (index i in 0..slots -> values, at most `slots` long, zero padded)
    /// at `level` and `scale`; `n1` baby steps (0 chooses about sqrt of the diagonal span).
    pub fn new(
        params: &Arc<CkksParameters>,
        diagonals: &BTreeMap<usize, Vec<f64>>,
        level: usize,
        scale: f64,
        n1: usize,
    ) -> Result<Self> {
        let slots = params.slots();
        let max_i = diagonals.keys().next_back().copied().unwrap_or(0);
        if max_i >= slots {
            return Err(CkksError::InvalidShape {
                reason: "diagonal index must be < slots",
            });
        }
        if diagonals.values().any(|d| d.len() > slots) {
            return Err(CkksError::InvalidShape {
                reason: "diagonal longer than the slot count",
            });
        }
        let n1 = if n1 == 0 {
            ((max_i + 1) as f64).sqrt().ceil().max(1.0) as usize
        } else {
            n1.min(slots)
        };
        let encoder = Encoder::new(params);
        let mut blocks: BTreeMap<usize, Vec<(usize, Plaintext)>> = BTreeMap::new();
        for (&i, d) in diagonals {
            let (j, b) = (i / n1, i % n1);
            let shift = j * n1;
            // rot_{-shift}(d)[k] = d[(k - shift) mod slots]
            let rotated: Vec<f64> = (0..slots)
                .map(|k| {
                    d.get((k + slots - shift % slots) % slots)
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            let pt = encoder.encode(&rotated, level, scale)?;
            blocks.entry(j).or_default().push((b, pt));
        }
        Ok(Self {
            params: Arc::clone(params),
            n1,
            blocks,
            scale,
            level,
        })
    }

    /// The rotation steps whose Galois keys [`Evaluator::linear_transform`] needs.
    pub fn required_rotations(&self) -> Vec<i64> {
        let mut steps: Vec<i64> = self
            .blocks
            .iter()
            .flat_map(|(&j, v)| {
                let giant = (j * self.n1) as i64;
                v.iter()
                    .map(|(b, _)| *b as i64)
                    .chain(std::iter::once(giant))
            })
            .filter(|&s| s != 0)
            .collect();
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// The baby steps `i mod n1` of the non-zero diagonals `i` (with 0 when present).
    pub fn baby_steps(&self) -> Vec<usize> {
        let mut b: Vec<usize> = self
            .blocks
            .values()
            .flat_map(|v| v.iter().map(|(b, _)| *b))
            .collect();
        b.sort_unstable();
        b.dedup();
        b
    }

    /// Scale of the encoded diagonals.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Level of the encoded diagonals.
    pub fn level(&self) -> usize {
        self.level
    }
}

/// One input's baby-step rotations, computed once (hoisted) and shared by every
/// [`LinearTransform`] that reads this input.
#[derive(Debug, Clone)]
pub struct BabySteps {
    steps: Vec<usize>,
    rotated: Vec<Ciphertext>,
}

impl BabySteps {
    fn get(&self, b: usize) -> Result<&Ciphertext> {
        self.steps
            .binary_search(&b)
            .ok()
            .and_then(|k| self.rotated.get(k))
            .ok_or(CkksError::InvalidShape {
                reason: "missing baby step",
            })
    }
}

impl Evaluator {
    /// y = M x for an encoded [`LinearTransform`]; the result's scale is x.scale() * lt.scale()
    /// (rescale afterwards). Baby-step rotations are hoisted.
    pub fn linear_transform(
        &self,
        x: &Ciphertext,
        lt: &LinearTransform,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let babies = self.baby_steps(x, &lt.baby_steps(), gk)?;
        self.linear_transform_sum(&[(&babies, lt)], gk)
    }

    /// `x` rotated by each of `steps` (step 0 is `x` itself), with one hoisted decomposition.
    pub fn baby_steps(
        &self,
        x: &Ciphertext,
        steps: &[usize],
        gk: &GaloisKeys,
    ) -> Result<BabySteps> {
        let mut steps = steps.to_vec();
        steps.sort_unstable();
        steps.dedup();
        let signed: Vec<i64> = steps.iter().map(|&b| b as i64).collect();
        let rotated = self.rotate_hoisted(x, &signed, gk)?;
        Ok(BabySteps { steps, rotated })
    }

    /// y = Σ_k M_k x_k for transforms that share one baby-step count, given each input's
    /// [`BabySteps`] (which must include the transform's [`LinearTransform::baby_steps`]). The
    /// inner sums of all terms are added before each giant-step rotation, so a giant step costs
    /// one rotation however many inputs there are.
    pub fn linear_transform_sum(
        &self,
        terms: &[(&BabySteps, &LinearTransform)],
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let Some((_, first)) = terms.first() else {
            return Err(CkksError::InvalidShape {
                reason: "no linear transform",
            });
        };
        let n1 = first.n1;
        let mut giants: Vec<usize> = Vec::new();
        for (_, lt) in terms {
            CkksParameters::check_same(self.params(), &lt.params)?;
            if lt.n1 != n1 {
                return Err(CkksError::InvalidShape {
                    reason: "summed linear transforms need one baby-step count",
                });
            }
            giants.extend(lt.blocks.keys());
        }
        giants.sort_unstable();
        giants.dedup();
        let mut total: Option<Ciphertext> = None;
        for j in giants {
            let mut inner: Option<Ciphertext> = None;
            for (babies, lt) in terms {
                for (b, pt) in lt.blocks.get(&j).into_iter().flatten() {
                    let t = self.mul_plain(babies.get(*b)?, pt)?;
                    inner = Some(match inner {
                        Some(acc) => self.add(&acc, &t)?,
                        None => t,
                    });
                }
            }
            let Some(inner) = inner else { continue };
            let moved = self.rotate(&inner, (j * n1) as i64, gk)?;
            total = Some(match total {
                Some(acc) => self.add(&acc, &moved)?,
                None => moved,
            });
        }
        total.ok_or(CkksError::InvalidShape {
            reason: "no diagonal",
        })
    }
}
