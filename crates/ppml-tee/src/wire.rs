//! Bytes on the stream: length-prefixed handshake messages, encrypted frames, and the
//! request/response messages carried inside frames. Every decoder is total and bounded.

use std::io::{Read, Write};

use ppml_nn::model::Normalization;
use ppml_nn::Tensor;
use ppml_wire::{frame, Cursor, WireError, Writer};

use crate::channel::{parse_header, HEADER_LEN};
use crate::error::FrameError;
use crate::handshake::Session;
use crate::hello::MAX_HANDSHAKE_LEN;
use crate::{Result, TeeError};

/// A frame-level wire error as the channel's: a stream that ends counts the `already` bytes of
/// the frame read before the part that was cut short.
fn frame_error(e: WireError, already: usize) -> TeeError {
    match e {
        WireError::CutShort { got, expected } => FrameError::Truncated {
            got: already + got as usize,
            expected: already + expected as usize,
        }
        .into(),
        WireError::TooLarge { len, max } => FrameError::TooLarge { len, max }.into(),
        WireError::Io(e) => TeeError::Io(e),
        e => proto(e.to_string()),
    }
}

/// Reads a header of `N` bytes (a clean end of stream is `Ok(None)`).
fn read_head<const N: usize>(r: &mut impl Read) -> Result<Option<[u8; N]>> {
    frame::read_head(r).map_err(|e| frame_error(e, 0))
}

/// Reads the `len` bytes after a header of `already` bytes, growing as they arrive.
fn read_body(r: &mut impl Read, len: usize, already: usize) -> Result<Vec<u8>> {
    frame::read_body(r, len as u64, len as u64).map_err(|e| frame_error(e, already))
}

/// Writes a handshake message with its `u32` big-endian length.
pub fn write_handshake<W: Write>(w: &mut W, msg: &[u8]) -> Result<u64> {
    let len = u32::try_from(msg.len())
        .map_err(|_| TeeError::Handshake("handshake message too large".into()))?;
    let mut out = Vec::with_capacity(4 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    w.write_all(&out)?;
    w.flush()?;
    Ok(out.len() as u64)
}

/// Reads a handshake message (at most [`MAX_HANDSHAKE_LEN`] bytes).
pub fn read_handshake<R: Read>(r: &mut R) -> Result<Vec<u8>> {
    let len = read_head::<4>(r)?.ok_or(FrameError::Truncated {
        got: 0,
        expected: 4,
    })?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HANDSHAKE_LEN {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: MAX_HANDSHAKE_LEN as u64,
        }
        .into());
    }
    read_body(r, len, 4)
}

/// An established session over a byte stream, counting bytes both ways.
#[derive(Debug)]
pub struct SecureStream<S> {
    stream: S,
    session: Session,
    bytes_sent: u64,
    bytes_received: u64,
}

impl<S: Read + Write> SecureStream<S> {
    /// Wraps `stream` with an established `session`.
    pub fn new(stream: S, session: Session) -> Self {
        Self {
            stream,
            session,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    /// Encrypts and sends one message as one frame.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let frame = self.session.sealer.seal(msg)?;
        self.stream.write_all(&frame)?;
        self.stream.flush()?;
        self.bytes_sent += frame.len() as u64;
        Ok(())
    }

    /// Receives and decrypts the next frame; `None` when the peer closed the stream cleanly
    /// between frames. Any rejected frame is an error and the session should end.
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(header) = read_head::<HEADER_LEN>(&mut self.stream)? else {
            return Ok(None);
        };
        let h = parse_header(&header, self.session.opener.max_frame())?;
        let body = read_body(&mut self.stream, h.len, HEADER_LEN)?;
        self.bytes_received += (HEADER_LEN + body.len()) as u64;
        Ok(Some(self.session.opener.open_parts(&header, h, &body)?))
    }

    /// Bytes written to the stream so far (frames, headers included).
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Bytes of accepted frames read from the stream so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

/// What the enclave reports about the model it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// The model's name.
    pub name: String,
    /// One image's shape `[c, h, w]`.
    pub input: [u32; 3],
    /// Number of logits per image.
    pub classes: u32,
    /// How the client must turn pixels into inputs (finite, positive `std`).
    pub normalization: Normalization,
    /// [`crate::service::model_digest`] of the model (architecture and weights).
    pub digest: [u8; 32],
}

/// A client request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Classify a batch `[n, c, h, w]`.
    Infer(Tensor),
    /// Describe the model.
    Info,
}

/// An enclave response.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// Logits `[n, classes]`.
    Logits(Tensor),
    /// The model description.
    Info(ModelInfo),
    /// The request failed (the message names no secret).
    Error(String),
}

const T_INFER: u8 = 1;
const T_INFO: u8 = 2;
const T_LOGITS: u8 = 0x81;
const T_INFO_REPLY: u8 = 0x82;
const T_ERROR: u8 = 0xEE;
/// The largest rank of a tensor on the wire.
const MAX_RANK: usize = 8;
/// The largest tensor header: rank and up to [`MAX_RANK`] dimensions.
const TENSOR_HEADER_MAX: usize = 1 + MAX_RANK * 4;
/// The longest string on the wire.
const MAX_STRING: usize = 4096;

fn proto(reason: impl Into<String>) -> TeeError {
    TeeError::Protocol(reason.into())
}

fn put_tensor(t: &Tensor, w: &mut Writer) -> Result<()> {
    if t.shape().len() > MAX_RANK {
        return Err(proto(format!("tensor of rank {}", t.shape().len())));
    }
    w.u8(t.shape().len() as u8);
    for &d in t.shape() {
        w.u32(u32::try_from(d).map_err(|_| proto("tensor dimension over u32"))?);
    }
    w.reserve(t.data().len() * 4);
    t.data().iter().for_each(|&v| w.f32(v));
    Ok(())
}

fn put_string(s: &str, w: &mut Writer) {
    let b = &s.as_bytes()[..s.len().min(MAX_STRING)];
    w.u16(b.len() as u16);
    w.bytes(b);
}

fn get_tensor(c: &mut Cursor<'_>) -> Result<Tensor> {
    let rank = c.u8()? as usize;
    if rank > MAX_RANK {
        return Err(proto(format!("tensor of rank {rank}")));
    }
    let mut shape = Vec::with_capacity(rank);
    let mut n: usize = 1;
    for _ in 0..rank {
        let d = c.u32()? as usize;
        n = n
            .checked_mul(d)
            .ok_or_else(|| proto("tensor size overflows"))?;
        shape.push(d);
    }
    let bytes = n
        .checked_mul(4)
        .ok_or_else(|| proto("tensor size overflows"))?;
    let data = c
        .take(bytes)?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::new(shape, data).map_err(|e| proto(e.to_string()))
}

fn get_string(c: &mut Cursor<'_>) -> Result<String> {
    let n = c.u16()? as usize;
    String::from_utf8(c.take(n)?.to_vec()).map_err(|_| proto("string is not UTF-8"))
}

impl Request {
    /// The bytes of `Request::Infer(images)` without copying `images` into a request first.
    pub fn encode_infer(images: &Tensor) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        w.reserve(1 + TENSOR_HEADER_MAX + images.data().len() * 4);
        w.u8(T_INFER);
        put_tensor(images, &mut w)?;
        Ok(w.into_bytes())
    }

    /// The message bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        match self {
            Request::Infer(t) => Self::encode_infer(t),
            Request::Info => Ok(vec![T_INFO]),
        }
    }

    /// Parses message bytes.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(b);
        let r = match c.u8()? {
            T_INFER => Request::Infer(get_tensor(&mut c)?),
            T_INFO => Request::Info,
            t => return Err(proto(format!("unknown request type {t:#x}"))),
        };
        c.finish()?;
        Ok(r)
    }
}

impl Response {
    /// The message bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        match self {
            Response::Logits(t) => {
                w.u8(T_LOGITS);
                put_tensor(t, &mut w)?;
            }
            Response::Info(i) => {
                w.u8(T_INFO_REPLY);
                put_string(&i.name, &mut w);
                i.input.iter().for_each(|&d| w.u32(d));
                w.u32(i.classes);
                w.f32(i.normalization.mean);
                w.f32(i.normalization.std);
                w.bytes(&i.digest);
            }
            Response::Error(m) => {
                w.u8(T_ERROR);
                put_string(m, &mut w);
            }
        }
        Ok(w.into_bytes())
    }

    /// Parses message bytes.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(b);
        let r = match c.u8()? {
            T_LOGITS => Response::Logits(get_tensor(&mut c)?),
            T_INFO_REPLY => {
                let name = get_string(&mut c)?;
                let input = [c.u32()?, c.u32()?, c.u32()?];
                let classes = c.u32()?;
                let (mean, std) = (c.f32()?, c.f32()?);
                if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                    return Err(proto(format!("normalisation mean {mean}, std {std}")));
                }
                let digest = c.array()?;
                Response::Info(ModelInfo {
                    name,
                    input,
                    classes,
                    normalization: Normalization { mean, std },
                    digest,
                })
            }
            T_ERROR => Response::Error(get_string(&mut c)?),
            t => return Err(proto(format!("unknown response type {t:#x}"))),
        };
        c.finish()?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let t = Tensor::new(vec![2, 1, 2, 2], (0..8).map(|i| i as f32 - 3.5).collect()).unwrap();
        let r = Request::Infer(t.clone());
        assert_eq!(Request::decode(&r.encode().unwrap()).unwrap(), r);
        assert_eq!(
            Request::decode(&Request::Info.encode().unwrap()).unwrap(),
            Request::Info
        );
        for resp in [
            Response::Logits(t),
            Response::Error("bad shape".into()),
            Response::Info(ModelInfo {
                name: "lenet".into(),
                input: [1, 28, 28],
                classes: 10,
                normalization: Normalization {
                    mean: 0.5,
                    std: 0.25,
                },
                digest: [7; 32],
            }),
        ] {
            assert_eq!(Response::decode(&resp.encode().unwrap()).unwrap(), resp);
        }
        // A zero or non-finite std would divide pixels by nothing: refused.
        let mut bad = Response::Info(ModelInfo {
            name: "m".into(),
            input: [1, 2, 2],
            classes: 2,
            normalization: Normalization::default(),
            digest: [0; 32],
        })
        .encode()
        .unwrap();
        let at = bad.len() - 32 - 4;
        bad[at..at + 4].copy_from_slice(&0f32.to_le_bytes());
        assert!(Response::decode(&bad).is_err());
    }

    #[test]
    fn lying_sizes_are_refused() {
        // rank 2, dims 2^31 x 2^31: overflow on 32-bit, far beyond the data everywhere.
        let mut m = vec![T_INFER, 2];
        m.extend_from_slice(&(1u32 << 31).to_le_bytes());
        m.extend_from_slice(&(1u32 << 31).to_le_bytes());
        assert!(Request::decode(&m).is_err());
        assert!(Request::decode(&[T_INFER, 9]).is_err());
        assert!(Request::decode(&[T_INFO, 0]).is_err());
        assert!(Response::decode(&[]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoders_are_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes);
            let _ = read_handshake(&mut &bytes[..]);
        }
    }
}
