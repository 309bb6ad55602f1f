//! Frames on a byte stream.
//!
//! A frame is a fixed-size header announcing a length, then that many bytes. The announced
//! length is checked against the reader's bound before anything is allocated, and the body's
//! buffer grows only as bytes arrive, so a lying header costs the reader at most what the peer
//! actually sends. A stream that ends cleanly between frames is `Ok(None)`; one that ends
//! inside a frame is [`WireError::CutShort`].

use std::io::{ErrorKind, Read, Write};

use crate::cursor::words_from_bytes;
use crate::error::{Result, WireError};

/// The most a body's buffer is allocated ahead of the bytes that arrive.
const FIRST_ALLOCATION: u64 = 1 << 20;
/// Words encoded at a time by [`write_word_frame`] (a small frame is one write).
const WRITE_CHUNK_WORDS: usize = 1 << 13;

/// Reads a header of `N` bytes.
///
/// # Errors
/// `Ok(None)` if the stream ends before the first byte; [`WireError::CutShort`] if it ends
/// inside the header; [`WireError::Io`] if the stream fails.
pub fn read_head<const N: usize>(r: &mut (impl Read + ?Sized)) -> Result<Option<[u8; N]>> {
    let mut head = [0u8; N];
    let mut got = 0;
    while got < N {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(WireError::CutShort {
                    got: got as u64,
                    expected: N as u64,
                })
            }
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(head))
}

/// Reads a body of `len` bytes, refusing a `len` above `max` before reading anything.
///
/// # Errors
/// [`WireError::TooLarge`] if `len > max`; [`WireError::CutShort`] if the stream ends first;
/// [`WireError::Io`] if it fails.
pub fn read_body(r: &mut (impl Read + ?Sized), len: u64, max: u64) -> Result<Vec<u8>> {
    if len > max {
        return Err(WireError::TooLarge { len, max });
    }
    let mut body = Vec::with_capacity(len.min(FIRST_ALLOCATION) as usize);
    // `read_to_end` grows the buffer with what arrives, never with what was announced.
    Read::take(&mut *r, len).read_to_end(&mut body)?;
    if (body.len() as u64) < len {
        return Err(WireError::CutShort {
            got: body.len() as u64,
            expected: len,
        });
    }
    Ok(body)
}

/// Reads a word frame: an 8-byte little-endian word count of at most `max_words`, then the
/// words (little-endian).
///
/// # Errors
/// `Ok(None)` at a clean end of stream between frames; [`WireError::TooLarge`] (in words) for
/// a count above `max_words`; otherwise as [`read_head`] and [`read_body`].
pub fn read_word_frame(r: &mut (impl Read + ?Sized), max_words: u64) -> Result<Option<Vec<u64>>> {
    Ok(read_word_bytes(r, max_words)?.map(|body| words_from_bytes(&body)))
}

/// Reads a word frame whose first word is a header, as the header and the words after it. The
/// payload is decoded from the bytes after the header, never shifted down by a word (which
/// costs a copy of every frame, megabytes for correlated randomness).
///
/// # Errors
/// [`WireError::Truncated`] for a frame of no words (no header); otherwise as
/// [`read_word_frame`].
pub fn read_headed_word_frame(
    r: &mut (impl Read + ?Sized),
    max_words: u64,
) -> Result<Option<(u64, Vec<u64>)>> {
    let Some(body) = read_word_bytes(r, max_words)? else {
        return Ok(None);
    };
    let Some((head, payload)) = body.split_first_chunk::<8>() else {
        return Err(WireError::Truncated {
            needed: 8,
            left: body.len(),
        });
    };
    Ok(Some((u64::from_le_bytes(*head), words_from_bytes(payload))))
}

/// The body bytes of a word frame of at most `max_words` words.
fn read_word_bytes(r: &mut (impl Read + ?Sized), max_words: u64) -> Result<Option<Vec<u8>>> {
    let Some(head) = read_head::<8>(r)? else {
        return Ok(None);
    };
    let words = u64::from_le_bytes(head);
    let too_large = WireError::TooLarge {
        len: words,
        max: max_words,
    };
    if words > max_words {
        return Err(too_large);
    }
    let len = words.checked_mul(8).ok_or(too_large)?;
    read_body(r, len, len).map(Some)
}

/// Writes `head` then `body` as one word frame and flushes.
///
/// # Errors
/// Whatever the stream returns.
pub fn write_word_frame(
    w: &mut (impl Write + ?Sized),
    head: &[u64],
    body: &[u64],
) -> std::io::Result<()> {
    let words = head.len() + body.len();
    let mut buf = Vec::with_capacity(8 * (1 + words.min(WRITE_CHUNK_WORDS)));
    buf.extend_from_slice(&(words as u64).to_le_bytes());
    // Encoded a chunk at a time: a large frame costs no second copy of itself.
    let mut all = head.iter().chain(body).peekable();
    while all.peek().is_some() {
        for v in all.by_ref().take(WRITE_CHUNK_WORDS) {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
        buf.clear();
    }
    if !buf.is_empty() {
        w.write_all(&buf)?;
    }
    w.flush()
}

/// Reads a tagged byte frame: a tag byte, an 8-byte little-endian length of at most `max_len`,
/// then the payload. Returns the tag (unchecked: the protocol knows its tags) and the payload.
///
/// # Errors
/// `Ok(None)` at a clean end of stream between frames; otherwise as [`read_head`] and
/// [`read_body`].
pub fn read_tagged_frame(
    r: &mut (impl Read + ?Sized),
    max_len: u64,
) -> Result<Option<(u8, Vec<u8>)>> {
    let Some(head) = read_head::<9>(r)? else {
        return Ok(None);
    };
    let [tag, len @ ..] = head;
    let payload = read_body(r, u64::from_le_bytes(len), max_len)?;
    Ok(Some((tag, payload)))
}

/// Writes a tagged byte frame and flushes.
///
/// # Errors
/// Whatever the stream returns.
pub fn write_tagged_frame(
    w: &mut (impl Write + ?Sized),
    tag: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut head = [tag; 9];
    head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    w.write_all(&head)?;
    w.write_all(payload)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn word_frames_round_trip_across_short_reads() -> Result<()> {
        let mut stream = Vec::new();
        write_word_frame(&mut stream, &[7], &[1, 2, 3])?;
        let big: Vec<u64> = (0..3 * WRITE_CHUNK_WORDS as u64 + 5).collect();
        write_word_frame(&mut stream, &[], &big)?;
        write_word_frame(&mut stream, &[], &[])?;
        let mut r = Trickle {
            data: &stream,
            step: 5,
        };
        let max = 1 << 20;
        assert_eq!(read_word_frame(&mut r, max)?, Some(vec![7, 1, 2, 3]));
        assert_eq!(read_word_frame(&mut r, max)?, Some(big));
        assert_eq!(read_word_frame(&mut r, max)?, Some(vec![]));
        assert_eq!(read_word_frame(&mut r, max)?, None);
        Ok(())
    }

    #[test]
    fn headed_word_frames_split_off_their_header_and_need_one() -> Result<()> {
        let mut stream = Vec::new();
        write_word_frame(&mut stream, &[7], &[1, 2, 3])?;
        write_word_frame(&mut stream, &[9], &[])?;
        write_word_frame(&mut stream, &[], &[])?;
        let mut r = stream.as_slice();
        assert_eq!(read_headed_word_frame(&mut r, 4)?, Some((7, vec![1, 2, 3])));
        assert_eq!(read_headed_word_frame(&mut r, 4)?, Some((9, vec![])));
        assert!(matches!(
            read_headed_word_frame(&mut r, 4),
            Err(WireError::Truncated { needed: 8, left: 0 })
        ));
        assert_eq!(read_headed_word_frame(&mut r, 4)?, None);
        Ok(())
    }

    #[test]
    fn word_frames_are_bounded_and_cut_frames_are_errors() -> Result<()> {
        let mut stream = Vec::new();
        write_word_frame(&mut stream, &[], &[0; 5])?;
        assert!(matches!(
            read_word_frame(&mut stream.as_slice(), 4),
            Err(WireError::TooLarge { len: 5, max: 4 })
        ));
        // A count whose byte length overflows is refused, not wrapped.
        let huge = u64::MAX.to_le_bytes();
        assert!(matches!(
            read_word_frame(&mut huge.as_slice(), u64::MAX),
            Err(WireError::TooLarge { .. })
        ));
        // A lying count within the bound: the stream ends long before, and that is all it costs.
        let mut lying = (1u64 << 40).to_le_bytes().to_vec();
        lying.extend_from_slice(&[1; 12]);
        assert!(matches!(
            read_word_frame(&mut lying.as_slice(), u64::MAX >> 3),
            Err(WireError::CutShort { got: 12, .. })
        ));
        assert!(matches!(
            read_word_frame(&mut [1u8, 0, 0].as_slice(), 8),
            Err(WireError::CutShort {
                got: 3,
                expected: 8
            })
        ));
        Ok(())
    }

    #[test]
    fn tagged_frames_round_trip_and_are_bounded() -> Result<()> {
        let mut stream = Vec::new();
        write_tagged_frame(&mut stream, 5, b"payload")?;
        write_tagged_frame(&mut stream, 9, b"")?;
        let mut r = Trickle {
            data: &stream,
            step: 2,
        };
        assert_eq!(
            read_tagged_frame(&mut r, 7)?,
            Some((5, b"payload".to_vec()))
        );
        assert_eq!(read_tagged_frame(&mut r, 7)?, Some((9, vec![])));
        assert_eq!(read_tagged_frame(&mut r, 7)?, None);
        assert!(matches!(
            read_tagged_frame(&mut stream.as_slice(), 6),
            Err(WireError::TooLarge { len: 7, max: 6 })
        ));
        assert!(matches!(
            read_tagged_frame(&mut &stream[..12], 7),
            Err(WireError::CutShort {
                got: 3,
                expected: 7
            })
        ));
        Ok(())
    }

    #[test]
    fn stream_failures_other_than_interruptions_are_io_errors() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                // Interrupted once (retried), then a timeout (reported).
                let kind = if std::mem::replace(&mut self.0, false) {
                    ErrorKind::Interrupted
                } else {
                    ErrorKind::TimedOut
                };
                Err(kind.into())
            }
        }
        assert!(matches!(
            read_head::<4>(&mut Failing(true)),
            Err(WireError::Io(e)) if e.kind() == ErrorKind::TimedOut
        ));
    }
}
