//! Links: byte streams carrying frames of ring words, whatever is underneath (TLS over TCP
//! between processes, a socket pair inside one process). Everything above this module (the
//! party mesh, client sessions, the protocols) is the same code for both.
//!
//! A frame is `ppml-wire`'s word frame: an 8-byte little-endian word count, then the words
//! (little-endian). A count above the configured bound is refused before anything is allocated
//! for it, and the buffer grows only as bytes arrive, so a lying header costs the reader nothing.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Default bound on one frame: 2^26 words (512 MiB).
pub const DEFAULT_MAX_FRAME_WORDS: u64 = 1 << 26;

/// A two-way link used by one thread at a time (a client's connection to a party).
pub trait Duplex: Read + Write + Send {
    /// How long a read may wait (`None`: for ever).
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()>;
    /// Closes both directions, waking up any reader of the other end.
    fn shutdown(&self);
}

impl Duplex for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn shutdown(&self) {
        let _ = UnixStream::shutdown(self, std::net::Shutdown::Both);
    }
}

/// A link inside this process: the two ends of a socket pair (no network, no TLS).
pub fn in_memory_pair() -> std::io::Result<(UnixStream, UnixStream)> {
    UnixStream::pair()
}

/// Bytes on the wire of a frame of `words` words (payload only: 8 per word).
pub(crate) fn payload_bytes(words: usize) -> u64 {
    8 * words as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_wire::frame::{read_word_frame, write_word_frame};
    use ppml_wire::WireError;

    #[test]
    fn frames_round_trip_and_are_bounded() {
        let (mut a, mut b) = in_memory_pair().expect("pair");
        write_word_frame(&mut a, &[7], &[1, 2, 3]).expect("write");
        assert_eq!(
            read_word_frame(&mut b, 4).expect("read"),
            Some(vec![7, 1, 2, 3])
        );
        write_word_frame(&mut a, &[], &[0; 5]).expect("write");
        let e = read_word_frame(&mut b, 4).expect_err("too large");
        assert!(matches!(e, WireError::TooLarge { len: 5, max: 4 }));
        drop(a);
        // The rest of the refused frame, then a clean end.
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).expect("drain");
        assert_eq!(rest.len(), 40);
        let (a, mut b) = in_memory_pair().expect("pair");
        drop(a);
        assert_eq!(read_word_frame(&mut b, 4).expect("eof"), None);
    }

    #[test]
    fn a_frame_cut_short_is_an_error() {
        let (mut a, mut b) = in_memory_pair().expect("pair");
        a.write_all(&3u64.to_le_bytes()).expect("head");
        a.write_all(&[1; 12]).expect("part");
        drop(a);
        assert!(matches!(
            read_word_frame(&mut b, 8).expect_err("cut"),
            WireError::CutShort {
                got: 12,
                expected: 24
            }
        ));
    }
}
