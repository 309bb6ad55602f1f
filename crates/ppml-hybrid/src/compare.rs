//! Secure comparison and the derivative of ReLU on additive shares over `Z_2^64`, after
//! CrypTFlow2 (Rathee et al., "CrypTFlow2: practical 2-party secure inference", CCS 2020,
//! section 4): the millionaires' problem `[a < b]` for the server's `a` and the client's `b`
//! is split into 16 leaves of `m = 4` bits; each leaf gives shares of `lt_j = [a_j < b_j]` and
//! `eq_j = [a_j = b_j]` by one 1-out-of-16 OT ([`crate::ot::ot16`]), and a tree combines them by
//! `lt = lt_hi ^ (eq_hi & lt_lo)`, `eq = eq_hi & eq_lo` with AND gates on OT-made bit triples
//! ([`crate::boolean`]; CrypTFlow2 makes those triples from the leaf OTs, which saves more).
//!
//! `DReLU(x) = 1 ^ MSB(x)` with `MSB(x) = MSB(x_0) ^ MSB(x_1) ^ carry`, where `carry` is the carry
//! out of adding the low 63 bits of the shares: `[2^63 - 1 - x_0' < x_1']`, a millionaires'
//! instance on 63-bit values (section 4.1 of the paper).

use crate::boolean::AND_OTS;
use crate::error::Result;
use crate::ot::ot16::OT16_ROTS;
use crate::ot::OtCount;
use crate::party::Party;
use crate::prg::Prg;

/// Bits of a compared value (the top one is always 0 here: 63-bit values).
const BITS: usize = 64;
/// Bits per leaf (CrypTFlow2's `m`).
const LEAF_BITS: usize = 4;
/// Leaves per comparison.
const LEAVES: usize = BITS / LEAF_BITS;
/// AND gates of one comparison's tree: two per inner node, one at the root.
const CMP_ANDS: usize = 2 * (LEAVES - 2) + 1;

/// Random OTs one comparison consumes.
pub const CMP_OTS: OtCount = OtCount {
    a: CMP_ANDS * AND_OTS.a + LEAVES * OT16_ROTS,
    b: 0,
};

/// Random OTs one DReLU consumes.
pub const DRELU_OTS: OtCount = CMP_OTS;

impl Party {
    /// Leaf shares `(lt, eq)` laid out `[comparison][leaf]`: one 1-out-of-16 OT per leaf, the
    /// server sending the table `v -> ([a_j < v] ^ r, [a_j = v] ^ r')` and keeping `(r, r')`.
    fn leaves(&mut self, values: &[u64]) -> Result<(Vec<bool>, Vec<bool>)> {
        let digits = |v: u64| (0..LEAVES).map(move |j| ((v >> (LEAF_BITS * j)) & 15) as u8);
        let n = values.len() * LEAVES;
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

    /// Shares of `[a_k < b_k]` where the server inputs `values = a` and the client `values = b`.
    pub fn millionaires(&mut self, values: &[u64]) -> Result<Vec<bool>> {
        let n = values.len();
        let (mut lt, mut eq) = self.leaves(values)?;
        let mut width = LEAVES;
        while width > 1 {
            let half = width / 2;
            let last = half == 1;
            let (mut ehi, mut llo, mut lhi, mut elo) = (
                Vec::with_capacity(n * half),
                Vec::with_capacity(n * half),
                Vec::with_capacity(n * half),
                Vec::with_capacity(n * half),
            );
            for k in 0..n {
                for j in 0..half {
                    let (lo, hi) = (k * width + 2 * j, k * width + 2 * j + 1);
                    ehi.push(eq[hi]);
                    llo.push(lt[lo]);
                    lhi.push(lt[hi]);
                    elo.push(eq[lo]);
                }
            }
            let m = ehi.len();
            let (mut xs, mut ys) = (ehi.clone(), llo);
            if !last {
                xs.extend_from_slice(&ehi);
                ys.extend_from_slice(&elo);
            }
            let z = self.and(&xs, &ys)?;
            lt = lhi.iter().zip(&z[..m]).map(|(a, b)| a ^ b).collect();
            eq = if last { Vec::new() } else { z[m..].to_vec() };
            width = half;
        }
        Ok(lt)
    }

    /// Shares (XOR) of `[x >= 0]` for each shared `x` (two's complement).
    pub fn drelu(&mut self, x: &[u64]) -> Result<Vec<bool>> {
        const LOW: u64 = (1 << 63) - 1;
        let server = self.is_server();
        let inputs: Vec<u64> = x
            .iter()
            .map(|&v| if server { LOW - (v & LOW) } else { v & LOW })
            .collect();
        let carry = self.millionaires(&inputs)?;
        Ok(x.iter()
            .zip(carry)
            .map(|(&v, c)| (v >> 63 == 1) ^ c ^ server)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::testing::run2;
    use crate::prg::Prg;

    fn edge_values() -> Vec<u64> {
        let mut v = vec![
            0,
            1,
            2,
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) - 1,
            (1 << 63) + 1,
        ];
        v.extend([
            1 << 16,
            (1u64 << 16).wrapping_neg(),
            1 << 40,
            (1u64 << 40).wrapping_neg(),
        ]);
        v
    }

    #[test]
    fn millionaires_is_exact_on_edges_and_random_values() -> Result<()> {
        let mut rng = Prg::new(5);
        let mut a: Vec<u64> = rng.u64s(100).iter().map(|v| v >> 1).collect();
        let mut b: Vec<u64> = rng.u64s(100).iter().map(|v| v >> 1).collect();
        // Equal values, neighbours, extremes.
        for (x, y) in [(5, 5), (5, 6), (6, 5), (0, 0), (0, 1), (1, 0)] {
            a.push(x);
            b.push(y);
        }
        let m = (1u64 << 63) - 1;
        for (x, y) in [(m, m), (m, m - 1), (m - 1, m), (0, m), (m, 0)] {
            a.push(x);
            b.push(y);
        }
        let same = b[..20].to_vec();
        a.extend_from_slice(&same);
        b.extend_from_slice(&same);
        let n = a.len();
        let (aa, bb) = (a.clone(), b.clone());
        let (s, c) = run2(
            CMP_OTS * n,
            move |p| p.millionaires(&aa),
            move |p| p.millionaires(&bb),
        )?;
        for k in 0..n {
            assert_eq!(s[k] ^ c[k], a[k] < b[k], "{} < {}", a[k], b[k]);
        }
        Ok(())
    }

    #[test]
    fn drelu_is_exact_on_edges_and_random_shares() -> Result<()> {
        let mut rng = Prg::new(9);
        let mut x = edge_values();
        x.extend(rng.u64s(200));
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
