//! Bytes on the stream: length-prefixed handshake messages, encrypted frames, and the
//! request/response messages carried inside frames. Every decoder is total and bounded.

use std::io::{ErrorKind, Read, Write};

use ppml_nn::model::Normalization;
use ppml_nn::Tensor;

use crate::channel::{parse_header, HEADER_LEN};
use crate::error::FrameError;
use crate::handshake::{Session, MAX_HANDSHAKE_LEN};
use crate::{Result, TeeError};

/// Reads until `buf` is full; `Ok(n < buf.len())` only on end of stream.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads exactly `len` bytes without trusting `len` for the allocation up front.
fn read_body<R: Read>(r: &mut R, len: usize, already: usize) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(FrameError::Truncated {
            got: already + body.len(),
            expected: already + len,
        }
        .into());
    }
    Ok(body)
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
    let mut len = [0u8; 4];
    let got = read_full(r, &mut len)?;
    if got < 4 {
        return Err(FrameError::Truncated { got, expected: 4 }.into());
    }
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
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut self.stream, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(FrameError::Truncated {
                got,
                expected: HEADER_LEN,
            }
            .into());
        }
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

fn put_tensor(t: &Tensor, out: &mut Vec<u8>) -> Result<()> {
    if t.shape().len() > MAX_RANK {
        return Err(proto(format!("tensor of rank {}", t.shape().len())));
    }
    out.push(t.shape().len() as u8);
    for &d in t.shape() {
        let d = u32::try_from(d).map_err(|_| proto("tensor dimension over u32"))?;
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.reserve(t.data().len() * 4);
    for v in t.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

fn put_string(s: &str, out: &mut Vec<u8>) {
    let b = &s.as_bytes()[..s.len().min(MAX_STRING)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(proto(format!(
                "message truncated: needs {n} more bytes, has {}",
                self.b.len()
            )));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn tensor(&mut self) -> Result<Tensor> {
        let rank = self.u8()? as usize;
        if rank > MAX_RANK {
            return Err(proto(format!("tensor of rank {rank}")));
        }
        let mut shape = Vec::with_capacity(rank);
        let mut n: usize = 1;
        for _ in 0..rank {
            let d = self.u32()? as usize;
            n = n
                .checked_mul(d)
                .ok_or_else(|| proto("tensor size overflows"))?;
            shape.push(d);
        }
        let bytes = n
            .checked_mul(4)
            .ok_or_else(|| proto("tensor size overflows"))?;
        let data = self
            .take(bytes)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Tensor::new(shape, data).map_err(|e| proto(e.to_string()))
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| proto("string is not UTF-8"))
    }

    fn end(&self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(proto(format!("{} trailing bytes", self.b.len())))
        }
    }
}

impl Request {
    /// The bytes of `Request::Infer(images)` without copying `images` into a request first.
    pub fn encode_infer(images: &Tensor) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + TENSOR_HEADER_MAX + images.data().len() * 4);
        out.push(T_INFER);
        put_tensor(images, &mut out)?;
        Ok(out)
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
        let mut c = Cursor { b };
        let r = match c.u8()? {
            T_INFER => Request::Infer(c.tensor()?),
            T_INFO => Request::Info,
            t => return Err(proto(format!("unknown request type {t:#x}"))),
        };
        c.end()?;
        Ok(r)
    }
}

impl Response {
    /// The message bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Response::Logits(t) => {
                out.push(T_LOGITS);
                put_tensor(t, &mut out)?;
            }
            Response::Info(i) => {
                out.push(T_INFO_REPLY);
                put_string(&i.name, &mut out);
                for d in i.input {
                    out.extend_from_slice(&d.to_le_bytes());
                }
                out.extend_from_slice(&i.classes.to_le_bytes());
                out.extend_from_slice(&i.normalization.mean.to_le_bytes());
                out.extend_from_slice(&i.normalization.std.to_le_bytes());
                out.extend_from_slice(&i.digest);
            }
            Response::Error(m) => {
                out.push(T_ERROR);
                put_string(m, &mut out);
            }
        }
        Ok(out)
    }

    /// Parses message bytes.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let mut c = Cursor { b };
        let r = match c.u8()? {
            T_LOGITS => Response::Logits(c.tensor()?),
            T_INFO_REPLY => {
                let name = c.string()?;
                let input = [c.u32()?, c.u32()?, c.u32()?];
                let classes = c.u32()?;
                let (mean, std) = (f32::from_bits(c.u32()?), f32::from_bits(c.u32()?));
                if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                    return Err(proto(format!("normalisation mean {mean}, std {std}")));
                }
                let mut digest = [0u8; 32];
                digest.copy_from_slice(c.take(32)?);
                Response::Info(ModelInfo {
                    name,
                    input,
                    classes,
                    normalization: Normalization { mean, std },
                    digest,
                })
            }
            T_ERROR => Response::Error(c.string()?),
            t => return Err(proto(format!("unknown response type {t:#x}"))),
        };
        c.end()?;
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
