//! The frames client and server exchange inside TLS: `[tag: u8][length: u64 LE][payload]`,
//! the length bounded by [`MAX_FRAME`] and read incrementally (a lying header cannot make the
//! reader allocate more than what actually arrives). Keys, batch and result payloads are lists
//! of length-prefixed blobs (ciphertexts). Frames run over any `Read + Write` stream.

use std::io::{Read, Write};

use ppml_wire::{frame, Cursor, Writer};

use crate::error::{HeError, Result};
use crate::wire::{ReadLen, WriteLen};

/// Largest frame accepted (1 GiB: a full throughput batch of `cnn` is about 140 MB).
pub const MAX_FRAME: u64 = 1 << 30;
/// Most blobs (ciphertexts) in one frame.
pub const MAX_BLOBS: usize = 1 << 20;

/// What a frame carries, its first byte (1 to 8, in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    /// Client to server: the mode byte.
    Hello = 1,
    /// Server to client: the [`crate::spec::ClientSpec`].
    Spec,
    /// Client to server: the relinearisation and Galois keys, as blobs.
    Keys,
    /// Server to client: the keys are installed (empty).
    Ready,
    /// Client to server: a throughput batch of ciphertexts, as blobs.
    Batch,
    /// Client to server: one latency-mode ciphertext, as a blob.
    One,
    /// Server to client: the output ciphertexts, as blobs.
    Result,
    /// Server to client: why the session ends (UTF-8).
    Error,
}

impl Tag {
    const ALL: [Tag; 8] = [
        Tag::Hello,
        Tag::Spec,
        Tag::Keys,
        Tag::Ready,
        Tag::Batch,
        Tag::One,
        Tag::Result,
        Tag::Error,
    ];

    fn from_u8(t: u8) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|&tag| tag as u8 == t)
            .ok_or(HeError::Malformed("unknown frame tag"))
    }
}

pub(crate) fn write_frame(s: &mut impl Write, tag: Tag, payload: &[u8]) -> Result<()> {
    Ok(frame::write_tagged_frame(s, tag as u8, payload)?)
}

pub(crate) fn read_frame(s: &mut impl Read) -> Result<(Tag, Vec<u8>)> {
    let (tag, buf) = frame::read_tagged_frame(s, MAX_FRAME)?
        .ok_or_else(|| HeError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
    let tag = Tag::from_u8(tag)?;
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
/// [`HeError::Malformed`] for an unknown tag or a stream that ends inside the frame (header or
/// payload), [`HeError::FrameTooLarge`] for a length above [`MAX_FRAME`], [`HeError::Remote`]
/// with the peer's message for an error frame (tag 8), and [`HeError::Io`] if the stream ends
/// before the frame or fails.
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
    w.len32(items.len());
    items.iter().for_each(|b| w.blob(b));
    w.into_bytes()
}

pub(crate) fn unblobs(payload: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Cursor::new(payload);
    let n = r.u32_max(MAX_BLOBS, "too many blobs in a frame")?;
    let out = (0..n)
        .map(|_| r.blob().map(<[u8]>::to_vec))
        .collect::<Result<Vec<_>, _>>()?;
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
        assert!(unblobs(&lying.into_bytes()).is_err());
        let mut many = Writer::default();
        many.len32(MAX_BLOBS + 1);
        assert!(unblobs(&many.into_bytes()).is_err());
    }
}
