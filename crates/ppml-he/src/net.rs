//! Client and server over TLS 1.3 on TCP (the server authenticated by its certificate, see
//! [`ppml_tls`]; no plaintext mode). Frames (inside TLS) are `[tag: u8][length: u64 LE][payload]`, with the length
//! bounded by [`MAX_FRAME`] and read incrementally (a lying header cannot make the reader
//! allocate more than what actually arrives). Everything in a payload is validated before use;
//! any violation is a typed [`HeError`] and, on the server, an error frame to the client.
//!
//! Protocol: client `Hello(mode)` → server `Spec` (parameters and the architecture's public
//! shape) → client `Keys` (relinearisation and Galois keys, never the secret key) → server
//! `Ready`; then any number of `Batch` (throughput: one ciphertext per input) or `One`
//! (latency: the ciphertexts of one image) requests, each answered by `Result` or `Error`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ppml_nn::backend::CallStats;
use ppml_nn::model::Normalization;
use ppml_nn::{Model, Tensor};
use ppml_tls::{Acceptor, ClientStream, Connector};

use crate::client::{Client, ClientSpec, EvaluationKeys};
use crate::error::{HeError, Result};
use crate::server::{Mode, Prepared, Server};
use crate::wire::{Reader, Writer};

/// Largest frame accepted (1 GiB: a full throughput batch of `cnn` is about 140 MB).
pub const MAX_FRAME: u64 = 1 << 30;
/// Most blobs (ciphertexts) in one frame.
pub const MAX_BLOBS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
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

fn write_frame(s: &mut impl Write, tag: Tag, payload: &[u8]) -> Result<()> {
    let mut head = [tag as u8; 9];
    head[1..].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    s.write_all(&head)?;
    s.write_all(payload)?;
    Ok(s.flush()?)
}

fn read_frame(s: &mut impl Read) -> Result<(Tag, Vec<u8>)> {
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
/// This is the decoder of untrusted bytes behind [`serve`] and [`HeClient`]; it is public so
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

fn expect(tag: Tag, want: Tag) -> Result<()> {
    if tag == want {
        Ok(())
    } else {
        Err(HeError::Malformed("unexpected frame"))
    }
}

fn blobs(items: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(items.len());
    items.iter().for_each(|b| w.blob(b));
    w.out
}

fn unblobs(payload: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut r = Reader::new(payload);
    let n = r.u32_max(MAX_BLOBS, "too many blobs in a frame")?;
    let out = (0..n)
        .map(|_| r.blob().map(<[u8]>::to_vec))
        .collect::<Result<Vec<_>>>()?;
    r.finish()?;
    Ok(out)
}

/// How [`serve_with`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Sessions served at once, each on its own thread. A session holds the client's evaluation
    /// keys (tens to hundreds of MB); the encoded model is prepared once per mode and shared
    /// ([`PreparedModels`]), so this bounds the server's memory. Throughput
    /// batches are evaluated one at a time whatever this is (each uses every core and up to
    /// [`crate::throughput::MEMORY_BUDGET`] of ciphertexts); latency calls run concurrently. Further
    /// clients wait in the listen queue (they are not refused) until a session ends; a waiting
    /// client's own timeout bounds how long it waits.
    pub max_sessions: usize,
    /// A session whose client sends nothing (or reads nothing) for this long is closed, so a
    /// stalled client cannot hold a session forever; `None` waits forever.
    pub idle_timeout: Option<Duration>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_sessions: 4,
            idle_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// Serves `model` to every client that connects over TLS as `tls` says, each with its own
/// keys, with the default [`ServeOptions`] (at most four sessions at once). Returns only on a
/// listener error.
pub fn serve(listener: &TcpListener, model: &Model, tls: &Acceptor) -> Result<()> {
    serve_with(listener, model, &ServeOptions::default(), tls)
}

/// Serves `model` to every client that connects: `options.max_sessions` session threads, each
/// serving one connection at a time, and this thread accepting connections and handing each to
/// a free session thread (the next connection is accepted only when one is free, so waiting
/// clients stay in the listen queue). A session thread first runs the TLS handshake (bounded by
/// the idle timeout, like every read), so a client that never completes it holds one session
/// for that long at most. Reusing the same threads keeps the memory they allocate
/// in the same allocator arenas, so the server's memory stays flat over many sessions. A
/// failing session gets an error frame and is closed; it does not affect the others. Returns
/// on a listener error, after the open sessions end, or at once if `max_sessions` is 0.
pub fn serve_with(
    listener: &TcpListener,
    model: &Model,
    options: &ServeOptions,
    tls: &Acceptor,
) -> Result<()> {
    let never = AtomicBool::new(false);
    serve_models(
        listener,
        &PreparedModels::new(model.clone()),
        options,
        tls,
        &never,
    )
}

/// [`serve_with`] for prepared models, until `stop` is set (checked after each accepted
/// connection).
fn serve_models(
    listener: &TcpListener,
    models: &PreparedModels,
    options: &ServeOptions,
    tls: &Acceptor,
    stop: &AtomicBool,
) -> Result<()> {
    if options.max_sessions == 0 {
        return Err(HeError::BadInput {
            expected: "at least one session at a time".into(),
            got: "max_sessions = 0".into(),
        });
    }
    // A rendezvous channel: `send` returns only when a session thread takes the connection.
    let (handoff, queue) = std::sync::mpsc::sync_channel::<TcpStream>(0);
    let queue = Mutex::new(queue);
    std::thread::scope(|scope| {
        // Owned here, so that returning drops it and the session threads stop.
        let handoff = handoff;
        for _ in 0..options.max_sessions {
            let queue = &queue;
            let session = move || loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok(stream) = next else {
                    return; // the acceptor stopped
                };
                // A session's failure (its handshake included) ends that session only.
                let _ = serve_tls(stream, tls, options.idle_timeout, models);
            };
            std::thread::Builder::new()
                .name("ppml-he-session".into())
                .spawn_scoped(scope, session)?;
        }
        loop {
            let (stream, _) = listener.accept()?;
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            if handoff.send(stream).is_err() {
                return Err(HeError::Malformed("every session thread has stopped"));
            }
        }
    })
}

/// Held while a throughput batch is evaluated: one batch at a time in the process.
static BATCH_LOCK: Mutex<()> = Mutex::new(());

/// One model prepared once per mode ([`Prepared`]: plan, parameters, encoded latency weights)
/// and shared by the sessions that ask for that mode, so that a session costs only its client's
/// keys (for `lenet-sq` in latency mode the encoded weights take about 1.2 GB and 8 s).
#[derive(Debug)]
pub struct PreparedModels {
    model: Model,
    by_mode: Mutex<HashMap<u8, Arc<Prepared>>>,
}

impl PreparedModels {
    /// Nothing prepared yet.
    pub fn new(model: Model) -> Self {
        Self {
            model,
            by_mode: Mutex::new(HashMap::new()),
        }
    }

    /// The model prepared for `mode`, prepared now if no session asked for `mode` before.
    /// Preparing happens outside the lock (sessions asking for other modes do not wait); two
    /// first sessions of one mode may both prepare it, and one of the results is kept.
    pub fn get(&self, mode: Mode) -> Result<Arc<Prepared>> {
        let cached = self
            .by_mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&mode.code())
            .cloned();
        if let Some(p) = cached {
            return Ok(p);
        }
        let fresh = Arc::new(Prepared::new(&self.model, mode)?);
        Ok(Arc::clone(
            self.by_mode
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(mode.code())
                .or_insert(fresh),
        ))
    }
}

/// Runs the TLS handshake on `stream` with every read and write bounded by `timeout`, then serves
/// the session ([`serve_prepared`]) and closes it with a TLS close_notify.
fn serve_tls(
    stream: TcpStream,
    tls: &Acceptor,
    timeout: Option<Duration>,
    models: &PreparedModels,
) -> Result<()> {
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    stream.set_nodelay(true)?;
    let mut stream = tls.accept(stream)?;
    let result = serve_prepared(&mut stream, models);
    stream.conn.send_close_notify();
    let _ = stream.flush();
    result
}

/// A server on threads of this process, listening on `127.0.0.1` (for [`crate::HeBackend`]):
/// the same session code as [`serve_with`]. Dropping it stops the server once its sessions end.
pub struct LocalServer {
    addr: SocketAddr,
    models: Arc<PreparedModels>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalServer {
    /// Binds `127.0.0.1:0` and serves `model` there over TLS as `tls` says.
    pub fn spawn(model: Model, options: &ServeOptions, tls: Acceptor) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let models = Arc::new(PreparedModels::new(model));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (models, stop, options) = (Arc::clone(&models), Arc::clone(&stop), options.clone());
            std::thread::Builder::new()
                .name("ppml-he-server".into())
                .spawn(move || serve_models(&listener, &models, &options, &tls, &stop))?
        };
        Ok(Self {
            addr,
            models,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The model as prepared for `mode` (prepared now if no session asked for it yet).
    pub fn prepared(&self, mode: Mode) -> Result<Arc<Prepared>> {
        self.models.get(mode)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves one connection (any byte stream: [`serve_with`] gives it a TLS stream) until the
/// client closes it, preparing the model for this connection alone ([`serve_with`] shares it
/// between connections).
pub fn serve_connection(stream: impl Read + Write, model: &Model) -> Result<()> {
    serve_prepared(stream, &PreparedModels::new(model.clone()))
}

/// Serves one connection (any byte stream) until the client closes it, with the shared prepared
/// models.
pub fn serve_prepared(mut stream: impl Read + Write, models: &PreparedModels) -> Result<()> {
    let result = serve_inner(&mut stream, models);
    if let Err(e) = &result {
        if !matches!(e, HeError::Io(_)) {
            let _ = write_frame(&mut stream, Tag::Error, e.to_string().as_bytes());
        }
    }
    result
}

fn serve_inner(stream: &mut (impl Read + Write), models: &PreparedModels) -> Result<()> {
    let (tag, hello) = read_frame(stream)?;
    expect(tag, Tag::Hello)?;
    let mode = match hello.as_slice() {
        [c] => Mode::from_code(*c).ok_or(HeError::Malformed("unknown mode"))?,
        _ => return Err(HeError::Malformed("bad hello")),
    };
    let (mut server, spec) = Server::new(models.get(mode)?);
    write_frame(stream, Tag::Spec, &spec.to_bytes())?;
    let (tag, keys) = read_frame(stream)?;
    expect(tag, Tag::Keys)?;
    let mut keys = unblobs(&keys)?.into_iter();
    let (Some(relin), Some(galois), None) = (keys.next(), keys.next(), keys.next()) else {
        return Err(HeError::Malformed("keys frame needs exactly two blobs"));
    };
    server.install_keys(&EvaluationKeys { relin, galois })?;
    write_frame(stream, Tag::Ready, &[])?;
    loop {
        let (tag, mut payload) = match read_frame(stream) {
            Err(HeError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        };
        let answer = match tag {
            Tag::Batch => {
                // The frame is freed once split into ciphertexts (hundreds of MB for lenet-sq).
                let request = unblobs(&std::mem::take(&mut payload))?;
                // One throughput batch at a time in the process: a batch already uses every
                // core, and holds up to `throughput::MEMORY_BUDGET` of ciphertexts.
                let _one_batch = BATCH_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
                server.handle_batch(&request)
            }
            Tag::One => server.handle_one(&unblobs(&payload)?).map(|c| vec![c]),
            _ => Err(HeError::Malformed("unexpected frame")),
        };
        match answer {
            Ok(out) => write_frame(stream, Tag::Result, &blobs(&out))?,
            Err(e) => write_frame(stream, Tag::Error, e.to_string().as_bytes())?,
        };
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

/// A client connected to a [`serve`]d model over TLS.
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
        Ok((Tensor::new(vec![n, self.classes], logits)?, stats))
    }
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
    fn a_server_with_no_session_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let model = ppml_nn::zoo::architecture("cnn").expect("zoo");
        let options = ServeOptions {
            max_sessions: 0,
            ..ServeOptions::default()
        };
        let ca = ppml_tls::Ca::generate("test CA").expect("ca");
        let tls = Acceptor::new(&ca.identity("he-server").expect("id"), None).expect("tls");
        assert!(matches!(
            serve_with(&listener, &model, &options, &tls),
            Err(HeError::BadInput { .. })
        ));
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
