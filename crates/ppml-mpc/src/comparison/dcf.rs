//! Distributed comparison functions (DCF): function secret sharing of `x -> beta * [x < alpha]`.
//!
//! The scheme of Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar and Rathee, "Function Secret
//! Sharing for Mixed-Mode and Fixed-Point Secure Computation" (Eurocrypt 2021, Figure 1), the
//! construction AriaNN uses for its one-round comparison. A dealer who knows `alpha` (an
//! `m`-bit domain point) and `beta` (here a pair of ring elements) produces two keys; each key
//! alone is pseudorandom and hides both, and for every public `x` the two parties' evaluations
//! add up (in `Z_2^64 x Z_2^64`) to `beta` if `x < alpha` and to zero otherwise.
//!
//! A key is a root seed (127 bits) per party and, shared by both parties, one correction word
//! per level (a seed, a pair of ring elements and two control bits) plus a final pair. Keys are
//! handled in batches, struct-of-arrays, so the PRG runs over many comparisons at once.
//!
//! The length-doubling PRG `G` is fixed-key AES-128 in Matyas-Meyer-Oseas mode (`H(y) =
//! AES_K(y) xor y`, a correlation-robust hash under the ideal-cipher assumption, as in
//! Google's DPF library and AriaNN): from a seed `s` with its low bit clear, side `d` (0 left,
//! 1 right) gives the next seed and control bit from `H_seed(s xor d)` (bit 0 is the control
//! bit, the other 127 bits the seed) and the level's payload from `H_value(s xor d)`. Both AES
//! keys are fixed public constants; all secrecy is in the seeds.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use rayon::prelude::*;

use crate::error::{MpcError, Result};

/// The payload group: a pair of ring elements.
pub type Pair = [u64; 2];

/// Keys per group of the encoding, and per parallel work item.
pub const GROUP: usize = 128;

type Block = Array<u8, aes::cipher::consts::U16>;

/// The length-doubling PRG: two fixed-key hashes and reusable block buffers.
struct Expander {
    seed: Aes128,
    value: Aes128,
    sb: Vec<Block>,
    vb: Vec<Block>,
}

/// The fixed keys of the seed and payload hashes: public constants (any fixed keys work, the
/// secrecy is in the seeds).
fn keys() -> (Aes128, Aes128) {
    (
        Aes128::new(&Array(*b"ppml dcf G seed\0")),
        Aes128::new(&Array(*b"ppml dcf G value")),
    )
}

impl Expander {
    fn new() -> Self {
        let (seed, value) = keys();
        Self {
            seed,
            value,
            sb: Vec::new(),
            vb: Vec::new(),
        }
    }

    /// `G(s)` restricted to side `d` for every input `s xor d`; afterwards [`Expander::seed`]
    /// and [`Expander::value`] read output `i`.
    fn expand(&mut self, inputs: impl Iterator<Item = u128>) {
        self.sb.clear();
        self.sb.extend(inputs.map(|y| Array(y.to_le_bytes())));
        self.vb.clone_from(&self.sb);
        self.seed.encrypt_blocks(&mut self.sb);
        self.value.encrypt_blocks(&mut self.vb);
    }

    /// Output `i`'s next seed (low bit clear) and control bit, given its input `y`
    /// (`H(y) = AES(y) xor y`).
    fn seed(&self, i: usize, y: u128) -> (u128, u64) {
        let b = u128::from_le_bytes(self.sb[i].0) ^ y;
        (b & !1, (b & 1) as u64)
    }

    /// Output `i`'s payload.
    fn value(&self, i: usize, y: u128) -> Pair {
        convert(u128::from_le_bytes(self.vb[i].0) ^ y)
    }
}

/// A 128-bit block as a pair of ring elements.
fn convert(v: u128) -> Pair {
    [v as u64, (v >> 64) as u64]
}

fn add(a: Pair, b: Pair) -> Pair {
    [a[0].wrapping_add(b[0]), a[1].wrapping_add(b[1])]
}

fn sub(a: Pair, b: Pair) -> Pair {
    [a[0].wrapping_sub(b[0]), a[1].wrapping_sub(b[1])]
}

/// `v` if `bit` is 0, `-v` if it is 1.
fn signed(bit: u64, v: Pair) -> Pair {
    if bit == 1 {
        [v[0].wrapping_neg(), v[1].wrapping_neg()]
    } else {
        v
    }
}

/// `v` if `bit` is 1, zero otherwise.
fn masked(bit: u64, v: Pair) -> Pair {
    let m = bit.wrapping_neg();
    [v[0] & m, v[1] & m]
}

/// The correction words of a batch of `n` DCF keys on an `m`-bit domain, identical in both
/// parties' keys, in their transport encoding. Keys come in groups of [`GROUP`] (the last group
/// may be shorter) so that generation and evaluation stream through memory; a group of `g`
/// keys holds, for each level (most significant bit first), four words per key (the seed
/// correction, low word first, and the payload correction) followed by `ceil(g / 32)` words of
/// control-bit corrections (key `j`'s left bit at bit `2j`, right bit at `2j + 1`), and after
/// the levels the final pair of each key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrectionWords {
    bits: u32,
    n: usize,
    words: Vec<u64>,
}

/// Where the parts of one group of `g` keys on `m` levels lie within the group.
#[derive(Clone, Copy)]
struct GroupLayout {
    m: usize,
    g: usize,
}

impl GroupLayout {
    fn level_len(self) -> usize {
        4 * self.g + self.g.div_ceil(32)
    }
    fn level(self, l: usize) -> usize {
        l * self.level_len()
    }
    fn controls(self, l: usize) -> usize {
        self.level(l) + 4 * self.g
    }
    fn last(self) -> usize {
        self.level(self.m)
    }
    fn len(self) -> usize {
        self.last() + 2 * self.g
    }
}

impl CorrectionWords {
    /// Words in the transport encoding of `n` keys on `bits` levels.
    pub fn encoded_len(bits: u32, n: usize) -> usize {
        let m = bits as usize;
        let full = GroupLayout { m, g: GROUP }.len() * (n / GROUP);
        full + GroupLayout { m, g: n % GROUP }.len()
    }

    /// The transport encoding, consumed.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }

    /// Decodes `n` keys on `bits` levels (at most 63); the length must be exact. Every word
    /// pattern is a valid key: a dealer can only make outputs wrong, which the semi-honest model
    /// excludes. (A seed correction's low bit, always clear from [`generate`], is ignored by
    /// [`evaluate`], so no pass over the keys is needed to check it.)
    pub fn from_words(bits: u32, n: usize, words: Vec<u64>) -> Result<Self> {
        if bits > 63 || words.len() != Self::encoded_len(bits, n) {
            return Err(MpcError::InvalidMaterial {
                what: "DCF correction words of the wrong length",
            });
        }
        Ok(Self { bits, n, words })
    }

    /// Each group's layout and words.
    fn groups(&self) -> impl Iterator<Item = (GroupLayout, &[u64])> {
        let m = self.bits as usize;
        let full = GroupLayout { m, g: GROUP }.len();
        self.words
            .chunks(full.max(1))
            .enumerate()
            .map(move |(c, w)| {
                let g = (self.n - c * GROUP).min(GROUP);
                (GroupLayout { m, g }, w)
            })
    }
}

/// Generates a batch of DCF keys: for key `j`, evaluations at `x` (a `bits`-bit number, at most
/// 63 bits) add up to `betas[j]` when `x < alphas[j]` and to zero otherwise. `roots` are the
/// two parties' root seeds, drawn at random (their low bits are ignored). Returns the shared
/// corrections; party `p`'s key is `roots.p` with them.
pub fn generate(
    bits: u32,
    alphas: &[u64],
    betas: &[Pair],
    roots: (&[u128], &[u128]),
) -> CorrectionWords {
    let n = alphas.len();
    let m = bits as usize;
    let mut words = vec![0u64; CorrectionWords::encoded_len(bits, n)];
    let full = GroupLayout { m, g: GROUP }.len();
    words
        .par_chunks_mut(full.max(1))
        .enumerate()
        .for_each(|(c, out)| {
            let r = c * GROUP..(c * GROUP + GROUP).min(n);
            generate_group(
                bits,
                &alphas[r.clone()],
                &betas[r.clone()],
                (&roots.0[r.clone()], &roots.1[r]),
                out,
            );
        });
    CorrectionWords { bits, n, words }
}

fn generate_group(
    bits: u32,
    alphas: &[u64],
    betas: &[Pair],
    roots: (&[u128], &[u128]),
    out: &mut [u64],
) {
    let n = alphas.len();
    let m = bits as usize;
    let lay = GroupLayout { m, g: n };
    let mut g = Expander::new();
    let mut s: [Vec<u128>; 2] = [
        roots.0.iter().map(|r| r & !1).collect(),
        roots.1.iter().map(|r| r & !1).collect(),
    ];
    let mut t: [Vec<u64>; 2] = [vec![0; n], vec![1; n]];
    let mut v_alpha = vec![[0u64; 2]; n];
    for (l, level) in (0..m).rev().enumerate() {
        // Inputs, in order: party 0 left, party 0 right, party 1 left, party 1 right.
        g.expand((0..4).flat_map(|pd| s[pd / 2].iter().map(move |s| s | (pd % 2) as u128)));
        let (words, controls) = out[lay.level(l)..lay.level(l + 1)].split_at_mut(4 * n);
        for j in 0..n {
            let a = (alphas[j] >> level) & 1;
            let (keep, lose) = (a as usize, 1 - a as usize);
            // Output index and input of party p, side d.
            let io = |p: usize, d: usize| ((2 * p + d) * n + j, s[p][j] | d as u128);
            let seed = |p: usize, d: usize| {
                let (i, y) = io(p, d);
                g.seed(i, y)
            };
            let value = |p: usize, d: usize| {
                let (i, y) = io(p, d);
                g.value(i, y)
            };
            let sign = t[1][j];
            let s_cw = seed(0, lose).0 ^ seed(1, lose).0;
            let mut v_cw = signed(sign, sub(sub(value(1, lose), value(0, lose)), v_alpha[j]));
            if a == 1 {
                v_cw = add(v_cw, signed(sign, betas[j]));
            }
            v_alpha[j] = add(
                sub(v_alpha[j], value(1, keep)),
                add(value(0, keep), signed(sign, v_cw)),
            );
            let t_cw = [
                seed(0, 0).1 ^ seed(1, 0).1 ^ a ^ 1,
                seed(0, 1).1 ^ seed(1, 1).1 ^ a,
            ];
            let kept = [seed(0, keep), seed(1, keep)];
            for (p, (sk, tk)) in kept.into_iter().enumerate() {
                let tp = t[p][j];
                s[p][j] = sk ^ (s_cw & u128::from(tp).wrapping_neg());
                t[p][j] = tk ^ (tp & t_cw[keep]);
            }
            words[4 * j..4 * j + 4].copy_from_slice(&[
                s_cw as u64,
                (s_cw >> 64) as u64,
                v_cw[0],
                v_cw[1],
            ]);
            controls[j / 32] |= (t_cw[0] | (t_cw[1] << 1)) << (2 * j % 64);
        }
    }
    let last = &mut out[lay.last()..lay.len()];
    for j in 0..n {
        let diff = sub(sub(convert(s[1][j]), convert(s[0][j])), v_alpha[j]);
        last[2 * j..2 * j + 2].copy_from_slice(&signed(t[1][j], diff));
    }
}

/// Party `party`'s (0 or 1) share of every key's function at `xs[j]` (only the low `bits` bits
/// of each point are read), given its root seeds and the shared corrections.
pub fn evaluate(party: u8, roots: &[u128], cw: &CorrectionWords, xs: &[u64]) -> Result<Vec<Pair>> {
    let n = cw.n;
    if roots.len() != n || xs.len() != n {
        return Err(MpcError::InvalidMaterial {
            what: "DCF batch and evaluation points of different sizes",
        });
    }
    let mut out = vec![[0u64; 2]; n];
    let groups: Vec<_> = cw.groups().collect();
    out.par_chunks_mut(GROUP)
        .zip(groups.into_par_iter())
        .enumerate()
        .for_each(|(c, (out, (lay, words)))| {
            let r = c * GROUP..(c * GROUP + out.len());
            evaluate_group(party, lay, words, &roots[r.clone()], &xs[r], out);
        });
    Ok(out)
}

fn evaluate_group(
    party: u8,
    lay: GroupLayout,
    words: &[u64],
    roots: &[u128],
    xs: &[u64],
    v: &mut [Pair],
) {
    let g = xs.len();
    let (seed_key, value_key) = keys();
    let mut s: Vec<u128> = roots.iter().map(|r| r & !1).collect();
    let mut t = vec![u64::from(party); g];
    let (mut sb, mut vb) = (vec![Block::default(); g], vec![Block::default(); g]);
    // Party 1's share is the negation of what it accumulates: one negation at the end.
    for (l, level) in (0..lay.m as u32).rev().enumerate() {
        for ((b, s), x) in sb.iter_mut().zip(&s).zip(xs) {
            *b = Array((s | u128::from((x >> level) & 1)).to_le_bytes());
        }
        vb.copy_from_slice(&sb);
        seed_key.encrypt_blocks(&mut sb);
        value_key.encrypt_blocks(&mut vb);
        let level_words = &words[lay.level(l)..lay.controls(l)];
        let controls = &words[lay.controls(l)..lay.level(l + 1)];
        for (j, cwj) in level_words.chunks_exact(4).enumerate() {
            let d = (xs[j] >> level) & 1;
            let y = s[j] | u128::from(d);
            let hs = u128::from_le_bytes(sb[j].0) ^ y;
            let hv = u128::from_le_bytes(vb[j].0) ^ y;
            let keep = t[j].wrapping_neg();
            v[j][0] = v[j][0].wrapping_add(hv as u64).wrapping_add(cwj[2] & keep);
            v[j][1] = v[j][1]
                .wrapping_add((hv >> 64) as u64)
                .wrapping_add(cwj[3] & keep);
            let s_cw = (u128::from(cwj[0] & keep) | (u128::from(cwj[1] & keep) << 64)) & !1;
            s[j] = (hs & !1) ^ s_cw;
            let t_cw = (controls[j / 32] >> (2 * (j % 32) + d as usize)) & 1;
            t[j] = (hs as u64 & 1) ^ (t[j] & t_cw);
        }
    }
    let last = &words[lay.last()..lay.len()];
    for (j, p) in last.chunks_exact(2).enumerate() {
        v[j] = add(v[j], add(convert(s[j]), masked(t[j], [p[0], p[1]])));
        if party == 1 {
            v[j] = [v[j][0].wrapping_neg(), v[j][1].wrapping_neg()];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::Prg;

    fn roots(prg: &mut Prg, n: usize) -> Vec<u128> {
        prg.u64s(2 * n)
            .chunks_exact(2)
            .map(|p| u128::from(p[0]) | (u128::from(p[1]) << 64))
            .collect()
    }

    /// Generates keys for `alphas`/`betas`, evaluates both shares at `xs` and reconstructs.
    fn reconstruct(bits: u32, alphas: &[u64], betas: &[Pair], xs: &[u64]) -> Vec<Pair> {
        let mut prg = Prg::from_os();
        let (r0, r1) = (roots(&mut prg, alphas.len()), roots(&mut prg, alphas.len()));
        let cw = generate(bits, alphas, betas, (&r0, &r1));
        let cw = CorrectionWords::from_words(bits, alphas.len(), cw.into_words()).expect("decode");
        let y0 = evaluate(0, &r0, &cw, xs).expect("eval 0");
        let y1 = evaluate(1, &r1, &cw, xs).expect("eval 1");
        y0.into_iter().zip(y1).map(|(a, b)| add(a, b)).collect()
    }

    #[test]
    fn every_point_of_a_small_domain() {
        // All (alpha, x) pairs on a 5-bit domain, in one batch.
        let bits = 5;
        let (mut alphas, mut xs, mut betas) = (Vec::new(), Vec::new(), Vec::new());
        for a in 0..32u64 {
            for x in 0..32u64 {
                alphas.push(a);
                xs.push(x);
                betas.push([a * 1000 + x + 1, u64::MAX - a]);
            }
        }
        let y = reconstruct(bits, &alphas, &betas, &xs);
        for j in 0..alphas.len() {
            let want = if xs[j] < alphas[j] { betas[j] } else { [0, 0] };
            assert_eq!(y[j], want, "alpha {} x {}", alphas[j], xs[j]);
        }
    }

    #[test]
    fn edges_of_a_wide_domain_and_batches_over_a_chunk() {
        let bits = 63;
        let top = (1u64 << 63) - 1;
        let mut prg = Prg::from_os();
        let n = GROUP + 37;
        let alphas: Vec<u64> = prg.u64s(n).iter().map(|a| a & top).collect();
        let betas: Vec<Pair> = prg.u64s(n).iter().map(|b| [*b, b ^ 7]).collect();
        // x = alpha - 1, alpha, alpha + 1, 0, top and random points in turn.
        let rand = prg.u64s(n);
        let xs: Vec<u64> = (0..n)
            .map(|j| match j % 6 {
                0 => alphas[j].wrapping_sub(1) & top,
                1 => alphas[j],
                2 => (alphas[j] + 1) & top,
                3 => 0,
                4 => top,
                _ => rand[j] & top,
            })
            .collect();
        let y = reconstruct(bits, &alphas, &betas, &xs);
        for j in 0..n {
            let want = if xs[j] < alphas[j] { betas[j] } else { [0, 0] };
            assert_eq!(y[j], want, "alpha {} x {}", alphas[j], xs[j]);
        }
    }

    #[test]
    fn two_keys_of_one_function_give_different_shares_and_corrections() {
        // That a single key hides alpha and beta is the scheme's security proof (Boyle et al.
        // 2021); this checks what a reused root would break first: two keys of the same
        // function (same alpha and beta) from fresh roots give different shares at a point and
        // differ in their first level's and their final correction words.
        let bits = 16;
        let mut prg = Prg::from_os();
        let (r0, r1) = (roots(&mut prg, 2), roots(&mut prg, 2));
        let cw = generate(bits, &[100, 100], &[[1, 1], [1, 1]], (&r0, &r1));
        let y = evaluate(0, &r0, &cw, &[5, 5]).expect("eval");
        assert_ne!(y[0], y[1]);
        // Level 0's words of the two keys, then their final pairs.
        let w = &cw.words;
        assert!((0..4).all(|i| w[i] != w[4 + i]));
        let last = w.len() - 4;
        assert_ne!(w[last..last + 2], w[last + 2..]);
    }

    #[test]
    fn corrections_of_the_wrong_length_are_refused_and_any_words_evaluate() {
        let len = CorrectionWords::encoded_len(8, 3);
        assert!(CorrectionWords::from_words(8, 3, vec![0; len - 1]).is_err());
        assert!(CorrectionWords::from_words(8, 3, vec![0; len + 1]).is_err());
        assert!(CorrectionWords::from_words(64, 0, Vec::new()).is_err());
        // A seed correction's low bit is ignored: setting it changes no output.
        let mut prg = Prg::from_os();
        let (alphas, xs) = ([7u64, 200, 31], [9u64, 100, 31]);
        let r0 = roots(&mut prg, 3);
        let r1 = roots(&mut prg, 3);
        let cw = generate(8, &alphas, &[[1, 2], [3, 4], [5, 6]], (&r0, &r1));
        let mut flipped = cw.clone().into_words();
        for l in 0..8 {
            let lay = GroupLayout { m: 8, g: 3 };
            for j in 0..3 {
                flipped[lay.level(l) + 4 * j] |= 1;
            }
        }
        let flipped = CorrectionWords::from_words(8, 3, flipped).expect("any words decode");
        for party in [0, 1] {
            let r = if party == 0 { &r0 } else { &r1 };
            assert_eq!(
                evaluate(party, r, &cw, &xs).expect("eval"),
                evaluate(party, r, &flipped, &xs).expect("eval")
            );
        }
    }
}
