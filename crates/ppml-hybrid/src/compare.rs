//! Secure comparison and the derivative of ReLU on additive shares over `Z_2^64`, after
//! CrypTFlow2 (Rathee et al., "CrypTFlow2: practical 2-party secure inference", CCS 2020,
//! section 4): the millionaires' problem `[a < b]` for the server's `a` and the client's `b`
//! on `l`-bit values is split into `ceil(l / 4)` leaves of `m = 4` bits; each leaf gives shares
//! of `lt_j = [a_j < b_j]` and `eq_j = [a_j = b_j]` by one 1-out-of-16 OT
//! ([`crate::ot::ot16`]), and a tree combines them by `lt = lt_hi ^ (eq_hi & lt_lo)`,
//! `eq = eq_hi & eq_lo` with AND gates on OT-made bit triples ([`crate::boolean`]; CrypTFlow2
//! makes those triples from the leaf OTs, which saves more).
//!
//! `DReLU` reads `x` as a [`DRELU_BITS`]-bit two's-complement number (`x mod 2^k`, `k =
//! DRELU_BITS`), as CrypTFlow2 does for its `l`-bit rings: `DReLU(x) = 1 ^ MSB_k(x)` with
//! `MSB_k(x) = MSB_k(x_0) ^ MSB_k(x_1) ^ carry`, where `carry` is the carry out of adding the
//! low `k - 1` bits of the shares: `[2^(k-1) - 1 - x_0' < x_1']`, a millionaires' instance on
//! `(k - 1)`-bit values (section 4.1 of the paper). Reducing the shares modulo `2^k` is local;
//! the result is exact whenever `|x| < 2^(k-1)`.

use crate::boolean::AND_OTS;
use crate::error::Result;
use crate::fixed::FRAC_BITS;
use crate::ot::ot16::OT16_ROTS;
use crate::ot::OtCount;
use crate::party::Party;
use crate::prg::Prg;

/// Bits per leaf (CrypTFlow2's `m`).
const LEAF_BITS: usize = 4;

/// Bits of headroom above the fixed-point scale within which DReLU is exact: values of
/// magnitude below `2^23` (about 8.4 million), as `mpc2`/`mpc3`'s FSS comparison.
const HEADROOM_BITS: u32 = 23;

/// The width `k` DReLU reads its input at: exact for `|x| < 2^(k-1)` as ring integers, i.e.
/// fixed-point values below `2^HEADROOM_BITS` in magnitude.
pub const DRELU_BITS: u32 = FRAC_BITS + HEADROOM_BITS + 1;

/// Leaves of a millionaires' instance on `bits`-bit values.
const fn leaves(bits: u32) -> usize {
    (bits as usize).div_ceil(LEAF_BITS)
}

/// Random OTs one millionaires' instance on `bits`-bit values (at least 5) consumes: one
/// 1-of-16 OT per leaf and, for the tree's `L - 1` nodes, two AND gates each but one at the root.
pub const fn cmp_ots(bits: u32) -> OtCount {
    let l = leaves(bits);
    OtCount {
        a: (2 * l - 3) * AND_OTS.a + l * OT16_ROTS,
        b: 0,
    }
}

/// Random OTs one DReLU consumes.
pub const DRELU_OTS: OtCount = cmp_ots(DRELU_BITS - 1);

impl Party {
    /// Leaf shares `(lt, eq)` laid out `[comparison][leaf]`: one 1-out-of-16 OT per leaf, the
    /// server sending the table `v -> ([a_j < v] ^ r, [a_j = v] ^ r')` and keeping `(r, r')`.
    fn leaves(&mut self, values: &[u64], leaves: usize) -> Result<(Vec<bool>, Vec<bool>)> {
        let digits = |v: u64| (0..leaves).map(move |j| ((v >> (LEAF_BITS * j)) & 15) as u8);
        let n = values.len() * leaves;
        if self.is_server() {
            let r = Prg::from_os().bits(2 * n);
            let tables: Vec<[u8; 16]> = values
                .iter()
                .flat_map(|&v| digits(v))
                .enumerate()
                .map(|(k, a)| {
                    let mask = u8::from(r[2 * k]) | (u8::from(r[2 * k + 1]) << 1);
                    let mut t = [0u8; 16];
                    for (v, e) in t.iter_mut().enumerate() {
                        let v = v as u8;
                        *e = (u8::from(a < v) | (u8::from(a == v) << 1)) ^ mask;
                    }
                    t
                })
                .collect();
            let req = self.link.recv_exact("comparison request", n.div_ceil(16))?;
            let resp = self.ot.respond16(&req, &tables)?;
            self.link.send(resp)?;
            Ok((
                r.iter().step_by(2).copied().collect(),
                r.iter().skip(1).step_by(2).copied().collect(),
            ))
        } else {
            let wanted: Vec<u8> = values.iter().flat_map(|&v| digits(v)).collect();
            let (req, state) = self.ot.request16(&wanted)?;
            self.link.send(req)?;
            let resp = self.link.recv_exact("comparison response", n.div_ceil(2))?;
            let m = state.finish(&resp)?;
            Ok((
                m.iter().map(|x| x & 1 == 1).collect(),
                m.iter().map(|x| x & 2 == 2).collect(),
            ))
        }
    }

    /// Shares of `[a_k < b_k]` where the server inputs `values = a` and the client `values = b`,
    /// both below `2^bits` (`5 <= bits <= 64`).
    pub fn millionaires(&mut self, values: &[u64], bits: u32) -> Result<Vec<bool>> {
        let n = values.len();
        let mut width = leaves(bits);
        let (mut lt, mut eq) = self.leaves(values, width)?;
        // Level by level, leaves `2j` (low) and `2j + 1` (high) combine into node `j`; with an
        // odd count the top leaf passes up unchanged. The root needs no `eq`.
        while width > 1 {
            let (pairs, odd) = (width / 2, width % 2 == 1);
            let root = width == 2;
            let (mut ehi, mut llo, mut lhi, mut elo) = (
                Vec::with_capacity(n * pairs),
                Vec::with_capacity(n * pairs),
                Vec::with_capacity(n * pairs),
                Vec::with_capacity(n * pairs),
            );
            for k in 0..n {
                for j in 0..pairs {
                    let (lo, hi) = (k * width + 2 * j, k * width + 2 * j + 1);
                    ehi.push(eq[hi]);
                    llo.push(lt[lo]);
                    lhi.push(lt[hi]);
                    elo.push(eq[lo]);
                }
            }
            let m = ehi.len();
            let (mut xs, mut ys) = (ehi.clone(), llo);
            if !root {
                xs.extend_from_slice(&ehi);
                ys.extend_from_slice(&elo);
            }
            let z = self.and(&xs, &ys)?;
            let next = pairs + usize::from(odd);
            let (mut lt_next, mut eq_next) = (Vec::with_capacity(n * next), Vec::new());
            for k in 0..n {
                let r = k * pairs..(k + 1) * pairs;
                lt_next.extend(lhi[r.clone()].iter().zip(&z[r.clone()]).map(|(a, b)| a ^ b));
                if !root {
                    eq_next.extend_from_slice(&z[m + r.start..m + r.end]);
                }
                if odd {
                    lt_next.push(lt[k * width + width - 1]);
                    eq_next.push(eq[k * width + width - 1]);
                }
            }
            (lt, eq) = (lt_next, eq_next);
            width = next;
        }
        Ok(lt)
    }

    /// Shares (XOR) of `[x >= 0]` for each shared `x` read as a [`DRELU_BITS`]-bit
    /// two's-complement number (exact while `|x| < 2^(DRELU_BITS - 1)`).
    pub fn drelu(&mut self, x: &[u64]) -> Result<Vec<bool>> {
        let top = DRELU_BITS - 1;
        let low = (1u64 << top) - 1;
        let server = self.is_server();
        let inputs: Vec<u64> = x
            .iter()
            .map(|&v| if server { low - (v & low) } else { v & low })
            .collect();
        let carry = self.millionaires(&inputs, top)?;
        Ok(x.iter()
            .zip(carry)
            .map(|(&v, c)| ((v >> top) & 1 == 1) ^ c ^ server)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::testing::run2;
    use crate::prg::Prg;

    /// Checks the millionaires' protocol on `bits`-bit values: random pairs, equal values,
    /// neighbours and the extremes of the width.
    fn millionaires_at(bits: u32, seed: u128) -> Result<()> {
        let top = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let mut rng = Prg::new(seed);
        let mut a: Vec<u64> = rng.u64s(100).iter().map(|v| v & top).collect();
        let mut b: Vec<u64> = rng.u64s(100).iter().map(|v| v & top).collect();
        let m = top;
        for (x, y) in [
            (5, 5),
            (5, 6),
            (6, 5),
            (0, 0),
            (0, 1),
            (1, 0),
            (m, m),
            (m, m - 1),
            (m - 1, m),
            (0, m),
            (m, 0),
        ] {
            a.push(x);
            b.push(y);
        }
        let same = b[..20].to_vec();
        a.extend_from_slice(&same);
        b.extend_from_slice(&same);
        let n = a.len();
        let (aa, bb) = (a.clone(), b.clone());
        let (s, c) = run2(
            cmp_ots(bits) * n,
            move |p| p.millionaires(&aa, bits),
            move |p| p.millionaires(&bb, bits),
        )?;
        for k in 0..n {
            assert_eq!(
                s[k] ^ c[k],
                a[k] < b[k],
                "{} < {} on {bits} bits",
                a[k],
                b[k]
            );
        }
        Ok(())
    }

    #[test]
    fn millionaires_is_exact_on_edges_and_random_values() -> Result<()> {
        // 16 leaves (a full tree), 10 and 3 leaves (odd levels: the top leaf passes up), and
        // the width DReLU uses; `run2` also checks that each uses up exactly its OTs.
        millionaires_at(63, 5)?;
        millionaires_at(39, 6)?;
        millionaires_at(9, 7)?;
        millionaires_at(DRELU_BITS - 1, 8)
    }

    #[test]
    fn drelu_is_exact_within_its_width_for_shares_over_the_whole_ring() -> Result<()> {
        let top = DRELU_BITS - 1;
        let big = (1i64 << top) - 1;
        let mut rng = Prg::new(9);
        let mut x: Vec<i64> = vec![0, 1, -1, 2, -2, big, -big, -big - 1, 1 << 16, -(1 << 16)];
        x.extend(
            rng.u64s(200)
                .iter()
                .map(|&v| (v as i64) >> (64 - DRELU_BITS)),
        );
        let x: Vec<u64> = x.iter().map(|&v| v as u64).collect();
        let n = x.len();
        let mut x0 = rng.u64s(n);
        // Shares where one side is zero or all ones.
        x0[0] = 0;
        x0[1] = u64::MAX;
        let x1: Vec<u64> = x.iter().zip(&x0).map(|(x, r)| x.wrapping_sub(*r)).collect();
        let (s, c) = run2(DRELU_OTS * n, move |p| p.drelu(&x0), move |p| p.drelu(&x1))?;
        for k in 0..n {
            assert_eq!(s[k] ^ c[k], (x[k] as i64) >= 0, "x = {}", x[k] as i64);
        }
        Ok(())
    }
}
