//! Secure comparison with a helper: exact ReLU and max over additive two-party shares.
//!
//! Two computing parties hold additive shares in `Z_2^64`; a third party (the dealer in `mpc2`,
//! party 2 in `mpc3`) supplies correlated randomness and never sees a value derived from the
//! input. Two protocols compute `relu`, chosen per deployment ([`Comparison`]):
//! - [`bits`]: a bitsliced bit decomposition (8 rounds, exact on the whole ring);
//! - [`fss`]: AriaNN's function secret sharing on the [`dcf`] keys (one round, exact within a
//!   width).
//!
//! [`Comparator`] dispatches between them; [`max_windows`] builds max-pooling on either.

pub(crate) mod bits;
pub mod dcf;
mod fss;
pub(crate) mod role;
#[cfg(test)]
mod testing;

use crate::comparison::role::Role;
use crate::error::Result;
use crate::ring;
use crate::transport::Transport;
use crate::Comparison;

/// The secure comparison behind ReLU and max-pooling, at a given fixed-point scale.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Comparator {
    kind: Comparison,
    /// For [`Comparison::Fss`]: the width the values are compared at.
    bits: u32,
}

impl Comparator {
    /// The comparator of `kind` for values with `frac_bits` fractional bits.
    pub(crate) fn new(kind: Comparison, frac_bits: u32) -> Self {
        Self {
            kind,
            bits: fss::comparison_bits(frac_bits),
        }
    }

    /// One line for reports: the protocol and where it is exact.
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            Comparison::Fss => format!(
                "comparison: FSS (AriaNN's DCF keys from the helper, one round; exact below 2^{} in fixed point)",
                self.bits - 1
            ),
            Comparison::BitDecomposition => {
                "comparison: bit decomposition (bitsliced carry chain with the helper's AND triples, 8 rounds; exact on the whole ring)".into()
            }
        }
    }

    /// `relu` of `n` additively shared values (see [`bits::relu`] and [`fss::relu`]).
    pub(crate) fn relu(
        &self,
        net: &mut dyn Transport,
        role: &mut Role<'_>,
        x: &[u64],
        n: usize,
    ) -> Result<Vec<u64>> {
        match self.kind {
            Comparison::Fss => fss::relu(net, role, x, n, self.bits),
            Comparison::BitDecomposition => bits::relu(net, role, x, n),
        }
    }
}

/// Maximum over pooling windows: `wins[q]` holds element `q` of every window (`n` windows).
/// A tournament of `max(a, b) = b + relu(a - b)`, one batched comparison per level (exact while
/// the differences are within the range where the comparison is exact). `H` passes `k` empty
/// vectors.
pub(crate) fn max_windows(
    net: &mut dyn Transport,
    role: &mut Role<'_>,
    cmp: &Comparator,
    mut wins: Vec<Vec<u64>>,
    n: usize,
) -> Result<Vec<u64>> {
    let is_h = matches!(role, Role::H { .. });
    while wins.len() > 1 {
        let pairs = wins.len() / 2;
        let mut diff = Vec::with_capacity(if is_h { 0 } else { pairs * n });
        if !is_h {
            for p in 0..pairs {
                diff.extend(ring::sub(&wins[2 * p], &wins[2 * p + 1]));
            }
        }
        let r = cmp.relu(net, role, &diff, pairs * n)?;
        let mut next = Vec::with_capacity(wins.len().div_ceil(2));
        for p in 0..pairs {
            if is_h {
                next.push(Vec::new());
            } else {
                next.push(ring::add(&wins[2 * p + 1], &r[p * n..(p + 1) * n]));
            }
        }
        if wins.len() % 2 == 1 {
            next.extend(wins.pop());
        }
        wins = next;
    }
    Ok(wins.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparison::testing::run3;

    /// Maxima of consecutive windows of four of `vals` under `cmp` (the windows laid out as
    /// `wins[q][j]`); returns them and the rounds taken.
    fn max_of_fours(vals: &[i64], cmp: Comparator) -> (Vec<i64>, u64) {
        let xs: Vec<u64> = vals.iter().map(|&v| v as u64).collect();
        let (y, _, rounds) = run3(&xs, |net, role, x, n| {
            let k = 4;
            let m = n / k;
            let wins: Vec<Vec<u64>> = if x.is_empty() {
                vec![Vec::new(); k]
            } else {
                (0..k)
                    .map(|q| (0..m).map(|j| x[j * k + q]).collect())
                    .collect()
            };
            max_windows(net, role, &cmp, wins, m)
        });
        (y.iter().map(|&v| v as i64).collect(), rounds)
    }

    #[test]
    fn max_over_windows_of_four() {
        // max(a, b) = b + relu(a - b) is exact while |a - b| < 2^63.
        let big = 1i64 << 61;
        let vals = [3, -5, 7, 7, -1, -2, -3, -4, 0, -big, big, 5];
        let (y, _) = max_of_fours(&vals, Comparator::new(Comparison::BitDecomposition, 16));
        assert_eq!(y, vec![7, -1, big]);
    }

    #[test]
    fn fss_max_over_windows_takes_one_round_per_level() {
        let vals = [3, -5, 7, 7, -1, -2, -3, -4, 0, -(1 << 30), 1 << 30, 5];
        let (y, rounds) = max_of_fours(&vals, Comparator::new(Comparison::Fss, 16));
        assert_eq!(y, vec![7, -1, 1 << 30]);
        assert_eq!(rounds, 2);
    }
}
