//! Links: byte streams carrying frames of ring words, whatever is underneath (TLS over TCP
//! between processes, a socket pair inside one process). Everything above this module (the
//! party mesh, client sessions, the protocols) is the same code for both.
//!
//! A frame is an 8-byte little-endian word count, then the words (little-endian). A count above
//! the configured bound is refused before anything is allocated for it, and the buffer grows
//! only as bytes arrive, so a lying header costs the reader nothing.

use std::io::{ErrorKind, Read, Write};
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

/// Reads one frame of at most `max_words` words; `Ok(None)` on a clean end of stream between
/// frames. Public for the fuzz targets.
pub fn read_frame(
    r: &mut (impl Read + ?Sized),
    max_words: u64,
) -> std::io::Result<Option<Vec<u64>>> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let words = u64::from_le_bytes(head);
    if words > max_words {
        return Err(std::io::Error::new(
            ErrorKind::FileTooLarge,
            format!("{words}"),
        ));
    }
    let len = usize::try_from(words).map_err(|_| std::io::Error::from(ErrorKind::FileTooLarge))?;
    // Grow the buffer as bytes arrive: an announced size alone allocates at most 1 MiB.
    let total = 8 * len;
    let mut bytes = Vec::new();
    while bytes.len() < total {
        let start = bytes.len();
        bytes.resize(start + (total - start).min(1 << 20), 0);
        r.read_exact(&mut bytes[start..])?;
    }
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect(),
    ))
}

/// Writes `head` then `body` as one frame and flushes.
pub fn write_frame(
    w: &mut (impl Write + ?Sized),
    head: &[u64],
    body: &[u64],
) -> std::io::Result<()> {
    let words = head.len() + body.len();
    let mut bytes = Vec::with_capacity(8 * words + 8);
    bytes.extend_from_slice(&(words as u64).to_le_bytes());
    for v in head.iter().chain(body) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    w.write_all(&bytes)?;
    w.flush()
}

/// Bytes on the wire of a frame of `words` words (payload only: 8 per word).
pub(crate) fn payload_bytes(words: usize) -> u64 {
    8 * words as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_bounded() {
        let (mut a, mut b) = in_memory_pair().expect("pair");
        write_frame(&mut a, &[7], &[1, 2, 3]).expect("write");
        assert_eq!(read_frame(&mut b, 4).expect("read"), Some(vec![7, 1, 2, 3]));
        write_frame(&mut a, &[], &[0; 5]).expect("write");
        let e = read_frame(&mut b, 4).expect_err("too large");
        assert_eq!(e.kind(), ErrorKind::FileTooLarge);
        drop(a);
        // The rest of the refused frame, then a clean end.
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).expect("drain");
        assert_eq!(rest.len(), 40);
        let (a, mut b) = in_memory_pair().expect("pair");
        drop(a);
        assert_eq!(read_frame(&mut b, 4).expect("eof"), None);
    }

    #[test]
    fn a_frame_cut_short_is_an_error() {
        let (mut a, mut b) = in_memory_pair().expect("pair");
        a.write_all(&3u64.to_le_bytes()).expect("head");
        a.write_all(&[1; 12]).expect("part");
        drop(a);
        assert_eq!(
            read_frame(&mut b, 8).expect_err("cut").kind(),
            ErrorKind::UnexpectedEof
        );
    }
}
