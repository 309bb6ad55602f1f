//! Diagonal (Halevi–Shoup) matrix-vector products with baby-step giant-step and hoisted baby
//! steps.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::buffers::take_buf;
use crate::ciphertext::Ciphertext;
use crate::encoding::Encoder;
use crate::error::{CkksError, Result};
use crate::keys::GaloisKeys;
use crate::ops::arithmetic::scales_match;
use crate::ops::Evaluator;
use crate::packed::{lazy_terms, PackedLimb, PackedPoly, NARROW_PRIME};
use crate::params::CkksParameters;
use crate::plaintext::Plaintext;
use crate::poly::RnsPoly;
use crate::simd::{reduce_any, simd};

/// A residue polynomial of a plaintext, as the multiply-accumulate kernel reads it.
#[derive(Clone, Copy)]
enum Residues<'a> {
    /// A prime below [`NARROW_PRIME`], residues in 32 bits.
    Narrow(&'a [u32]),
    Wide(&'a [u64]),
}

/// What [`Evaluator::mul_plain_sum`] multiplies by: a [`Plaintext`] or a [`PackedPlaintext`].
trait PlainResidues: Sync {
    fn residues(&self, limb: usize) -> Residues<'_>;
    fn level(&self) -> usize;
    fn scale(&self) -> f64;
    fn params(&self) -> &Arc<CkksParameters>;
}

impl PlainResidues for Plaintext {
    fn residues(&self, limb: usize) -> Residues<'_> {
        Residues::Wide(&self.poly.limbs[limb])
    }
    fn level(&self) -> usize {
        Plaintext::level(self)
    }
    fn scale(&self) -> f64 {
        Plaintext::scale(self)
    }
    fn params(&self) -> &Arc<CkksParameters> {
        Plaintext::params(self)
    }
}

/// An encoded diagonal with its residues packed ([`PackedPoly`]): a transform's weights take
/// about half the memory, and the multiply-accumulate reads half the bytes.
#[derive(Debug, Clone)]
struct PackedPlaintext {
    params: Arc<CkksParameters>,
    poly: PackedPoly,
    level: usize,
    scale: f64,
}

impl PackedPlaintext {
    fn new(pt: &Plaintext) -> Self {
        let params = Arc::clone(pt.params());
        let chain: Vec<usize> = (0..=pt.level()).collect();
        Self {
            poly: PackedPoly::pack_at(&params, &chain, &pt.poly),
            params,
            level: pt.level(),
            scale: pt.scale(),
        }
    }
}

impl PlainResidues for PackedPlaintext {
    fn residues(&self, limb: usize) -> Residues<'_> {
        match &self.poly.limbs[limb] {
            PackedLimb::Narrow(v) => Residues::Narrow(v),
            PackedLimb::Wide(v) => Residues::Wide(v),
        }
    }
    fn level(&self) -> usize {
        self.level
    }
    fn scale(&self) -> f64 {
        self.scale
    }
    fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }
}

/// A slots x slots matrix given by its non-zero generalised diagonals
/// (diag_i[k] = M[k][(k + i) mod slots]), encoded once for y = M x with baby-step giant-step:
/// y = Σ_j rot_{j n1}( Σ_b rot_{-j n1}(diag_{j n1 + b}) ⊙ rot_b(x) ).
#[derive(Debug, Clone)]
pub struct LinearTransform {
    params: Arc<CkksParameters>,
    n1: usize,
    /// giant step j -> [(baby step b, pre-rotated diagonal)].
    blocks: BTreeMap<usize, Vec<(usize, PackedPlaintext)>>,
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
        let mut blocks: BTreeMap<usize, Vec<(usize, PackedPlaintext)>> = BTreeMap::new();
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
            let pt = PackedPlaintext::new(&encoder.encode(&rotated, level, scale)?);
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

    /// Bytes one encoded diagonal takes at `level` (residues modulo primes below 2^31 are held
    /// in 32 bits), for budgeting before encoding.
    pub fn bytes_per_diagonal(params: &CkksParameters, level: usize) -> u64 {
        let per_coefficient: u64 = params
            .chain()
            .iter()
            .take(level + 1)
            .map(|&q| if q < NARROW_PRIME { 4 } else { 8 })
            .sum();
        per_coefficient * params.degree() as u64
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

    /// The giant steps `(i / n1) n1` of the non-zero diagonals `i` (with 0 when present).
    pub fn giant_steps(&self) -> Vec<usize> {
        self.blocks.keys().map(|&j| j * self.n1).collect()
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

/// Coefficients per tile of [`Evaluator::mul_plain_sum`]: the accumulators of one tile stay in
/// the L1 cache while every term is added.
const TILE: usize = 256;

impl Evaluator {
    /// `Σ_k a_k ⊙ pt_k` in one pass over the residues, without an intermediate ciphertext per
    /// term: the inner sums of baby-step giant-step. For a prime below 2^31 the products are
    /// summed in 64 bits and reduced once every few dozen terms; larger primes take tfhe-ntt's
    /// modular multiply-accumulate. The ciphertexts must share level and size; each plaintext's
    /// level must be at least theirs and every product must have the same scale.
    pub fn mul_plain_sum(&self, terms: &[(&Ciphertext, &Plaintext)]) -> Result<Ciphertext> {
        self.sum_products(terms)
    }

    fn sum_products<P: PlainResidues>(&self, terms: &[(&Ciphertext, &P)]) -> Result<Ciphertext> {
        let Some((first, first_pt)) = terms.first() else {
            return Err(CkksError::InvalidShape {
                reason: "a sum of no products",
            });
        };
        let (level, size) = (first.level(), first.size());
        let scale = first.scale() * first_pt.scale();
        for (c, pt) in terms {
            CkksParameters::check_same(self.params(), c.params())?;
            CkksParameters::check_same(self.params(), pt.params())?;
            if c.level() != level || pt.level() < level {
                return Err(CkksError::LevelMismatch {
                    left: level,
                    right: if c.level() != level {
                        c.level()
                    } else {
                        pt.level()
                    },
                });
            }
            if c.size() != size {
                return Err(CkksError::InvalidCiphertextSize {
                    size: c.size(),
                    expected: size,
                });
            }
            if !scales_match(c.scale() * pt.scale(), scale) {
                return Err(CkksError::ScaleMismatch {
                    left: scale,
                    right: c.scale() * pt.scale(),
                });
            }
        }
        let n = self.params().degree();
        let per_limb: Vec<Vec<Vec<u64>>> = (0..=level)
            .into_par_iter()
            .map(|limb| {
                let m = &self.params().moduli[limb];
                let q = m.value;
                let mut outs: Vec<Vec<u64>> = (0..size).map(|_| take_buf(n)).collect();
                // One dispatch per limb; `inline(always)`: the body must be compiled inside
                // pulp's target-feature function.
                simd(
                    #[inline(always)]
                    || {
                        let mut acc = vec![[0u64; TILE]; size];
                        for start in (0..n).step_by(TILE) {
                            let range = start..start + TILE;
                            acc.iter_mut().for_each(|a| *a = [0; TILE]);
                            if q >= NARROW_PRIME {
                                let mut wide = [0u64; TILE];
                                for (c, pt) in terms {
                                    let b: &[u64] = match pt.residues(limb) {
                                        Residues::Wide(b) => &b[range.clone()],
                                        Residues::Narrow(b) => {
                                            for (w, &r) in wide.iter_mut().zip(&b[range.clone()]) {
                                                *w = u64::from(r);
                                            }
                                            &wide
                                        }
                                    };
                                    for (acc, poly) in acc.iter_mut().zip(&c.polys) {
                                        let a = &poly.limbs[limb][range.clone()];
                                        m.plan.mul_accumulate(acc, a, b);
                                    }
                                }
                            } else {
                                // Products fit 62 bits (a vectorised 32 x 32 -> 64-bit multiply);
                                // terms summed between reductions keep acc < 2^62.
                                let inv_q = 1.0 / q as f64;
                                for chunk in terms.chunks(lazy_terms(q)) {
                                    for (c, pt) in chunk {
                                        for (acc, poly) in acc.iter_mut().zip(&c.polys) {
                                            let a = &poly.limbs[limb][range.clone()];
                                            match pt.residues(limb) {
                                                Residues::Narrow(b) => {
                                                    multiply_add(acc, a, &b[range.clone()]);
                                                }
                                                Residues::Wide(b) => {
                                                    multiply_add(acc, a, &b[range.clone()]);
                                                }
                                            }
                                        }
                                    }
                                    for acc in &mut acc {
                                        acc.iter_mut().for_each(|s| *s = reduce_any(*s, q, inv_q));
                                    }
                                }
                            }
                            for (out, acc) in outs.iter_mut().zip(&acc) {
                                out[range.clone()].copy_from_slice(acc);
                            }
                        }
                    },
                );
                outs
            })
            .collect();
        let mut polys: Vec<RnsPoly> = (0..size)
            .map(|_| RnsPoly {
                limbs: Vec::with_capacity(level + 1),
            })
            .collect();
        for limbs in per_limb {
            for (poly, limb) in polys.iter_mut().zip(limbs) {
                poly.limbs.push(limb);
            }
        }
        Ok(Ciphertext::from_parts(
            Arc::clone(self.params()),
            polys,
            level,
            scale,
        ))
    }

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
            let mut products = Vec::new();
            for (babies, lt) in terms {
                for (b, pt) in lt.blocks.get(&j).into_iter().flatten() {
                    products.push((babies.get(*b)?, pt));
                }
            }
            if products.is_empty() {
                continue;
            }
            let inner = self.sum_products(&products)?;
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

/// `acc += a ⊙ b` on residues below 2^31 (a vectorised 32 x 32 -> 64-bit multiply-add; the
/// caller bounds how many terms accumulate before a reduction).
#[inline(always)]
fn multiply_add<T: Copy + Into<u64>>(acc: &mut [u64; TILE], a: &[u64], b: &[T]) {
    for ((s, &x), &y) in acc.iter_mut().zip(a).zip(b) {
        *s += (x & 0xffff_ffff) * (y.into() & 0xffff_ffff);
    }
}
