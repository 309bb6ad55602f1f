//! The client: [`Client`] holds the secret key, lays out and encrypts images and decrypts
//! logits; it never sees the model's weights, only what the [`ClientSpec`] tells it.
//! [`HeClient`] is the one client path: a [`Client`] connected to a server over TLS (its setup,
//! and the rule of which mode each call uses, [`Mode::runs_latency`]), for `ppml he-client` and
//! for the in-process [`crate::HeBackend`] alike.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ppml_ckks::{Ciphertext, CkksParameters, Complex, Encoder, SecretKey};
use ppml_nn::backend::{CallStats, SetupFacts};
use ppml_nn::model::Normalization;
use ppml_nn::Tensor;
use ppml_tls::{ClientStream, Connector};
use rayon::prelude::*;

use crate::error::{HeError, Result};
use crate::frame::{blobs, expect, read_frame, unblobs, write_frame, Tag};
use crate::keys::EvaluationKeys;
use crate::mode::Mode;
use crate::plan::{InputLayout, Plan};
use crate::spec::ClientSpec;
use crate::trace::span;

/// The client.
pub struct Client {
    params: Arc<CkksParameters>,
    sk: SecretKey,
    encoder: Encoder,
    spec: ClientSpec,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Decodes the server's spec, generates a secret key and the evaluation keys.
    pub fn new(spec: ClientSpec) -> Result<(Self, EvaluationKeys)> {
        let params = CkksParameters::from_bytes(&spec.params)?;
        let sk = SecretKey::generate(&params)?;
        let relin = sk.relinearization_key()?.to_bytes();
        let galois = if spec.rotations.is_empty() && !spec.complex_packing {
            Vec::new()
        } else {
            sk.galois_keys_at_levels(&spec.rotations, spec.complex_packing)?
                .to_bytes()
        };
        let encoder = Encoder::new(&params);
        Ok((
            Self {
                params,
                sk,
                encoder,
                spec,
            },
            EvaluationKeys { relin, galois },
        ))
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.params
    }

    /// Throughput mode: images per batch (the slots, twice over with complex packing).
    pub fn batch_capacity(&self) -> usize {
        self.params.slots() * if self.spec.complex_packing { 2 } else { 1 }
    }

    fn check_images(&self, images: &[&[f32]]) -> Result<()> {
        let [c, h, w] = self.spec.image;
        if let Some(bad) = images.iter().find(|i| i.len() != c * h * w) {
            return Err(HeError::BadInput {
                expected: format!("images of {} values", c * h * w),
                got: bad.len().to_string(),
            });
        }
        Ok(())
    }

    /// Throughput mode: encrypts up to [`Self::batch_capacity`] images, one ciphertext per needed
    /// input: image `b` sits in slot `b mod slots`, in the real part for the first `slots`
    /// images and in the imaginary part for the next ones (complex packing).
    pub fn encrypt_batch(&self, images: &[&[f32]]) -> Result<Vec<Vec<u8>>> {
        self.check_images(images)?;
        if images.len() > self.batch_capacity() {
            return Err(HeError::BadInput {
                expected: format!("at most {} images per batch", self.batch_capacity()),
                got: images.len().to_string(),
            });
        }
        let plan_stub = self.stub(self.spec.layout.clone());
        let inputs: Vec<Vec<f64>> = images.iter().map(|i| plan_stub.layout_input(i)).collect();
        let slots = self.params.slots();
        span("client: encrypt batch", || {
            self.spec
                .needed
                .par_iter()
                .map(|&j| {
                    let vals = inputs
                        .iter()
                        .map(|x| x.get(j as usize).copied())
                        .collect::<Option<Vec<f64>>>()
                        .ok_or(HeError::Malformed("input index outside the layout"))?;
                    let (re, im) = vals.split_at(vals.len().min(slots));
                    let z: Vec<Complex> = re
                        .iter()
                        .enumerate()
                        .map(|(b, &r)| Complex::new(r, im.get(b).copied().unwrap_or(0.0)))
                        .collect();
                    Ok(self
                        .sk
                        .encrypt_complex_values(
                            &self.encoder,
                            &z,
                            self.spec.level,
                            self.params.scale(),
                        )?
                        .to_bytes())
                })
                .collect()
        })
    }

    /// Throughput mode: decrypts the server's answer into `n` rows of logits.
    pub fn decrypt_batch(&self, response: &[Vec<u8>], n: usize) -> Result<Vec<Vec<f32>>> {
        if response.len() != self.spec.outputs {
            return Err(HeError::Malformed("wrong number of output ciphertexts"));
        }
        let cols: Vec<Vec<Complex>> = span("client: decrypt batch", || {
            response
                .par_iter()
                .map(|b| {
                    let ct = Ciphertext::from_bytes(&self.params, b)?;
                    Ok(self.encoder.decode_complex(&self.sk.decrypt(&ct)?)?)
                })
                .collect::<Result<_>>()
        })?;
        let slots = self.params.slots();
        Ok((0..n)
            .map(|b| {
                cols.iter()
                    .map(|c| match c.get(b % slots) {
                        Some(z) if b < slots => z.re as f32,
                        Some(z) => z.im as f32,
                        None => f32::NAN,
                    })
                    .collect()
            })
            .collect())
    }

    /// Latency mode: encrypts one image into the ciphertexts its placement takes.
    pub fn encrypt_one(&self, image: &[f32]) -> Result<Vec<Vec<u8>>> {
        self.check_images(&[image])?;
        let input = self.spec.latency.clone().ok_or(HeError::Unsupported {
            mode: "latency",
            model: String::new(),
            reason: "the server did not set up latency mode".into(),
        })?;
        let x = self.stub(input.layout).layout_input(image);
        input
            .placement
            .lay_out(&x, self.params.slots())
            .par_iter()
            .map(|slots| {
                Ok(self
                    .sk
                    .encrypt_values(&self.encoder, slots, self.spec.level, self.params.scale())?
                    .to_bytes())
            })
            .collect()
    }

    /// Latency mode: decrypts one image's logits.
    pub fn decrypt_one(&self, response: &[u8]) -> Result<Vec<f32>> {
        let ct = Ciphertext::from_bytes(&self.params, response)?;
        let v = self.encoder.decode(&self.sk.decrypt(&ct)?)?;
        Ok(v.iter()
            .take(self.spec.outputs)
            .map(|&x| x as f32)
            .collect())
    }

    fn stub(&self, layout: InputLayout) -> Plan {
        Plan {
            model: String::new(),
            image: self.spec.image,
            layout,
            input_len: self.spec.input_len,
            input_shape: ppml_nn::Shape::Flat(self.spec.input_len),
            stages: Vec::new(),
            shapes: Vec::new(),
        }
    }
}

/// Counts the bytes that pass through a stream: under TLS, the records on the socket.
#[derive(Debug)]
struct Metered<S> {
    inner: S,
    bytes: u64,
}

impl<S: Read> Read for Metered<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<S: Write> Write for Metered<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A client connected to a [`crate::serve`]d model over TLS.
pub struct HeClient {
    stream: ClientStream<Metered<TcpStream>>,
    client: Client,
    mode: Mode,
    /// What the server set up: latency mode, throughput mode.
    latency: bool,
    throughput: bool,
    classes: usize,
    image: [usize; 3],
    normalization: Normalization,
    setup_bytes: u64,
    notes: Vec<String>,
}

impl std::fmt::Debug for HeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeClient")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for HeClient {
    fn drop(&mut self) {
        // Tell the server the session ends here (a TLS close_notify), as far as it listens.
        self.stream.conn.send_close_notify();
        let _ = self.stream.flush();
    }
}

impl HeClient {
    /// Connects over TLS (the server must prove the identity `tls` checks), receives the spec,
    /// generates keys and sends the evaluation keys; waits at most five minutes on any read or
    /// write.
    pub fn connect(addr: impl ToSocketAddrs, tls: &Connector, mode: Mode) -> Result<Self> {
        Self::connect_with(addr, tls, mode, Some(Duration::from_secs(300)))
    }

    /// [`connect`](Self::connect) with a timeout for every read and write (`None`: wait as long
    /// as the server takes).
    pub fn connect_with(
        addr: impl ToSocketAddrs,
        tls: &Connector,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        let sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(timeout)?;
        sock.set_write_timeout(timeout)?;
        let mut stream = tls.connect(Metered {
            inner: sock,
            bytes: 0,
        })?;
        write_frame(&mut stream, Tag::Hello, &[mode.code()])?;
        let (tag, spec) = read_frame(&mut stream)?;
        expect(tag, Tag::Spec)?;
        let spec = ClientSpec::from_bytes(&spec)?;
        let (latency, throughput) = (spec.latency.is_some(), spec.throughput_available());
        let (classes, image, normalization) = (spec.outputs, spec.image, spec.normalization);
        let (client, keys) = Client::new(spec)?;
        let mut notes = vec![format!("relinearisation key: {} bytes", keys.relin.len())];
        if !keys.galois.is_empty() {
            notes.push(format!("Galois keys: {} bytes", keys.galois.len()));
        }
        write_frame(&mut stream, Tag::Keys, &blobs(&[keys.relin, keys.galois]))?;
        let (tag, _) = read_frame(&mut stream)?;
        expect(tag, Tag::Ready)?;
        let setup_bytes = stream.sock.bytes;
        Ok(Self {
            stream,
            client,
            mode,
            latency,
            throughput,
            classes,
            image,
            normalization,
            setup_bytes,
            notes,
        })
    }

    /// One image's shape `[c, h, w]` and the normalisation of the server's model.
    pub fn input(&self) -> ([usize; 3], Normalization) {
        (self.image, self.normalization)
    }

    /// What the client sent at setup (the sizes of its evaluation keys), for humans.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Images per throughput call (the slots, twice over with complex packing).
    pub fn batch_capacity(&self) -> usize {
        self.client.batch_capacity()
    }

    /// What the session set up, typed: the mode its calls use (`auto` only when the server set
    /// up both modes), the ring degree and the input ciphertexts of each mode the calls use.
    pub fn facts(&self) -> SetupFacts {
        let mode = match (self.mode, self.latency, self.throughput) {
            (Mode::Auto, true, false) => Mode::Latency,
            (Mode::Auto, false, _) => Mode::Throughput,
            (mode, _, _) => mode,
        };
        let (params, spec) = (&self.client.params, &self.client.spec);
        SetupFacts {
            mode: Some(mode.name().to_string()),
            ring_degree: Some(params.degree()),
            latency_input_ciphertexts: spec
                .latency
                .as_ref()
                .filter(|_| mode != Mode::Throughput)
                .map(|l| l.placement.ciphertexts(params.slots())),
            throughput_input_ciphertexts: (mode != Mode::Latency && self.throughput)
                .then_some(spec.needed.len()),
            ..SetupFacts::default()
        }
    }

    /// Bytes on the wire during setup, both ways: the TLS handshake, the spec and the evaluation
    /// keys.
    pub fn setup_bytes(&self) -> u64 {
        self.setup_bytes
    }

    /// Classifies preprocessed images `[n, c, h, w]`; returns logits `[n, classes]` and the
    /// bytes on the wire (both ways, TLS records included) and round trips of the call.
    pub fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let n = images.batch();
        let items: Vec<&[f32]> = (0..n).map(|i| images.item(i)).collect();
        let use_latency = self.mode.runs_latency(n, self.latency, self.throughput);
        let mut logits = Vec::with_capacity(n * self.classes);
        let mut stats = CallStats::default();
        let before = self.stream.sock.bytes;
        if use_latency {
            for img in items {
                let req = self.client.encrypt_one(img)?;
                write_frame(&mut self.stream, Tag::One, &blobs(&req))?;
                let (tag, resp) = read_frame(&mut self.stream)?;
                expect(tag, Tag::Result)?;
                stats.rounds += 1;
                let resp = unblobs(&resp)?;
                let first = resp.first().ok_or(HeError::Malformed("empty result"))?;
                logits.extend(self.client.decrypt_one(first)?);
            }
        } else {
            for chunk in items.chunks(self.client.batch_capacity().max(1)) {
                // The request frame is freed once sent (a lenet-sq batch is hundreds of MB).
                let req = blobs(&self.client.encrypt_batch(chunk)?);
                write_frame(&mut self.stream, Tag::Batch, &req)?;
                drop(req);
                let (tag, resp) = read_frame(&mut self.stream)?;
                expect(tag, Tag::Result)?;
                stats.rounds += 1;
                for row in self.client.decrypt_batch(&unblobs(&resp)?, chunk.len())? {
                    logits.extend(row);
                }
            }
        }
        stats.bytes_sent = self.stream.sock.bytes - before;
        // The client and the server are the only two parties.
        stats.client_bytes = stats.bytes_sent;
        Ok((Tensor::new(vec![n, self.classes], logits)?, stats))
    }
}
