//! Decoding one message held in memory.

use crate::error::{Result, WireError};

/// Readers of little-endian integers, one per `name: type`.
macro_rules! little_endian {
    ($($name:ident: $t:ty,)*) => {$(
        #[doc = concat!("A little-endian `", stringify!($t), "`.")]
        ///
        /// # Errors
        /// As [`Cursor::take`].
        pub fn $name(&mut self) -> Result<$t> {
            self.array().map(<$t>::from_le_bytes)
        }
    )*};
}

/// Reads little-endian fields from a message, never past its end.
///
/// Every read checks what remains first, so a length field cannot make a read (or an
/// allocation sized by it) exceed the message; [`Cursor::finish`] refuses trailing bytes.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if fewer than `n` remain (nothing is consumed then).
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let left = self.remaining();
        if n > left {
            return Err(WireError::Truncated { needed: n, left });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips `n` bytes.
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A byte.
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    little_endian! {
        u16: u16,
        u32: u32,
        u64: u64,
        i64: i64,
    }

    /// An `f32` sent as its little-endian bits (any bits: the caller checks the value).
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn f32(&mut self) -> Result<f32> {
        self.u32().map(f32::from_bits)
    }

    /// An `f64` sent as its little-endian bits (any bits: the caller checks the value).
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn f64(&mut self) -> Result<f64> {
        self.u64().map(f64::from_bits)
    }

    /// A byte string after its `u32` little-endian length, bounded by what remains.
    ///
    /// # Errors
    /// As [`Cursor::take`], for the length or the bytes.
    pub fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// `n` little-endian `u64` words, bounded by what remains before anything is allocated.
    ///
    /// # Errors
    /// As [`Cursor::take`].
    pub fn words(&mut self, n: usize) -> Result<Vec<u64>> {
        let bytes = n.checked_mul(8).ok_or(WireError::Truncated {
            needed: usize::MAX,
            left: self.remaining(),
        })?;
        Ok(words_from_bytes(self.take(bytes)?))
    }

    /// Ends the message.
    ///
    /// # Errors
    /// [`WireError::Trailing`] if any byte is left.
    pub fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(WireError::Trailing { count }),
        }
    }
}

/// The little-endian words of `bytes`, the last one padded with zero bytes.
pub fn words_from_bytes(bytes: &[u8]) -> Vec<u64> {
    // Whole words through `chunks_exact`, whose fixed length compiles to plain loads; a
    // variable-length copy per word costs a `memmove` call each (5% of an mpc3 `lenet` query).
    let whole = bytes.chunks_exact(8);
    let tail = whole.remainder();
    let mut words = Vec::with_capacity(bytes.len().div_ceil(8));
    words.extend(whole.map(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    }));
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        words.push(u64::from_le_bytes(w));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Writer;

    #[test]
    fn fields_read_back_what_the_writer_wrote() -> Result<()> {
        let mut w = Writer::default();
        w.u8(7);
        w.u16(0x1234);
        w.u32(0xdead_beef);
        w.u64(u64::MAX - 1);
        w.i64(-5);
        w.f32(1.5);
        w.f64(-2.25);
        w.blob(b"abc");
        w.words(&[1, 2]);
        let bytes = w.into_bytes();
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.u8()?, 7);
        assert_eq!(c.u16()?, 0x1234);
        assert_eq!(c.u32()?, 0xdead_beef);
        assert_eq!(c.u64()?, u64::MAX - 1);
        assert_eq!(c.i64()?, -5);
        assert_eq!(c.f32()?, 1.5);
        assert_eq!(c.f64()?, -2.25);
        assert_eq!(c.blob()?, b"abc");
        assert_eq!(c.position(), bytes.len() - 16);
        assert_eq!(c.words(2)?, vec![1, 2]);
        c.finish()
    }

    #[test]
    fn reads_past_the_end_and_leftovers_are_refused() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert!(matches!(
            c.u32(),
            Err(WireError::Truncated { needed: 4, left: 3 })
        ));
        // A failed read consumes nothing.
        assert_eq!(c.remaining(), 3);
        assert!(matches!(
            c.clone().finish(),
            Err(WireError::Trailing { count: 3 })
        ));
        // A lying length: a blob announcing 2^32 - 1 bytes, and a word count that overflows.
        let lying = [0xff, 0xff, 0xff, 0xff, 0];
        assert!(matches!(
            Cursor::new(&lying).blob(),
            Err(WireError::Truncated { left: 1, .. })
        ));
        assert!(Cursor::new(&lying).words(usize::MAX).is_err());
        assert!(Cursor::new(&lying).skip(6).is_err());
    }

    #[test]
    fn bytes_pack_into_words_with_the_last_padded() {
        assert_eq!(words_from_bytes(&[]), Vec::<u64>::new());
        assert_eq!(
            words_from_bytes(&[1, 0, 0, 0, 0, 0, 0, 2, 3]),
            vec![(2 << 56) | 1, 3]
        );
    }
}
