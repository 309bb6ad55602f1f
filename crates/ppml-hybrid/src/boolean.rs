//! XOR-shared bits and the AND gate on Beaver bit triples made from random OTs of direction A
//! (the server's random messages, the client's random choices), so no dealer is involved.
//!
//! From one random OT, with the server holding `(m_0, m_1)` and the client `(c, m_c)`, the bits
//! `x = lsb(m_0) ^ lsb(m_1)` (server) and `c` (client) satisfy `c x = lsb(m_c) ^ lsb(m_0)`: a
//! sharing of the product of two random bits held by different parties, with no message. Two
//! such products give a triple `(a, b, c)` with `a = a_0 ^ a_1`, `b = b_0 ^ b_1`, `c = ab`.

use crate::error::{HybridError, Result};
use crate::link::{pack_bits, unpack_bits};
use crate::ot::{OtCount, Role};
use crate::party::Party;

/// Random OTs one AND gate consumes.
pub const AND_OTS: OtCount = OtCount { a: 2, b: 0 };

struct Triples {
    a: Vec<bool>,
    b: Vec<bool>,
    c: Vec<bool>,
}

fn triples(p: &mut Party, n: usize) -> Result<Triples> {
    let mut t = Triples {
        a: Vec::with_capacity(n),
        b: Vec::with_capacity(n),
        c: Vec::with_capacity(n),
    };
    match p.role() {
        Role::Server => {
            for pair in p.ot.take_pairs(2 * n)?.chunks_exact(2) {
                let lsb = |x: u128| x & 1 == 1;
                let (a0, u0) = (lsb(pair[0][0]) ^ lsb(pair[0][1]), lsb(pair[0][0]));
                let (b0, v0) = (lsb(pair[1][0]) ^ lsb(pair[1][1]), lsb(pair[1][0]));
                t.a.push(a0);
                t.b.push(b0);
                t.c.push((a0 & b0) ^ u0 ^ v0);
            }
        }
        Role::Client => {
            let (choices, pads) = p.ot.take_pads(2 * n)?;
            for (c, m) in choices.chunks_exact(2).zip(pads.chunks_exact(2)) {
                let (b1, u1) = (c[0], m[0] & 1 == 1);
                let (a1, v1) = (c[1], m[1] & 1 == 1);
                t.a.push(a1);
                t.b.push(b1);
                t.c.push((a1 & b1) ^ u1 ^ v1);
            }
        }
    }
    Ok(t)
}

impl Party {
    /// Shares of `x_k & y_k` from shares of `x` and `y` (one exchange, [`AND_OTS`] each).
    pub fn and(&mut self, x: &[bool], y: &[bool]) -> Result<Vec<bool>> {
        if x.len() != y.len() {
            return Err(HybridError::Shape {
                what: "and",
                left: x.len(),
                right: y.len(),
            });
        }
        let n = x.len();
        let t = triples(self, n)?;
        let d: Vec<bool> = x.iter().zip(&t.a).map(|(x, a)| x ^ a).collect();
        let e: Vec<bool> = y.iter().zip(&t.b).map(|(y, b)| y ^ b).collect();
        let mut msg = pack_bits(&d);
        msg.extend(pack_bits(&e));
        let words = n.div_ceil(64);
        let peer = self.link.exchange("AND openings", msg)?;
        let pd = unpack_bits("AND openings", &peer[..words], n)?;
        let pe = unpack_bits("AND openings", &peer[words..], n)?;
        let server = self.is_server();
        Ok((0..n)
            .map(|k| {
                let (dd, ee) = (d[k] ^ pd[k], e[k] ^ pe[k]);
                t.c[k] ^ (dd & t.b[k]) ^ (ee & t.a[k]) ^ (server & dd & ee)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::testing::run2;
    use crate::prg::Prg;

    #[test]
    fn and_of_shared_bits_is_exact() -> Result<()> {
        let n = 200;
        let mut rng = Prg::new(11);
        let (x, y) = (rng.bits(n), rng.bits(n));
        let (x0, y0) = (rng.bits(n), rng.bits(n));
        let x1: Vec<bool> = x.iter().zip(&x0).map(|(a, b)| a ^ b).collect();
        let y1: Vec<bool> = y.iter().zip(&y0).map(|(a, b)| a ^ b).collect();
        let (z0, z1) = run2(
            AND_OTS * n,
            move |p| p.and(&x0, &y0),
            move |p| p.and(&x1, &y1),
        )?;
        for k in 0..n {
            assert_eq!(z0[k] ^ z1[k], x[k] & y[k], "bit {k}");
        }
        Ok(())
    }
}
