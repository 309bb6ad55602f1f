//! The frames client and server exchange inside TLS: `[tag: u8][length: u64 LE][payload]`,
//! the length bounded by [`MAX_FRAME`] and read incrementally (a lying header cannot make the
//! reader allocate more than what actually arrives). Keys, batch and result payloads are lists
//! of length-prefixed blobs (ciphertexts). Frames run over any `Read + Write` stream.

use std::io::{Read, Write};

use crate::error::{HeError, Result};
use crate::wire::{Reader, Writer};

/// Largest frame accepted (1 GiB: a full throughput batch of `cnn` is about 140 MB).
pub const MAX_FRAME: u64 = 1 << 30;
/// Most blobs (ciphertexts) in one frame.
pub const MAX_BLOBS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Hello = 1,
    Spec = 2,
    Keys = 3,
    Ready = 4,
    Batch = 5,
    One = 6,
    Result = 7,
    Error = 8,
}

impl Tag {
    fn from_u8(t: u8) -> Result<Self> {
        Ok(match t {
            1 => Tag::Hello,
            2 => Tag::Spec,
            3 => Tag::Keys,
            4 => Tag::Ready,
            5 => Tag::Batch,
            6 => Tag::One,
            7 => Tag::Result,
            8 => Tag::Error,
            _ => return Err(HeError::Malformed("unknown frame tag")),
        })
    }
}

pub(crate) fn write_frame(s: &mut impl Write, tag: Tag, payload: &[u8]) -> Result<()> {
    let mut head = [tag as u8; 9];
    head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    s.write_all(&head)?;
    s.write_all(payload)?;
    Ok(s.flush()?)
}

pub(crate) fn read_frame(s: &mut impl Read) -> Result<(Tag, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head)?;
    let tag = Tag::from_u8(head[0])?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[1..]);
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(HeError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let mut buf = Vec::new();
    s.take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(HeError::Malformed("connection closed inside a frame"));
    }
    if tag == Tag::Error {
        return Err(HeError::Remote(String::from_utf8_lossy(&buf).into_owned()));
    }
    Ok((tag, buf))
}

/// Reads one frame from `r` exactly as the client and the server read every frame: the 9-byte
/// header (`[tag: u8][length: u64 LE]`), a length bounded by [`MAX_FRAME`] and read
/// incrementally (at most what actually arrives is allocated), then the payload. Returns the
/// tag byte (1 hello, 2 spec, 3 keys, 4 ready, 5 batch, 6 one, 7 result) and the payload.
///
/// # Errors
/// [`HeError::Malformed`] for an unknown tag or a stream that ends inside the frame,
/// [`HeError::FrameTooLarge`] for a length above [`MAX_FRAME`], [`HeError::Remote`] with the
/// peer's message for an error frame (tag 8), and [`HeError::Io`] if the header is cut short.
///
/// This is the decoder of untrusted bytes behind [`crate::serve`] and [`crate::HeClient`]; it is public so
/// that it can be fuzzed (`fuzz` target `he_frame`) and used by tools that inspect traffic.
pub fn decode_frame(r: &mut impl Read) -> Result<(u8, Vec<u8>)> {
    read_frame(r).map(|(tag, payload)| (tag as u8, payload))
}

/// Decodes the payload of a keys, batch or result frame: a `u32` count (at most
/// [`MAX_BLOBS`]) of length-prefixed byte strings, each bounded by what remains of the payload,
/// with nothing left over.
///
/// # Errors
/// [`HeError::Malformed`] for a count above the bound, a length past the end, or trailing bytes.
pub fn decode_blobs(payload: &[u8]) -> Result<Vec<Vec<u8>>> {
    unblobs(payload)
}

pub(crate) fn expect(tag: Tag, want: Tag) -> Result<()> {
    if tag == want {
        Ok(())
    } else {
        Err(HeError::Malformed("unexpected frame"))
    }
}

pub(crate) fn blobs(items: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(items.len());
    items.iter().for_each(|b| w.blob(b));
    w.out
}

pub(crate) fn unblobs(payload: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader::new(payload);
    let n = r.u32_max(MAX_BLOBS, "too many blobs in a frame")?;
    let out = (0..n)
        .map(|_| r.blob().map(<[u8]>::to_vec))
        .collect::<Result<Vec<_>>>()?;
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_unknown_frames_are_rejected() {
        let mut big = vec![Tag::Batch as u8];
        big.extend_from_slice(&(MAX_FRAME + 1).to_le_bytes());
        assert!(matches!(
            read_frame(&mut big.as_slice()),
            Err(HeError::FrameTooLarge { .. })
        ));
        let mut unknown = vec![99u8];
        unknown.extend_from_slice(&0u64.to_le_bytes());
        assert!(matches!(
            read_frame(&mut unknown.as_slice()),
            Err(HeError::Malformed(_))
        ));
        let mut short = vec![Tag::One as u8];
        short.extend_from_slice(&100u64.to_le_bytes());
        short.extend_from_slice(&[0; 10]);
        assert!(matches!(
            read_frame(&mut short.as_slice()),
            Err(HeError::Malformed(_))
        ));
    }

    #[test]
    fn the_public_decoders_read_what_the_writers_write() {
        let payload = blobs(&[vec![7; 3], vec![]]);
        let mut stream = Vec::new();
        write_frame(&mut stream, Tag::Result, &payload).expect("write to a Vec");
        write_frame(&mut stream, Tag::Error, b"no").expect("write to a Vec");
        let mut r = stream.as_slice();
        let (tag, got) = decode_frame(&mut r).expect("a frame");
        assert_eq!(
            (tag, got.as_slice()),
            (Tag::Result as u8, payload.as_slice())
        );
        assert_eq!(decode_blobs(&got).expect("blobs"), vec![vec![7; 3], vec![]]);
        assert!(matches!(decode_frame(&mut r), Err(HeError::Remote(m)) if m == "no"));
        assert!(matches!(decode_frame(&mut r), Err(HeError::Io(_))));
    }

    #[test]
    fn blob_lists_are_bounds_checked() {
        let ok = blobs(&[vec![1, 2], vec![3]]);
        assert_eq!(unblobs(&ok).expect("valid"), vec![vec![1, 2], vec![3]]);
        assert!(unblobs(&ok[..ok.len() - 1]).is_err());
        let mut lying = Writer::default();
        lying.u32(2);
        lying.u32(1 << 30);
        assert!(unblobs(&lying.out).is_err());
        let mut many = Writer::default();
        many.u32(MAX_BLOBS + 1);
        assert!(unblobs(&many.out).is_err());
    }
}
