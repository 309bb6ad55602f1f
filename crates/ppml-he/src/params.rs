//! The parameter planner: the smallest secure ring degree and prime chain that fit a plan.

use std::sync::Arc;

use ppml_ckks::{max_total_modulus_bits, CkksParameters};

use crate::error::{HeError, Result};

/// What the planner must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannerGoals {
    /// Multiplicative depth (levels consumed).
    pub depth: usize,
    /// Smallest acceptable scale, in bits (precision of every intermediate value).
    pub min_scale_bits: u32,
    /// Largest scale worth having, in bits.
    pub max_scale_bits: u32,
    /// Bits of the first prime above the scale: room for the output's magnitude
    /// (|logit| < 2^(headroom - 1)).
    pub headroom_bits: u32,
}

impl PlannerGoals {
    /// Defaults for a plan of `depth`: scale between 2^25 and 2^28, 12 bits of output headroom.
    /// Scale primes of at most 28 bits let throughput mode's multiply-accumulate
    /// (`ppml_ckks::Evaluator::weighted_sums`) sum 64 or more 64-bit products between two
    /// reductions (larger primes reduce far more often, or take the slower wide-prime path),
    /// and 2^28 leaves ample precision (`cnn` runs at 2^27 with every prediction equal to plain).
    pub fn new(depth: usize) -> Self {
        Self {
            depth,
            min_scale_bits: 25,
            max_scale_bits: 28,
            headroom_bits: 12,
        }
    }
}

/// Chooses parameters: the smallest N in 2^12..2^16 (and, for it, the largest scale up to
/// `max_scale_bits`) whose chain `[scale + headroom, scale x depth]` plus one special prime of
/// `scale + headroom` bits stays under the 128-bit security bound. The ppml-ckks builder checks the
/// bound again and refuses anything insecure.
pub fn choose(goals: &PlannerGoals) -> Result<Arc<CkksParameters>> {
    let mut last_err = String::new();
    for log_n in 12..=16u32 {
        let n = 1usize << log_n;
        let Some(bound) = max_total_modulus_bits(n) else {
            continue;
        };
        for s in (goals.min_scale_bits..=goals.max_scale_bits).rev() {
            let q0 = (s + goals.headroom_bits).min(60);
            let total = 2 * q0 as usize + goals.depth * s as usize;
            if total > bound as usize {
                continue;
            }
            let mut chain = vec![q0];
            chain.extend(std::iter::repeat_n(s, goals.depth));
            match CkksParameters::builder()
                .degree(n)
                .chain_bits(&chain)
                .special_bits(&[q0])
                .scale_bits(s)
                .build_arc()
            {
                Ok(p) => return Ok(p),
                Err(e) => last_err = e.to_string(),
            }
        }
    }
    Err(HeError::NoParameters {
        depth: goals.depth,
        extra: last_err,
    })
}

/// One-line description of parameters for setup notes.
pub fn describe(p: &CkksParameters) -> String {
    let bits = |q: &u64| format!("{}", 64 - q.leading_zeros());
    format!(
        "N={} slots={} chain=[{}] special=[{}] scale=2^{:.1} total={:.0} bits (128-bit bound {})",
        p.degree(),
        p.slots(),
        p.chain().iter().map(bits).collect::<Vec<_>>().join(","),
        p.special().iter().map(bits).collect::<Vec<_>>().join(","),
        p.scale().log2(),
        p.total_modulus_bits(),
        max_total_modulus_bits(p.degree()).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth5_fits_n8192() {
        let p = choose(&PlannerGoals::new(5)).expect("params");
        assert_eq!(p.degree(), 8192);
        assert_eq!(p.max_level(), 5);
        assert!(p.total_modulus_bits() <= 218.0);
    }

    #[test]
    fn deeper_needs_larger_ring() {
        let p = choose(&PlannerGoals::new(7)).expect("params");
        assert_eq!(p.degree(), 16384);
        let shallow = choose(&PlannerGoals::new(1)).expect("params");
        assert_eq!(shallow.degree(), 4096);
    }

    #[test]
    fn impossible_is_an_error() {
        let mut g = PlannerGoals::new(60);
        g.min_scale_bits = 40;
        assert!(matches!(choose(&g), Err(HeError::NoParameters { .. })));
    }
}
