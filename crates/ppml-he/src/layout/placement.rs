//! Where the elements of one vector live in the slots of latency mode's ciphertexts.
//!
//! Two placements:
//! - [`Placement::Periodic`] (models whose vectors all fit one ciphertext: `cnn`, `mlp-sq`): a
//!   vector of length `n` lives periodically with period `P = next_pow2(n)`: slot `r` holds
//!   `v[r mod P]` (zero when `r mod P >= n`).
//! - [`Placement::Grid`] (`lenet-sq`, whose first convolution has 11,520 outputs): a feature map
//!   in channel blocks of a power-of-two size, rows `row_stride` slots apart, so that a
//!   convolution's diagonals do not depend on the output position (one diagonal per pair of
//!   channel blocks and kernel offset). Before the first pooling the positions are split into
//!   pooling phases, one set of ciphertexts each, so that sum pooling is ciphertext additions.
//!   The slots a map does not use hold zeros, or sums of zeros after pooling.

use crate::error::{HeError, Result};

/// Period of a vector of length `n` in the periodic placement.
pub fn period(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Most ciphertexts one vector may take.
pub const MAX_CIPHERTEXTS: usize = 64;

/// A `[channels, height, width]` feature map in channel blocks (see the module docs): element
/// `(c, y, x)` sits in phase `(y mod phase, x mod phase)`, channel block `c`, slot
/// `(y / phase) * row_stride + x / phase` of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Pooling phases per axis (1: none).
    pub phase: usize,
    /// Slots from one row to the next within a block.
    pub row_stride: usize,
    /// Slots per channel block: a power of two.
    pub block: usize,
}

impl Grid {
    fn blocks_per_ciphertext(&self, slots: usize) -> usize {
        (slots / self.block).max(1)
    }

    fn ciphertexts_per_phase(&self, slots: usize) -> usize {
        self.channels.div_ceil(self.blocks_per_ciphertext(slots))
    }
}

/// Where the elements of one vector live in latency mode (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// One ciphertext, element `k` in slot `k`, repeated with period `next_pow2(len)`.
    Periodic {
        /// Length of the vector.
        len: usize,
    },
    /// A feature map in channel blocks over one or more ciphertexts.
    Grid(Grid),
}

impl Placement {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Placement::Periodic { len } => *len,
            Placement::Grid(g) => g.channels * g.height * g.width,
        }
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of ciphertexts.
    pub fn ciphertexts(&self, slots: usize) -> usize {
        match self {
            Placement::Periodic { .. } => 1,
            Placement::Grid(g) => g.phase * g.phase * g.ciphertexts_per_phase(slots),
        }
    }

    /// Period of each ciphertext's slots.
    pub fn period(&self, slots: usize) -> usize {
        match self {
            Placement::Periodic { len } => period(*len),
            Placement::Grid(_) => slots,
        }
    }

    /// `(ciphertext, slot)` of element `k` (its first replica).
    pub fn locate(&self, k: usize, slots: usize) -> (usize, usize) {
        match self {
            Placement::Periodic { .. } => (0, k),
            Placement::Grid(g) => {
                let (c, y, x) = (
                    k / (g.height * g.width),
                    k / g.width % g.height,
                    k % g.width,
                );
                let bpc = g.blocks_per_ciphertext(slots);
                let phase = (y % g.phase) * g.phase + x % g.phase;
                (
                    phase * g.ciphertexts_per_phase(slots) + c / bpc,
                    (c % bpc) * g.block + (y / g.phase) * g.row_stride + x / g.phase,
                )
            }
        }
    }

    /// Checks that the placement fits `slots` and stays within [`MAX_CIPHERTEXTS`].
    pub fn validate(&self, slots: usize) -> Result<()> {
        match self {
            Placement::Periodic { len } if period(*len) <= slots => Ok(()),
            Placement::Periodic { .. } => {
                Err(HeError::Malformed("latency layout larger than the slots"))
            }
            Placement::Grid(g) => {
                let (h, w) = (
                    g.height.div_ceil(g.phase.max(1)),
                    g.width.div_ceil(g.phase.max(1)),
                );
                let fits = g.phase >= 1
                    && g.block.is_power_of_two()
                    && g.block <= slots
                    && g.row_stride >= w
                    && h.saturating_sub(1) * g.row_stride + w <= g.block;
                if !fits || g.channels == 0 || h == 0 || w == 0 {
                    return Err(HeError::Malformed("latency grid does not fit its blocks"));
                }
                if g.phase * g.phase * g.ciphertexts_per_phase(slots) > MAX_CIPHERTEXTS {
                    return Err(HeError::Malformed(
                        "latency grid needs too many ciphertexts",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The client's slot vectors, one per ciphertext, for a vector `x` of [`Self::len`] values.
    pub fn lay_out(&self, x: &[f64], slots: usize) -> Vec<Vec<f64>> {
        let mut cts = vec![vec![0.0; slots]; self.ciphertexts(slots)];
        let p = self.period(slots);
        for (k, &v) in x.iter().enumerate().take(self.len()) {
            let (ct, slot) = self.locate(k, slots);
            for r in (slot..slots).step_by(p) {
                cts[ct][r] = v;
            }
        }
        cts
    }
}
