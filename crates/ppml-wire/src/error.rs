//! The crate's error type.

/// Why bytes from a peer were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A message needs more bytes than it holds.
    #[error("message truncated: {needed} more bytes needed, {left} left")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes left in the message.
        left: usize,
    },
    /// Bytes left over after the last field of a message.
    #[error("{count} trailing bytes after the message")]
    Trailing {
        /// How many.
        count: usize,
    },
    /// A length or count above its bound.
    #[error("length {len} exceeds the bound of {max}")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// The stream ended inside a frame (its header or its body).
    #[error("the stream ended inside a frame: {got} of {expected} bytes")]
    CutShort {
        /// Bytes of the header or body received.
        got: u64,
        /// Bytes the header or body needed.
        expected: u64,
    },
    /// The stream failed (including a read that timed out).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Result with [`WireError`].
pub type Result<T, E = WireError> = std::result::Result<T, E>;
