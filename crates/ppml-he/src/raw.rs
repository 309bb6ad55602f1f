//! A fused plaintext-scalar multiply-accumulate on ciphertext residues.
//!
//! ppml-ckks offers `mul_scalar` and `add`, each of which copies a whole ciphertext; a
//! throughput-mode affine stage is tens of thousands of them and memory-bound. This module
//! computes `Σ_j w_j · ct_j + b` for all rows of a stage in one cache-tiled pass over the residues
//! (scalar multiplication and addition act coefficient-wise, so the NTT form does not matter),
//! with 128-bit accumulators and one reduction per coefficient.
//!
//! ppml-ckks does not expose residues, so they travel through its documented serialised format
//! (header, then each limb bit-packed to its prime's width), and results come back through
//! `Ciphertext::from_bytes`, which re-validates everything. If the format is not the one this
//! module understands, [`RawCt::from_ciphertext`] returns `None` and the caller falls back to the
//! evaluator's operations.

use std::sync::Arc;

use ppml_ckks::{Ciphertext, CkksParameters};
use rayon::prelude::*;

use crate::error::Result;

const HEADER: usize = 14; // magic 4, version 1, kind 1, parameter fingerprint 8
const VERSION: u8 = 1;
const KIND_CIPHERTEXT: u8 = 2;
const TILE: usize = 256;

/// A 2-polynomial ciphertext's residues, `[poly][limb][coefficient]` flattened.
#[derive(Debug, Clone)]
pub struct RawCt {
    prefix: [u8; HEADER],
    level: usize,
    scale: f64,
    data: Vec<u64>,
}

fn bit_width(q: u64) -> u32 {
    64 - q.leading_zeros()
}

fn unpack(bytes: &[u8], n: usize, bits: u32, out: &mut Vec<u64>) -> Option<usize> {
    if bits > 56 {
        return None;
    }
    let len = (n * bits as usize).div_ceil(8);
    let bytes = bytes.get(..len)?;
    let mask = (1u64 << bits) - 1;
    for i in 0..n {
        let bit = i * bits as usize;
        let (byte, shift) = (bit / 8, bit % 8);
        let word = match bytes.get(byte..byte + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().ok()?),
            None => {
                let mut w = [0u8; 8];
                let tail = bytes.get(byte..)?;
                w[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(w)
            }
        };
        out.push((word >> shift) & mask);
    }
    Some(len)
}

fn pack(vals: &[u64], bits: u32, out: &mut Vec<u8>) {
    let (mut acc, mut n) = (0u128, 0u32);
    for &v in vals {
        acc |= u128::from(v) << n;
        n += bits;
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    }
    if n > 0 {
        out.push(acc as u8);
    }
}

impl RawCt {
    /// The residues of `ct` (which must not carry a seed-compressed mask: pass a ciphertext that
    /// came out of an operation), or `None` if the serialised format is not understood.
    pub fn from_ciphertext(ct: &Ciphertext) -> Option<Self> {
        Self::from_bytes(ct, &ct.to_bytes())
    }

    fn from_bytes(ct: &Ciphertext, bytes: &[u8]) -> Option<Self> {
        let p = ct.params();
        let prefix: [u8; HEADER] = bytes.get(..HEADER)?.try_into().ok()?;
        if &prefix[..4] != b"PPCK" || prefix[4] != VERSION || prefix[5] != KIND_CIPHERTEXT {
            return None;
        }
        let level = usize::from(*bytes.get(HEADER)?);
        let size = *bytes.get(HEADER + 1)?;
        let scale = f64::from_bits(u64::from_le_bytes(
            bytes.get(HEADER + 2..HEADER + 10)?.try_into().ok()?,
        ));
        let seeded = *bytes.get(HEADER + 10)?;
        if level != ct.level() || size != 2 || seeded != 0 {
            return None;
        }
        let n = p.degree();
        let moduli = p.chain().get(..=level)?;
        let mut data = Vec::with_capacity(2 * moduli.len() * n);
        let mut pos = HEADER + 11;
        for _ in 0..2 {
            for &q in moduli {
                pos += unpack(bytes.get(pos..)?, n, bit_width(q), &mut data)?;
            }
        }
        (pos == bytes.len()).then_some(Self {
            prefix,
            level,
            scale,
            data,
        })
    }

    fn into_ciphertext(self, params: &Arc<CkksParameters>) -> Result<Ciphertext> {
        let n = params.degree();
        let mut out = Vec::with_capacity(self.data.len() * 5 + 32);
        out.extend_from_slice(&self.prefix);
        out.push(self.level as u8);
        out.push(2);
        out.extend_from_slice(&self.scale.to_bits().to_le_bytes());
        out.push(0);
        let moduli = &params.chain()[..=self.level];
        for (i, limb) in self.data.chunks(n).enumerate() {
            pack(limb, bit_width(moduli[i % moduli.len()]), &mut out);
        }
        Ok(Ciphertext::from_bytes(params, &out)?)
    }
}

/// The rows of one tile for a prime below 2^32: residues and weights fit 32 bits, so products
/// fit 64 and the loop vectorises (32 x 32 -> 64-bit multiplies); accumulators are reduced every
/// `group` terms so they never overflow.
#[allow(clippy::too_many_arguments, reason = "one tile's coordinates")]
fn small_prime_rows(
    weights: &[Vec<(usize, Vec<u64>)>],
    inputs: &[Option<RawCt>],
    biases: &[Vec<u64>],
    limb: usize,
    poly: usize,
    q: u64,
    off: usize,
    len: usize,
    out: &mut Vec<u64>,
) {
    let group = ((u64::MAX - q) / ((q - 1) * (q - 1)).max(1)).max(1) as usize;
    let mut acc = vec![0u64; len];
    for (r, row) in weights.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = 0);
        for chunk in row.chunks(group) {
            for (j, w) in chunk {
                if let Some(x) = &inputs[*j] {
                    let w = w[limb] & 0xffff_ffff;
                    for (a, &v) in acc.iter_mut().zip(&x.data[off..off + len]) {
                        *a += (v & 0xffff_ffff) * w;
                    }
                }
            }
            if chunk.len() == group {
                acc.iter_mut().for_each(|a| *a %= q);
            }
        }
        let b = if poly == 0 { biases[r][limb] } else { 0 };
        out.extend(acc.iter().map(|&a| (a % q + b) % q));
    }
}

/// `y_r = Σ_j rows[r][j].1 · x_j + bias[r]` on ciphertexts at one level and scale `s`: each
/// weight is encoded as the integer `round(w · q_level)`, so the outputs have scale `s · q_level`
/// and return to `s` after the caller's rescale. `None` when a row is too long for the 128-bit
/// accumulators or an input is missing.
pub fn affine(
    params: &Arc<CkksParameters>,
    inputs: &[Option<RawCt>],
    rows: &[Vec<(u32, f64)>],
    bias: &[f64],
) -> Option<Result<Vec<Ciphertext>>> {
    let first = inputs.iter().flatten().next()?;
    let (level, scale, prefix) = (first.level, first.scale, first.prefix);
    if inputs
        .iter()
        .flatten()
        .any(|x| x.level != level || x.scale.to_bits() != scale.to_bits())
    {
        return None;
    }
    let n = params.degree();
    let moduli: Vec<u64> = params.chain().get(..=level)?.to_vec();
    let limbs = moduli.len();
    let qmax = *moduli.iter().max()? as f64;
    let longest = rows.iter().map(Vec::len).max().unwrap_or(0).max(1) as f64;
    if longest * qmax * qmax >= 2f64.powi(127) {
        return None;
    }
    let qw = moduli[level] as f64;
    let residue = |v: f64, q: u64| -> Option<u64> {
        let r = v.round();
        if !r.is_finite() || r.abs() >= 2f64.powi(120) {
            return None;
        }
        Some((r as i128).rem_euclid(i128::from(q)) as u64)
    };
    // weights[r] = [(j, [w mod q_0, ..., w mod q_level])]
    let mut weights: Vec<Vec<(usize, Vec<u64>)>> = Vec::with_capacity(rows.len());
    for row in rows {
        let mut out = Vec::with_capacity(row.len());
        for &(j, w) in row {
            inputs.get(j as usize)?.as_ref()?;
            out.push((
                j as usize,
                moduli
                    .iter()
                    .map(|&q| residue(w * qw, q))
                    .collect::<Option<Vec<_>>>()?,
            ));
        }
        weights.push(out);
    }
    let biases: Vec<Vec<u64>> = bias
        .iter()
        .map(|&b| {
            moduli
                .iter()
                .map(|&q| residue(b * scale * qw, q))
                .collect::<Option<Vec<_>>>()
        })
        .collect::<Option<_>>()?;
    let tiles_per_limb = n.div_ceil(TILE);
    let tiles: Vec<Vec<u64>> = (0..2 * limbs * tiles_per_limb)
        .into_par_iter()
        .map(|t| {
            let (pl, tile) = (t / tiles_per_limb, t % tiles_per_limb);
            let (poly, limb) = (pl / limbs, pl % limbs);
            let q = moduli[limb];
            let off = pl * n + tile * TILE;
            let len = TILE.min(n - tile * TILE);
            let mut out = Vec::with_capacity(rows.len() * len);
            if q < 1 << 32 {
                small_prime_rows(&weights, inputs, &biases, limb, poly, q, off, len, &mut out);
            } else {
                let mut acc = vec![0u128; len];
                for (r, row) in weights.iter().enumerate() {
                    acc.iter_mut().for_each(|a| *a = 0);
                    for (j, w) in row {
                        if let Some(x) = &inputs[*j] {
                            let w = u128::from(w[limb]);
                            for (a, &v) in acc.iter_mut().zip(&x.data[off..off + len]) {
                                *a += u128::from(v) * w;
                            }
                        }
                    }
                    let b = if poly == 0 { biases[r][limb] } else { 0 };
                    let q128 = u128::from(q);
                    out.extend(acc.iter().map(|&a| ((a + u128::from(b)) % q128) as u64));
                }
            }
            out
        })
        .collect();
    let mut outs: Vec<Vec<u64>> = vec![vec![0u64; 2 * limbs * n]; rows.len()];
    for (t, tile) in tiles.iter().enumerate() {
        let (pl, ti) = (t / tiles_per_limb, t % tiles_per_limb);
        let off = pl * n + ti * TILE;
        let len = TILE.min(n - ti * TILE);
        for (r, o) in outs.iter_mut().enumerate() {
            o[off..off + len].copy_from_slice(&tile[r * len..(r + 1) * len]);
        }
    }
    let out_scale = scale * qw;
    Some(
        outs.into_par_iter()
            .map(|data| {
                RawCt {
                    prefix,
                    level,
                    scale: out_scale,
                    data,
                }
                .into_ciphertext(params)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_ckks::{Encoder, Evaluator, SecretKey};

    #[test]
    fn round_trip_and_affine() {
        let params = crate::params::choose(&crate::params::PlannerGoals::new(2)).expect("params");
        let sk = SecretKey::generate(&params).expect("sk");
        let enc = Encoder::new(&params);
        let ev = Evaluator::new(&params);
        let l = params.max_level();
        let cts: Vec<Ciphertext> = (0..3)
            .map(|i| {
                let pt = enc
                    .encode(&[i as f64 + 0.5, -1.0], l, params.scale())
                    .expect("encode");
                ev.mul_integer(&sk.encrypt(&pt).expect("encrypt"), 1)
                    .expect("copy")
            })
            .collect();
        let raw: Vec<Option<RawCt>> = cts.iter().map(RawCt::from_ciphertext).collect();
        assert!(raw.iter().all(Option::is_some), "format not understood");
        let rows = vec![vec![(0, 1.0), (2, -0.25)], vec![(1, 2.0)], vec![]];
        let out = affine(&params, &raw, &rows, &[0.0, 1.0, 3.0])
            .expect("kernel")
            .expect("ok");
        let want = [
            [0.5 - 0.625, -1.0 + 0.25],
            [3.0 + 1.0, -2.0 + 1.0],
            [3.0, 3.0],
        ];
        for (c, w) in out.iter().zip(want) {
            let v = enc
                .decode(&sk.decrypt(&ev.rescale(c).expect("rescale")).expect("dec"))
                .expect("decode");
            assert!(
                (v[0] - w[0]).abs() < 1e-4 && (v[1] - w[1]).abs() < 1e-4,
                "{:?} vs {w:?}",
                &v[..2]
            );
        }
    }
}
