//! One-round ReLU with function secret sharing (AriaNN), for two parties and a dealer.
//!
//! Parties `A` and `B` hold `x = a + b` in `Z_2^64`; the dealer `H` knows only its own
//! randomness. The comparison reads `x` as a `k`-bit two's-complement number (`x mod 2^k`;
//! exact whenever `|x| < 2^(k-1)`, and `k = 64` is the whole ring):
//!
//! 1. `H` draws a mask `r` (each party's share of it comes from the PRG it shares with `H`) and
//!    gives the parties a [DCF](crate::comparison::dcf) key pair for `alpha = r mod 2^(k-1)` with payload
//!    `beta = (1 - 2s, r (1 - 2s))`, `s` the bit `k-1` of `r`, plus arithmetic shares of `s`
//!    and `r s` (`A`'s from the PRG, `B`'s as corrections).
//! 2. `A` and `B` open `c = x + r` (the one online round; `c` is uniform).
//! 3. Writing `c' = c mod 2^(k-1)`, the sign bit of `x` is `msb(c) xor s xor [c' < r']` (the
//!    borrow out of the low bits of `c - r`). Evaluating the DCF at `c'` gives shares of
//!    `z = s xor [c' < r'] = s + (1 - 2s) [c' < r']` and of `r z`, so with the public bit
//!    `m = msb(c)` each party computes locally `[x >= 0] = m ? z : 1 - z`,
//!    `r [x >= 0] = m ? r z : r - r z` and `relu(x) = [x >= 0] c - r [x >= 0]`.
//!
//! Online, each party sends one word per value in one round; the dealer sends each party
//! `(k - 1)` levels of corrections (two 128-bit words and two bits per value) and the final
//! pair, and `B` two more words per value. Maximum pooling composes it as
//! `max(a, b) = b + relu(a - b)` ([`crate::comparison::max_windows`]).
//!
//! What a party sees: its DCF key (pseudorandom, independent of `r` and `s` by the DCF's
//! security), its PRG-derived shares and `c = x + r` with `r` uniform: nothing about `x`.

use crate::comparison::dcf::{self, CorrectionWords, Pair};
use crate::comparison::role::Role;
use crate::error::Result;
use crate::prg::Prg;
use crate::ring;
use crate::transport::Transport;

/// Bits of headroom above the fixed-point scale within which comparisons are exact: with `f`
/// fractional bits, values of magnitude below `2^HEADROOM_BITS` (about 8.4 million).
pub(crate) const HEADROOM_BITS: u32 = 23;

/// The comparison width `k` for `frac_bits` fractional bits: exact for every fixed-point value
/// below `2^HEADROOM_BITS` in magnitude (and on the whole ring once that needs 64 bits).
pub(crate) fn comparison_bits(frac_bits: u32) -> u32 {
    (frac_bits + HEADROOM_BITS + 1).min(64)
}

/// A party's randomness drawn from the PRG it shares with the dealer: the mask share and the
/// DCF root seeds; for `A` also the shares of `s` and `r s`.
struct Draw {
    r: Vec<u64>,
    roots: Vec<u128>,
    s: Vec<u64>,
    rs: Vec<u64>,
}

fn draw(prg: &mut Prg, n: usize, with_products: bool) -> Draw {
    let r = prg.u64s(n);
    let roots = prg
        .u64s(2 * n)
        .chunks_exact(2)
        .map(|p| u128::from(p[0]) | (u128::from(p[1]) << 64))
        .collect();
    let (s, rs) = if with_products {
        (prg.u64s(n), prg.u64s(n))
    } else {
        (Vec::new(), Vec::new())
    };
    Draw { r, roots, s, rs }
}

/// Comparisons whose keys travel in one message: bounds each message (about 42 MB at 16
/// fractional bits) and the memory keys occupy, and lets the dealer generate the next slice
/// while the parties evaluate the last one.
const SLICE: usize = 32_768;

/// `relu` of `n` additively shared values read as `k`-bit numbers (`2 <= k <= 64`). `A` and `B`
/// pass their shares and get shares of the result; `H` passes an empty slice and gets an empty
/// vector.
pub(crate) fn relu(
    net: &mut dyn Transport,
    role: &mut Role<'_>,
    x: &[u64],
    n: usize,
    k: u32,
) -> Result<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let m = k - 1;
    let low = (1u64 << m) - 1;
    let (is_a, peer, helper, d) = match role {
        Role::H { a, b, prg_a, prg_b } => {
            let da = draw(prg_a, n, true);
            let db = draw(prg_b, n, false);
            for start in (0..n).step_by(SLICE) {
                let range = start..(start + SLICE).min(n);
                let (cw, to_b) = dealer_slice(&da, &db, range, m);
                net.send(*a, cw)?;
                net.send(*b, to_b)?;
            }
            return Ok(Vec::new());
        }
        Role::A { peer, helper, prg } => (true, *peer, *helper, draw(prg, n, true)),
        Role::B { peer, helper, prg } => (false, *peer, *helper, draw(prg, n, false)),
    };
    // The online round: open c = x + r.
    let mine = ring::add(x, &d.r);
    let c = ring::add(&mine, &net.exchange(peer, mine.clone())?);
    let one = u64::from(is_a);
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(SLICE) {
        let range = start..(start + SLICE).min(n);
        let len = range.len();
        let cw_len = CorrectionWords::encoded_len(m, len);
        let mut words = net.recv_exact(helper, cw_len + if is_a { 0 } else { 2 * len })?;
        let (s, rs) = if is_a {
            (d.s[range.clone()].to_vec(), d.rs[range.clone()].to_vec())
        } else {
            let rs = words.split_off(cw_len + len);
            (words.split_off(cw_len), rs)
        };
        let cw = CorrectionWords::from_words(m, len, words)?;
        let c = &c[range.clone()];
        let points: Vec<u64> = c.iter().map(|c| c & low).collect();
        let shares = dcf::evaluate(u8::from(!is_a), &d.roots[range.clone()], &cw, &points)?;
        let r = &d.r[range];
        out.extend((0..len).map(|j| {
            let z = s[j].wrapping_add(shares[j][0]);
            let rz = rs[j].wrapping_add(shares[j][1]);
            let (drelu, r_drelu) = if (c[j] >> m) & 1 == 1 {
                (z, rz)
            } else {
                (one.wrapping_sub(z), r[j].wrapping_sub(rz))
            };
            drelu.wrapping_mul(c[j]).wrapping_sub(r_drelu)
        }));
    }
    Ok(out)
}

/// The dealer's messages for comparisons `range`: the corrections for `A`, and for `B` the
/// corrections followed by its shares of `s` and of `r s`.
fn dealer_slice(
    da: &Draw,
    db: &Draw,
    range: std::ops::Range<usize>,
    m: u32,
) -> (Vec<u64>, Vec<u64>) {
    let r = ring::add(&da.r[range.clone()], &db.r[range.clone()]);
    let low = (1u64 << m) - 1;
    let alphas: Vec<u64> = r.iter().map(|r| r & low).collect();
    let s: Vec<u64> = r.iter().map(|r| (r >> m) & 1).collect();
    let betas: Vec<Pair> = r
        .iter()
        .zip(&s)
        .map(|(r, s)| {
            let b0 = 1u64.wrapping_sub(2 * s);
            [b0, r.wrapping_mul(b0)]
        })
        .collect();
    let roots = (&da.roots[range.clone()], &db.roots[range.clone()]);
    let cw = dcf::generate(m, &alphas, &betas, roots).into_words();
    let mut to_b = Vec::with_capacity(cw.len() + 2 * r.len());
    to_b.extend_from_slice(&cw);
    to_b.extend(
        s.iter()
            .zip(&da.s[range.clone()])
            .map(|(s, s0)| s.wrapping_sub(*s0)),
    );
    to_b.extend(
        r.iter()
            .zip(&s)
            .zip(&da.rs[range])
            .map(|((r, s), rs0)| r.wrapping_mul(*s).wrapping_sub(*rs0)),
    );
    (cw, to_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparison::testing::{run3, EDGE_VALUES};

    fn want(x: u64, k: u32) -> u64 {
        // Sign of x as a k-bit two's-complement number.
        let neg = (x >> (k - 1)) & 1 == 1;
        if neg {
            0
        } else {
            x
        }
    }

    #[test]
    fn exact_on_edge_values_of_the_whole_ring_in_one_round() {
        let xs: Vec<u64> = EDGE_VALUES.iter().map(|&v| v as u64).collect();
        let (y, bytes, rounds) = run3(&xs, |net, role, x, n| relu(net, role, x, n, 64));
        for (x, y) in xs.iter().zip(&y) {
            assert_eq!(*y, want(*x, 64), "relu({})", *x as i64);
        }
        assert_eq!(rounds, 1);
        // Online one word per value each way; from the dealer the corrections twice and two
        // words per value for B.
        let n = xs.len();
        let cw = CorrectionWords::encoded_len(63, n);
        assert_eq!(bytes, 8 * (2 * n + 2 * cw + 2 * n) as u64);
    }

    #[test]
    fn narrow_width_is_exact_inside_its_range() {
        // k = 40: every |x| < 2^39, including the extremes.
        let k = 40;
        let big = (1i64 << 39) - 1;
        let mut prg = Prg::from_os();
        let mut xs: Vec<i64> = vec![0, 1, -1, big, -big, -big - 1, 1 << 20, -(1 << 20)];
        xs.extend(prg.u64s(300).iter().map(|v| (*v as i64) >> 25));
        let xs: Vec<u64> = xs.iter().map(|&v| v as u64).collect();
        let (y, _, _) = run3(&xs, |net, role, x, n| relu(net, role, x, n, k));
        for (x, y) in xs.iter().zip(&y) {
            let v = *x as i64;
            assert_eq!(*y, if v >= 0 { *x } else { 0 }, "relu({v})");
        }
    }

    #[test]
    fn batches_larger_than_a_slice_travel_in_several_messages() {
        let mut prg = Prg::from_os();
        let xs: Vec<u64> = prg
            .u64s(SLICE + 1000)
            .iter()
            .map(|v| ((*v as i64) >> 30) as u64)
            .collect();
        let (y, bytes, rounds) = run3(&xs, |net, role, x, n| relu(net, role, x, n, 40));
        for (x, y) in xs.iter().zip(&y) {
            assert_eq!(*y, want(*x, 40));
        }
        assert_eq!(rounds, 1);
        let cw = CorrectionWords::encoded_len(39, SLICE) + CorrectionWords::encoded_len(39, 1000);
        let n = xs.len();
        assert_eq!(bytes, 8 * (2 * n + 2 * cw + 2 * n) as u64);
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
        fn relu_is_exact_within_the_width(
            xs in proptest::collection::vec(any::<i64>(), 1..150),
            k in 2u32..=64,
        ) {
            // Reduce every value into the k-bit signed range.
            let shift = 64 - k;
            let xs: Vec<u64> = xs.iter().map(|&v| (v >> shift) as u64).collect();
            let (y, _, _) = run3(&xs, |net, role, x, n| relu(net, role, x, n, k));
            for (x, y) in xs.iter().zip(&y) {
                prop_assert_eq!(*y, if (*x as i64) >= 0 { *x } else { 0 });
            }
        }
    }
}
