//! Non-linear layers on additive shares over `Z_2^64`: the multiplexer and ReLU of CrypTFlow2
//! (section 5: `ReLU(x) = DReLU(x) * x` by two OTs, one per direction), max-pooling as a
//! tournament of `max(a, b) = b + ReLU(a - b)`, the square by Gilboa's OT multiplication
//! (64 correlated OTs per product, "Two party RSA key generation", CRYPTO 1999), and SecureML's
//! local truncation (Mohassel-Zhang, S&P 2017).

use crate::compare::DRELU_OTS;
use crate::error::{HybridError, Result};
use crate::ot::OtCount;
use crate::party::Party;
use crate::prg::Prg;

/// Random OTs one multiplexer consumes.
pub const MUX_OTS: OtCount = OtCount { a: 1, b: 1 };
/// Random OTs one ReLU consumes.
pub const RELU_OTS: OtCount = OtCount {
    a: DRELU_OTS.a + MUX_OTS.a,
    b: DRELU_OTS.b + MUX_OTS.b,
};
/// Random OTs one square consumes.
pub const SQUARE_OTS: OtCount = OtCount { a: 64, b: 0 };

/// Comparisons of a tournament over `k` candidates.
pub fn tournament_comparisons(k: usize) -> usize {
    k.saturating_sub(1)
}

/// SecureML's truncation by `bits` of the server's share (party 0).
pub fn trunc_server(x: u64, bits: u32) -> u64 {
    x >> bits
}

/// SecureML's truncation by `bits` of the client's share (party 1): with `x = x_0 + x_1`, the two
/// truncated shares add up to `x / 2^bits` up to one unit, except with probability about
/// `|x| / 2^63`.
pub fn trunc_client(x: u64, bits: u32) -> u64 {
    (x.wrapping_neg() >> bits).wrapping_neg()
}

impl Party {
    /// Truncates this party's shares by `bits` in place.
    pub fn truncate(&self, x: &mut [u64], bits: u32) {
        let server = self.is_server();
        for v in x {
            *v = if server {
                trunc_server(*v, bits)
            } else {
                trunc_client(*v, bits)
            };
        }
    }

    /// Shares of `d_k * x_k` from XOR shares of bits `d` and additive shares of `x`.
    pub fn mux(&mut self, d: &[bool], x: &[u64]) -> Result<Vec<u64>> {
        if d.len() != x.len() {
            return Err(HybridError::Shape {
                what: "mux",
                left: d.len(),
                right: x.len(),
            });
        }
        let n = x.len();
        let r = Prg::from_os().u64s(n);
        // As sender: messages (d_mine ^ j) * x_mine - r for the peer's choice j = d_peer.
        let msgs: Vec<[u64; 2]> = d
            .iter()
            .zip(x)
            .zip(&r)
            .map(|((&dk, &xk), &rk)| {
                let v0 = if dk { xk } else { 0 }.wrapping_sub(rk);
                let v1 = if dk { 0 } else { xk }.wrapping_sub(rk);
                [v0, v1]
            })
            .collect();
        let (req, state) = self.ot.request(d)?;
        let peer_req = self.link.exchange("mux request", req)?;
        let resp = self.ot.respond(&peer_req, &msgs)?;
        let peer_resp = self.link.exchange("mux response", resp)?;
        let got = state.finish(&peer_resp)?;
        Ok(got
            .iter()
            .zip(&r)
            .map(|(g, r)| g.wrapping_add(*r))
            .collect())
    }

    /// Shares of `max(x_k, 0)`.
    pub fn relu(&mut self, x: &[u64]) -> Result<Vec<u64>> {
        let d = self.drelu(x)?;
        self.mux(&d, x)
    }

    /// Shares of `max(a_k, b_k)` as `b + ReLU(a - b)`.
    pub fn max(&mut self, a: &[u64], b: &[u64]) -> Result<Vec<u64>> {
        let diff: Vec<u64> = a.iter().zip(b).map(|(a, b)| a.wrapping_sub(*b)).collect();
        let r = self.relu(&diff)?;
        Ok(b.iter().zip(r).map(|(b, r)| b.wrapping_add(r)).collect())
    }

    /// Shares of the maximum of each group: `groups[g]` lists indices into `x`; every group has
    /// the same size (a tournament, all groups level by level).
    pub fn max_groups(&mut self, x: &[u64], groups: &[Vec<usize>]) -> Result<Vec<u64>> {
        let mut cand: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| g.iter().map(|&i| x.get(i).copied().unwrap_or(0)).collect())
            .collect();
        while cand.first().is_some_and(|c| c.len() > 1) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for c in &cand {
                for pair in c.chunks_exact(2) {
                    a.push(pair[0]);
                    b.push(pair[1]);
                }
            }
            let m = self.max(&a, &b)?;
            let mut it = m.into_iter();
            for c in &mut cand {
                let odd = (c.len() % 2 == 1).then(|| c[c.len() - 1]);
                let mut next: Vec<u64> = it.by_ref().take(c.len() / 2).collect();
                next.extend(odd);
                *c = next;
            }
        }
        Ok(cand
            .into_iter()
            .map(|c| c.first().copied().unwrap_or(0))
            .collect())
    }

    /// Shares of `x_k^2` (before truncation: twice the fractional bits).
    pub fn square(&mut self, x: &[u64]) -> Result<Vec<u64>> {
        let n = x.len();
        // Cross term x_0 x_1: the client chooses with the bits of x_1, the server sends
        // (r_i, r_i + 2^i x_0) for each bit i.
        let cross = if self.is_server() {
            let r = Prg::from_os().u64s(64 * n);
            let msgs: Vec<[u64; 2]> = x
                .iter()
                .flat_map(|&xk| (0..64).map(move |i| xk << i))
                .zip(&r)
                .map(|(m, &ri)| [ri, ri.wrapping_add(m)])
                .collect();
            crate::ot::ot_send(&mut self.ot, self.link.as_mut(), &msgs)?;
            r.chunks_exact(64)
                .map(|c| c.iter().fold(0u64, |s, v| s.wrapping_sub(*v)))
                .collect::<Vec<u64>>()
        } else {
            let bits: Vec<bool> = x
                .iter()
                .flat_map(|&xk| (0..64).map(move |i| (xk >> i) & 1 == 1))
                .collect();
            let got = crate::ot::ot_receive(&mut self.ot, self.link.as_mut(), &bits)?;
            got.chunks_exact(64)
                .map(|c| c.iter().fold(0u64, |s, v| s.wrapping_add(*v)))
                .collect()
        };
        Ok(x.iter()
            .zip(cross)
            .map(|(&xk, c)| xk.wrapping_mul(xk).wrapping_add(c.wrapping_mul(2)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::DRELU_BITS;
    use crate::party::testing::run2;

    fn share(x: &[u64], seed: u128) -> (Vec<u64>, Vec<u64>) {
        let x0 = Prg::new(seed).u64s(x.len());
        let x1 = x.iter().zip(&x0).map(|(x, r)| x.wrapping_sub(*r)).collect();
        (x0, x1)
    }

    fn open(a: &[u64], b: &[u64]) -> Vec<i64> {
        a.iter()
            .zip(b)
            .map(|(a, b)| a.wrapping_add(*b) as i64)
            .collect()
    }

    /// Values within the comparison's width (`|x| < 2^(DRELU_BITS - 1)`), its extremes included.
    fn values() -> Vec<u64> {
        let top = (1i64 << (DRELU_BITS - 1)) - 1;
        let mut v: Vec<u64> = [0i64, 1, -1, 5, -5, 1 << 20, -(1 << 20), top, -top, -top - 1]
            .iter()
            .map(|&x| x as u64)
            .collect();
        v.extend(
            Prg::new(1)
                .u64s(50)
                .iter()
                .map(|w| ((*w as i64) >> (64 - DRELU_BITS)) as u64),
        );
        v.extend(
            Prg::new(2)
                .u64s(50)
                .iter()
                .map(|w| ((*w as i64) >> 30) as u64),
        );
        v
    }

    #[test]
    fn relu_is_exact_within_the_comparison_width() -> Result<()> {
        let x = values();
        let n = x.len();
        let (x0, x1) = share(&x, 3);
        let (a, b) = run2(RELU_OTS * n, move |p| p.relu(&x0), move |p| p.relu(&x1))?;
        for (got, x) in open(&a, &b).iter().zip(&x) {
            assert_eq!(*got, (*x as i64).max(0));
        }
        Ok(())
    }

    #[test]
    fn max_of_groups_is_exact() -> Result<()> {
        // Values whose differences stay within the comparison's width (as activations do).
        let x: Vec<u64> = Prg::new(4)
            .u64s(36)
            .iter()
            .map(|w| ((*w as i64) >> (66 - DRELU_BITS)) as u64)
            .collect();
        let groups: Vec<Vec<usize>> = (0..9).map(|g| (4 * g..4 * g + 4).collect()).collect();
        let threes: Vec<Vec<usize>> = (0..12).map(|g| (3 * g..3 * g + 3).collect()).collect();
        let (x0, x1) = share(&x, 5);
        let need = RELU_OTS * (9 * tournament_comparisons(4) + 12 * tournament_comparisons(3));
        let (g1, g2) = (groups.clone(), threes.clone());
        let (a, b) = run2(
            need,
            move |p| Ok((p.max_groups(&x0, &g1)?, p.max_groups(&x0, &g2)?)),
            move |p| Ok((p.max_groups(&x1, &groups)?, p.max_groups(&x1, &threes)?)),
        )?;
        let xi: Vec<i64> = x.iter().map(|v| *v as i64).collect();
        for (g, got) in open(&a.0, &b.0).iter().enumerate() {
            assert_eq!(*got, *xi[4 * g..4 * g + 4].iter().max().unwrap_or(&0));
        }
        for (g, got) in open(&a.1, &b.1).iter().enumerate() {
            assert_eq!(*got, *xi[3 * g..3 * g + 3].iter().max().unwrap_or(&0));
        }
        Ok(())
    }

    #[test]
    fn square_and_truncation_are_exact() -> Result<()> {
        let x: Vec<u64> = Prg::new(6)
            .u64s(40)
            .iter()
            .map(|w| ((*w as i64) >> 40) as u64)
            .collect();
        let (x0, x1) = share(&x, 7);
        let (a, b) = run2(
            SQUARE_OTS * x.len(),
            move |p| p.square(&x0),
            move |p| p.square(&x1),
        )?;
        for (got, x) in open(&a, &b).iter().zip(&x) {
            assert_eq!(*got, (*x as i64).wrapping_mul(*x as i64));
        }
        // Truncation of random shares of small values: off by at most one unit.
        let v: Vec<u64> = x.iter().map(|x| x << 16).collect();
        let (v0, v1) = share(&v, 8);
        for ((v, a), b) in x.iter().zip(&v0).zip(&v1) {
            let t = trunc_server(*a, 16).wrapping_add(trunc_client(*b, 16)) as i64;
            assert!((t - *v as i64).abs() <= 1, "{t} vs {}", *v as i64);
        }
        Ok(())
    }
}
