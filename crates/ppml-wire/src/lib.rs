//! `ppml-wire`: the one wire layer under every ppml protocol.
//!
//! Bytes from a peer cross a trust boundary, so every decoder here is total: lengths are
//! checked against a bound before anything is allocated for them, buffers grow only as bytes
//! actually arrive, and every failure is a typed [`WireError`] (never a panic). Each protocol
//! crate maps that error into its own and gives its messages their own typed decoders on top
//! of [`Cursor`].
//!
//! - [`Cursor`] decodes one message held in memory: little-endian fields, byte strings and
//!   words, each bounded by what remains, and [`Cursor::finish`] refuses trailing bytes.
//! - [`Writer`] encodes one message in the same layout; [`words_from_bytes`] packs bytes into
//!   words for the protocols whose messages are words.
//! - [`frame`] reads and writes frames on a byte stream: word frames (an 8-byte word count,
//!   then the words: `ppml-mpc`, `ppml-hybrid`), tagged byte frames (a tag byte, an 8-byte
//!   length, then the payload: `ppml-he`), and the two building blocks, a fixed-size header
//!   ([`frame::read_head`]) and a bounded body ([`frame::read_body`]), for framings of their own
//!   (`ppml-tee`'s handshake and record layer).
//!
//! The crate knows nothing of networks or cryptography: frames run over any `Read`/`Write`.

mod cursor;
mod error;
pub mod frame;
mod writer;

pub use cursor::{words_from_bytes, Cursor};
pub use error::WireError;
pub use writer::Writer;
