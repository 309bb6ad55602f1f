//! Secure comparison and the derivative of ReLU on additive shares over `Z_2^64`, after
//! CrypTFlow2 (Rathee et al., "CrypTFlow2: practical 2-party secure inference", CCS 2020,
//! section 4): the millionaires' problem `[a < b]` for the server's `a` and the client's `b`
//! is split into leaves, each leaf gives shares of `lt_i = [a_i < b_i]` and `eq_i = [a_i = b_i]`,
//! and a tree combines them by `lt = lt_hi ^ (eq_hi & lt_lo)`, `eq = eq_hi & eq_lo`. We use
//! one-bit leaves (CrypTFlow2's `m = 1`: `lt_i = !a_i & b_i` is one AND gate, `eq_i = !a_i ^ b_i`
//! is local) and AND gates on OT-made bit triples ([`crate::boolean`]).
//!
//! `DReLU(x) = 1 ^ MSB(x)` with `MSB(x) = MSB(x_0) ^ MSB(x_1) ^ carry`, where `carry` is the carry
//! out of adding the low 63 bits of the shares: `[2^63 - 1 - x_0' < x_1']`, a millionaires'
//! instance on 63-bit values (section 4.1 of the paper).

use crate::boolean::AND_OTS;
use crate::error::Result;
use crate::ot::OtCount;
use crate::party::Party;

/// Bits of a compared value (the top one is always 0 here: 63-bit values).
const BITS: usize = 64;
/// AND gates of one comparison: 64 leaves, two per inner node, one at the root.
const CMP_ANDS: usize = BITS + 2 * (BITS - 2) + 1;

/// Random OTs one comparison consumes.
pub const CMP_OTS: OtCount = OtCount {
    a: CMP_ANDS * AND_OTS.a,
    b: 0,
};

/// Random OTs one DReLU consumes.
pub const DRELU_OTS: OtCount = CMP_OTS;

impl Party {
    /// Shares of `[a_k < b_k]` where the server inputs `values = a` and the client `values = b`.
    pub fn millionaires(&mut self, values: &[u64]) -> Result<Vec<bool>> {
        let n = values.len();
        let server = self.is_server();
        // Leaves, laid out [comparison][bit]: the server's share of !a_i, the client's of b_i.
        let mine: Vec<bool> = values
            .iter()
            .flat_map(|&v| (0..BITS).map(move |i| (v >> i) & 1 == 1))
            .map(|bit| if server { !bit } else { bit })
            .collect();
        let zeros = vec![false; mine.len()];
        let (x, y) = if server {
            (&mine, &zeros)
        } else {
            (&zeros, &mine)
        };
        let mut lt = self.and(x, y)?;
        let mut eq = mine; // !a ^ b, shared as (!a, b)
        let mut width = BITS;
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
