//! Comparison by bit decomposition with a helper: exact ReLU over additive two-party shares.
//!
//! Two computing parties `A` and `B` hold additive shares `x = a + b` in `Z_2^64`; a third party
//! `H` (the dealer in `mpc2`, party 2 in `mpc3`) supplies correlated randomness and never sees
//! any value derived from `x`. The protocol for `relu(x) = x * [x >= 0]` on a batch:
//!
//! 1. `H` samples a mask `r`, a Beaver mask `u`, a random bit `t`, the boolean shares of the bits
//!    of `r`, arithmetic shares of `t` and `t * u`, and boolean AND triples. `A`'s part and most
//!    of `B`'s come from PRGs shared with `H` (so they cost nothing to send); `H` sends `B` only
//!    the correction words (the bits of `r`, the shares of `t`, `t u` and the AND products).
//! 2. `A` and `B` open `c = x + r` and `d = x - u` (one round). `c` is uniform and reveals nothing.
//! 3. `msb(x)` is bit 63 of `c - r = c + !r + 1`: a carry chain with one public operand, whose
//!    generate/propagate bits are local; a log-depth tree of the 63 carry-generate/propagate pairs
//!    (118 AND gates, 6 rounds; the two ANDs of a tree node share one masked opening of their
//!    common operand, so 180 rather than 236 bits are opened per party) gives the carry into
//!    bit 63. All bits are *bitsliced*: one `u64`
//!    word carries one bit of 64 comparisons, so a batch of `n` values costs `n / 64` words per
//!    gate.
//! 4. `A` and `B` open `e = [x >= 0] xor t` (one round) and compute locally
//!    `relu(x) = e ? x - t x : t x` with `t x = t d + t u`.
//!
//! So one comparison costs 8 rounds and, per value, 4 ring words opened plus 2 * 180 / 64 words
//! of AND openings online, and about 4.8 words from the helper. It is exact on the whole ring:
//! the sign is that of `x` read as a 64-bit two's-complement number, with no bound on `|x|`.
//! (This is a bit-decomposition comparison, not yet AriaNN's function secret sharing.)

use crate::comparison::role::Role;
use crate::error::Result;
use crate::prg::Prg;
use crate::ring;
use crate::transport::Transport;

/// Bit positions below the sign bit whose carries are combined.
const POSITIONS: usize = 63;

/// The carry tree's levels: for each AND gate of a level (per bitsliced word), the index of the
/// pair whose high propagate bit is its left operand. A pair `(lo, hi)` needs `P_hi & G_lo` and,
/// unless `lo` contains the carry-in, `P_hi & P_lo`; both ANDs share one masked opening of `P_hi`.
fn tree_maps() -> Vec<Vec<usize>> {
    // Items are (has_propagate); item 0 (which contains the carry-in) has none.
    let mut items: Vec<bool> = (0..POSITIONS).map(|i| i != 0).collect();
    let mut levels = Vec::new();
    while items.len() > 1 {
        let mut map = Vec::new();
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        for (pi, pair) in items.chunks(2).enumerate() {
            if let [lo, _hi] = pair {
                map.push(pi);
                if *lo {
                    map.push(pi);
                }
                next.push(*lo);
            } else {
                next.push(pair[0]);
            }
        }
        levels.push(map);
        items = next;
    }
    levels
}

/// AND gates per level.
#[cfg(test)]
fn tree_levels() -> Vec<usize> {
    tree_maps().iter().map(Vec::len).collect()
}

/// Total AND gates of the carry tree (118).
pub(crate) fn tree_ands() -> usize {
    tree_maps().iter().map(Vec::len).sum()
}

/// Total pairs (shared left operands) of the carry tree (62).
fn tree_pairs() -> usize {
    tree_maps()
        .iter()
        .map(|m| m.last().map_or(0, |p| p + 1))
        .sum()
}

/// Transposes values into bit planes: plane `b` word `w` holds bit `b` of values `64w..64w+63`.
pub fn bitslice(vals: &[u64]) -> Vec<u64> {
    let nw = vals.len().div_ceil(64);
    let mut planes = vec![0u64; 64 * nw];
    for (w, chunk) in vals.chunks(64).enumerate() {
        let mut block = [0u64; 64];
        block[..chunk.len()].copy_from_slice(chunk);
        transpose64(&mut block);
        for (b, word) in block.iter().enumerate() {
            planes[b * nw + w] = *word;
        }
    }
    planes
}

/// In-place transpose of a 64x64 bit matrix: afterwards `m[b]` bit `j` is bit `b` of the old `m[j]`.
fn transpose64(m: &mut [u64; 64]) {
    // Recursive block swap (Hacker's Delight 7-3), with rows indexed so that bit j of row i
    // becomes bit i of row j.
    let mut width = 32;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while width != 0 {
        let mut k = 0;
        while k < 64 {
            for i in k..k + width {
                let t = ((m[i] >> width) ^ m[i + width]) & mask;
                m[i] ^= t << width;
                m[i + width] ^= t;
            }
            k += 2 * width;
        }
        width >>= 1;
        mask ^= mask << width;
    }
}

/// Correlated randomness of one batch of comparisons, as one party sees it.
struct Material {
    r: Vec<u64>,
    u: Vec<u64>,
    /// Boolean share of the bit planes of `r` (64 * nw).
    rb: Vec<u64>,
    /// Boolean share of `t` (nw).
    t: Vec<u64>,
    /// Arithmetic share of `t`.
    t_ar: Vec<u64>,
    /// Arithmetic share of `t * u`.
    tu: Vec<u64>,
    alpha: Vec<u64>,
    beta: Vec<u64>,
    gamma: Vec<u64>,
}

/// What `A` (and `H` for `A`) draws from their shared PRG.
fn draw_a(prg: &mut Prg, n: usize) -> Material {
    let nw = n.div_ceil(64);
    let g = tree_ands() * nw;
    Material {
        r: prg.u64s(n),
        u: prg.u64s(n),
        rb: prg.u64s(64 * nw),
        t: prg.u64s(nw),
        t_ar: prg.u64s(n),
        tu: prg.u64s(n),
        alpha: prg.u64s(tree_pairs() * nw),
        beta: prg.u64s(g),
        gamma: prg.u64s(g),
    }
}

/// What `B` (and `H` for `B`) draws from their shared PRG; the rest arrives from `H`.
fn draw_b(prg: &mut Prg, n: usize) -> Material {
    let nw = n.div_ceil(64);
    let g = tree_ands() * nw;
    Material {
        r: prg.u64s(n),
        u: prg.u64s(n),
        rb: Vec::new(),
        t: prg.u64s(nw),
        t_ar: Vec::new(),
        tu: Vec::new(),
        alpha: prg.u64s(tree_pairs() * nw),
        beta: prg.u64s(g),
        gamma: Vec::new(),
    }
}

/// Words `H` sends `B` for `n` comparisons.
fn correction_len(n: usize) -> usize {
    let nw = n.div_ceil(64);
    64 * nw + 2 * n + tree_ands() * nw
}

#[inline]
fn plane(v: &[u64], b: usize, nw: usize) -> &[u64] {
    &v[b * nw..(b + 1) * nw]
}

#[inline]
fn bit(words: &[u64], j: usize) -> u64 {
    (words[j / 64] >> (j % 64)) & 1
}

/// The helper's part: draws both parties' randomness and sends `B` its corrections.
fn helper(
    net: &mut dyn Transport,
    b: usize,
    prg_a: &mut Prg,
    prg_b: &mut Prg,
    n: usize,
) -> Result<()> {
    let ma = draw_a(prg_a, n);
    let mb = draw_b(prg_b, n);
    let r = ring::add(&ma.r, &mb.r);
    let mut msg = Vec::with_capacity(correction_len(n));
    msg.extend(bitslice(&r).iter().zip(&ma.rb).map(|(x, y)| x ^ y));
    let t: Vec<u64> = ma.t.iter().zip(&mb.t).map(|(x, y)| x ^ y).collect();
    msg.extend((0..n).map(|j| bit(&t, j).wrapping_sub(ma.t_ar[j])));
    msg.extend((0..n).map(|j| {
        let u = ma.u[j].wrapping_add(mb.u[j]);
        bit(&t, j).wrapping_mul(u).wrapping_sub(ma.tu[j])
    }));
    let nw = n.div_ceil(64);
    let (mut aoff, mut boff) = (0, 0);
    for map in tree_maps() {
        for (j, &pi) in map.iter().enumerate() {
            for w in 0..nw {
                let (xi, i) = (aoff + pi * nw + w, boff + j * nw + w);
                let alpha = ma.alpha[xi] ^ mb.alpha[xi];
                msg.push((alpha & (ma.beta[i] ^ mb.beta[i])) ^ ma.gamma[i]);
            }
        }
        aoff += map.last().map_or(0, |p| p + 1) * nw;
        boff += map.len() * nw;
    }
    net.send(b, msg)
}

/// One level of bitsliced AND gates with Beaver triples (one round). Gate `j` computes
/// `x[map[j]] & y[j]` (words of `nw`); gates that share a left operand share its mask `alpha`.
#[expect(
    clippy::too_many_arguments,
    reason = "a hot kernel or protocol step with its operands spelled out"
)]
fn and_gates(
    net: &mut dyn Transport,
    peer: usize,
    is_a: bool,
    nw: usize,
    map: &[usize],
    x: &[u64],
    y: &[u64],
    (alpha, beta, gamma): (&[u64], &[u64], &[u64]),
) -> Result<Vec<u64>> {
    let xl = x.len();
    let mut msg = Vec::with_capacity(xl + y.len());
    msg.extend(x.iter().zip(alpha).map(|(v, a)| v ^ a));
    msg.extend(y.iter().zip(beta).map(|(v, b)| v ^ b));
    let other = net.exchange(peer, msg.clone())?;
    let mut z = Vec::with_capacity(y.len());
    for (j, &pi) in map.iter().enumerate() {
        for w in 0..nw {
            let (xi, i) = (pi * nw + w, j * nw + w);
            let d = msg[xi] ^ other[xi];
            let e = msg[xl + i] ^ other[xl + i];
            let mut v = gamma[i] ^ (d & beta[i]) ^ (e & alpha[xi]);
            if is_a {
                v ^= d & e;
            }
            z.push(v);
        }
    }
    Ok(z)
}

/// `relu` of `n` additively shared values. `A` and `B` pass their shares and get shares of the
/// result; `H` passes an empty slice and gets an empty vector.
pub(crate) fn relu(
    net: &mut dyn Transport,
    role: &mut Role<'_>,
    x: &[u64],
    n: usize,
) -> Result<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (is_a, peer, mat) = match role {
        Role::H {
            b, prg_a, prg_b, ..
        } => {
            helper(net, *b, prg_a, prg_b, n)?;
            return Ok(Vec::new());
        }
        Role::A { peer, prg, .. } => (true, *peer, draw_a(prg, n)),
        Role::B { peer, helper, prg } => {
            let mut m = draw_b(prg, n);
            let nw = n.div_ceil(64);
            let mut corr = net.recv_exact(*helper, correction_len(n))?;
            m.gamma = corr.split_off(64 * nw + 2 * n);
            m.tu = corr.split_off(64 * nw + n);
            m.t_ar = corr.split_off(64 * nw);
            m.rb = corr;
            (false, *peer, m)
        }
    };
    let nw = n.div_ceil(64);
    // Round 1: open c = x + r and d = x - u.
    let mut msg = Vec::with_capacity(2 * n);
    msg.extend(x.iter().zip(&mat.r).map(|(v, r)| v.wrapping_add(*r)));
    msg.extend(x.iter().zip(&mat.u).map(|(v, u)| v.wrapping_sub(*u)));
    let other = net.exchange(peer, msg.clone())?;
    let c = ring::add(&msg[..n], &other[..n]);
    let d = ring::add(&msg[n..], &other[n..]);
    let cb = bitslice(&c);
    let ones = if is_a { u64::MAX } else { 0 };
    // Shares of !r, and the generate/propagate bits of c + !r.
    let nr: Vec<u64> = mat.rb.iter().map(|v| v ^ ones).collect();
    let mut items: Vec<(Vec<u64>, Option<Vec<u64>>)> = Vec::with_capacity(POSITIONS);
    for b in 0..POSITIONS {
        let (cp, np) = (plane(&cb, b, nw), plane(&nr, b, nw));
        let g: Vec<u64> = cp.iter().zip(np).map(|(c, r)| c & r).collect();
        let p: Vec<u64> = if is_a {
            cp.iter().zip(np).map(|(c, r)| c ^ r).collect()
        } else {
            np.to_vec()
        };
        if b == 0 {
            // Carry-in 1: bit 0 generates iff c0 | !r0 = g0 ^ p0.
            items.push((g.iter().zip(&p).map(|(g, p)| g ^ p).collect(), None));
        } else {
            items.push((g, Some(p)));
        }
    }
    let (mut aoff, mut boff) = (0, 0);
    for map in tree_maps() {
        let mut xs = Vec::with_capacity(items.len().div_ceil(2) * nw);
        let mut ys = Vec::with_capacity(map.len() * nw);
        for pair in items.chunks(2) {
            if let [lo, hi] = pair {
                xs.extend_from_slice(hi.1.as_deref().unwrap_or(&[]));
                ys.extend_from_slice(&lo.0);
                if let Some(pl) = &lo.1 {
                    ys.extend_from_slice(pl);
                }
            }
        }
        let (xl, yl) = (xs.len(), ys.len());
        let z = and_gates(
            net,
            peer,
            is_a,
            nw,
            &map,
            &xs,
            &ys,
            (
                &mat.alpha[aoff..aoff + xl],
                &mat.beta[boff..boff + yl],
                &mat.gamma[boff..boff + yl],
            ),
        )?;
        aoff += xl;
        boff += yl;
        let mut zi = 0;
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut it = items.into_iter();
        while let Some(lo) = it.next() {
            match it.next() {
                Some(hi) => {
                    let g: Vec<u64> =
                        hi.0.iter()
                            .zip(&z[zi..zi + nw])
                            .map(|(a, b)| a ^ b)
                            .collect();
                    zi += nw;
                    let p = if lo.1.is_some() {
                        let p = z[zi..zi + nw].to_vec();
                        zi += nw;
                        Some(p)
                    } else {
                        None
                    };
                    next.push((g, p));
                }
                None => next.push(lo),
            }
        }
        items = next;
    }
    let carry = items.pop().map(|i| i.0).unwrap_or_default();
    // msb = c63 ^ !r63 ^ carry; drelu = !msb; e = drelu ^ t (opened).
    let c63 = plane(&cb, 63, nw);
    let n63 = plane(&nr, 63, nw);
    let e_share: Vec<u64> = (0..nw)
        .map(|w| {
            let msb = if is_a { c63[w] ^ n63[w] } else { n63[w] } ^ carry[w];
            (msb ^ ones) ^ mat.t[w]
        })
        .collect();
    let other = net.exchange(peer, e_share.clone())?;
    let e: Vec<u64> = e_share.iter().zip(&other).map(|(a, b)| a ^ b).collect();
    Ok((0..n)
        .map(|j| {
            let tx = mat.t_ar[j].wrapping_mul(d[j]).wrapping_add(mat.tu[j]);
            if bit(&e, j) == 1 {
                x[j].wrapping_sub(tx)
            } else {
                tx
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparison::testing::{run3, EDGE_VALUES};

    #[test]
    fn bitslice_matches_naive() {
        let mut prg = Prg::from_os();
        let v = prg.u64s(130);
        let p = bitslice(&v);
        let nw = 3;
        for (j, x) in v.iter().enumerate() {
            for b in 0..64 {
                assert_eq!((p[b * nw + j / 64] >> (j % 64)) & 1, (x >> b) & 1);
            }
        }
        assert_eq!(tree_levels(), vec![61, 31, 15, 7, 3, 1]);
    }

    #[test]
    fn relu_is_exact_on_edge_values() {
        let xs: Vec<u64> = EDGE_VALUES.iter().map(|&v| v as u64).collect();
        let (y, _, rounds) = run3(&xs, relu);
        for (x, y) in xs.iter().zip(&y) {
            let want = if (*x as i64) >= 0 { *x } else { 0 };
            assert_eq!(*y, want, "relu({})", *x as i64);
        }
        assert_eq!(rounds, 8);
    }

    #[test]
    fn relu_on_random_values_and_batches_not_multiple_of_64() {
        let mut prg = Prg::from_os();
        let xs = prg.u64s(200);
        let (y, bytes, _) = run3(&xs, relu);
        for (x, y) in xs.iter().zip(&y) {
            assert_eq!(*y, if (*x as i64) >= 0 { *x } else { 0 });
        }
        // Exactly the documented budget: online 4 words per value, 2 * (62 + 118) per word of
        // AND openings and 2 for the opened bit per word; from the helper 64 + 118 words per 64
        // values and 2 per value.
        let (n, nw) = (200u64, 4u64);
        let want = 8 * (4 * n + 2 * (62 + 118) * nw + 2 * nw + 64 * nw + 118 * nw + 2 * n);
        assert_eq!((tree_pairs(), tree_ands()), (62, 118));
        assert_eq!(bytes, want);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::comparison::testing::run3;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn relu_is_exact_for_any_ring_element(
            mut xs in proptest::collection::vec(any::<i64>(), 1..150),
            k in 0usize..6,
        ) {
            // Mix in the boundary values.
            let edges = [0i64, 1, -1, i64::MAX, i64::MIN, 65536];
            xs.push(edges[k]);
            let xs: Vec<u64> = xs.iter().map(|&v| v as u64).collect();
            let (y, _, _) = run3(&xs, relu);
            for (x, y) in xs.iter().zip(&y) {
                prop_assert_eq!(*y, if (*x as i64) >= 0 { *x } else { 0 });
            }
        }
    }
}
