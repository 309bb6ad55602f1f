//! The crate's field conventions on top of `ppml-wire`: counts and sizes travel as `u32`s, and
//! the decoder bounds each one with a reason of its own.

use ppml_wire::{Cursor, Writer};

use crate::error::{HeError, Result};

/// Reading a bounded count or size.
pub(crate) trait ReadLen {
    /// A `u32` count or size that must not exceed `max` (else [`HeError::Malformed`]`(what)`).
    fn u32_max(&mut self, max: usize, what: &'static str) -> Result<usize>;
}

impl ReadLen for Cursor<'_> {
    fn u32_max(&mut self, max: usize, what: &'static str) -> Result<usize> {
        let v = self.u32()? as usize;
        if v > max {
            return Err(HeError::Malformed(what));
        }
        Ok(v)
    }
}

/// Writing a count or size.
pub(crate) trait WriteLen {
    /// `v` as a `u32` (every size written is below the bound its decoder checks).
    fn len32(&mut self, v: usize);
}

impl WriteLen for Writer {
    fn len32(&mut self, v: usize) {
        self.u32(v as u32);
    }
}
