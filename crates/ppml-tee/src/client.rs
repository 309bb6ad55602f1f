//! The client: connects, verifies the enclave's evidence, then sends images over the channel.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use ppml_nn::Tensor;

use crate::channel::{DEFAULT_MAX_FRAME, HEADER_LEN, TAG_LEN};
use crate::handshake::ClientHandshake;
use crate::verify::{Verified, VerifyPolicy};
use crate::wire::{read_handshake, write_handshake, ModelInfo, Request, Response, SecureStream};
use crate::{Result, TeeError};

/// An attested session with an enclave.
#[derive(Debug)]
pub struct TeeClient {
    chan: SecureStream<TcpStream>,
    verified: Verified,
    handshake_bytes: u64,
    handshake_seconds: f64,
    max_frame: usize,
}

/// Bytes of a tensor message besides its data (type, rank and up to 8 dimensions).
const TENSOR_OVERHEAD: usize = 2 + 8 * 4;

impl TeeClient {
    /// Connects to `addr`, runs the handshake and verifies the evidence under `policy`. Nothing
    /// is sent encrypted unless the evidence is accepted.
    pub fn connect(addr: impl ToSocketAddrs, policy: &VerifyPolicy) -> Result<Self> {
        Self::connect_with(addr, policy, DEFAULT_MAX_FRAME, Duration::from_secs(300))
    }

    /// [`connect`](Self::connect) with a frame bound and a timeout for every read and write.
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        policy: &VerifyPolicy,
        max_frame: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let (hs, hello) = ClientHandshake::start()?;
        let mut bytes = write_handshake(&mut stream, &hello)?;
        let reply = read_handshake(&mut stream)?;
        bytes += 4 + reply.len() as u64;
        let (session, verified) = hs.finish(&reply, policy, max_frame)?;
        Ok(Self {
            chan: SecureStream::new(stream, session),
            verified,
            handshake_bytes: bytes,
            handshake_seconds: start.elapsed().as_secs_f64(),
            max_frame,
        })
    }

    /// What the verification established (mode, measurement, TCB status).
    pub fn attestation(&self) -> &Verified {
        &self.verified
    }

    /// Bytes of the handshake, both directions.
    pub fn handshake_bytes(&self) -> u64 {
        self.handshake_bytes
    }

    /// Wall time of connect + handshake + verification.
    pub fn handshake_seconds(&self) -> f64 {
        self.handshake_seconds
    }

    /// Frame bytes exchanged after the handshake, both directions.
    pub fn channel_bytes(&self) -> u64 {
        self.chan.bytes_sent() + self.chan.bytes_received()
    }

    fn call(&mut self, msg: &[u8]) -> Result<Response> {
        self.chan.send(msg)?;
        let msg = self
            .chan
            .recv()?
            .ok_or_else(|| TeeError::Protocol("the enclave closed the connection".into()))?;
        Response::decode(&msg)
    }

    /// Describes the enclave's model.
    pub fn model_info(&mut self) -> Result<ModelInfo> {
        match self.call(&Request::Info.encode()?)? {
            Response::Info(i) => Ok(i),
            Response::Error(e) => Err(TeeError::Remote(e)),
            Response::Logits(_) => Err(TeeError::Protocol("expected model info".into())),
        }
    }

    /// Classifies `images` `[n, c, h, w]`, splitting the batch so that no frame exceeds the
    /// bound; returns logits `[n, classes]` and the number of request/response rounds.
    pub fn infer_counted(&mut self, images: &Tensor) -> Result<(Tensor, u64)> {
        let n = images.batch();
        let item = images.item_len().max(1) * 4;
        let room = self
            .max_frame
            .saturating_sub(HEADER_LEN + TAG_LEN + TENSOR_OVERHEAD);
        let per_frame = (room / item).max(1);
        if n <= per_frame {
            return Ok((self.infer_one(images)?, 1));
        }
        let mut shape = Vec::new();
        let mut data = Vec::new();
        let mut rounds = 0;
        let mut start = 0;
        while start < n {
            let end = (start + per_frame).min(n);
            let part = self.infer_one(&images.slice_batch(start, end))?;
            if shape.is_empty() {
                shape = part.shape().to_vec();
            }
            data.extend_from_slice(part.data());
            rounds += 1;
            start = end;
        }
        if let Some(first) = shape.first_mut() {
            *first = n;
        }
        Ok((Tensor::new(shape, data)?, rounds))
    }

    /// Classifies `images` `[n, c, h, w]`; returns logits `[n, classes]`.
    pub fn infer(&mut self, images: &Tensor) -> Result<Tensor> {
        Ok(self.infer_counted(images)?.0)
    }

    fn infer_one(&mut self, images: &Tensor) -> Result<Tensor> {
        match self.call(&Request::encode_infer(images)?)? {
            Response::Logits(t) if t.batch() == images.batch() && t.shape().len() == 2 => Ok(t),
            Response::Logits(t) => Err(TeeError::Protocol(format!(
                "logits of shape {:?} for a batch of {}",
                t.shape(),
                images.batch()
            ))),
            Response::Error(e) => Err(TeeError::Remote(e)),
            Response::Info(_) => Err(TeeError::Protocol("expected logits".into())),
        }
    }
}
