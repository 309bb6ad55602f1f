//! A party's role in the helper-assisted comparisons, with the PRGs it shares with the helper.

use crate::prg::Prg;

/// A party's role in a helper-assisted protocol, with the PRGs it shares with the helper.
pub(crate) enum Role<'a> {
    /// First computing party.
    A {
        /// The other computing party.
        peer: usize,
        /// The helper's id.
        helper: usize,
        /// PRG shared with the helper.
        prg: &'a mut Prg,
    },
    /// Second computing party.
    B {
        /// The other computing party.
        peer: usize,
        /// The helper's id.
        helper: usize,
        /// PRG shared with the helper.
        prg: &'a mut Prg,
    },
    /// The helper.
    H {
        /// Party `A`'s id.
        a: usize,
        /// Party `B`'s id.
        b: usize,
        /// PRG shared with `A`.
        prg_a: &'a mut Prg,
        /// PRG shared with `B`.
        prg_b: &'a mut Prg,
    },
}
