//! The HE server's session handling: [`serve_with`] accepts TLS connections and serves each on
//! one of `max_sessions` session threads (handshake, `Hello(mode)` → `Spec` → `Keys` → `Ready`,
//! then `Batch` and `One` requests until the client closes), with the model prepared once per
//! mode and shared ([`PreparedModels`]); [`LocalServer`] runs the same on threads of this
//! process for [`crate::HeBackend`]. A failing session gets an error frame and is closed; the
//! others go on.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ppml_nn::Model;
use ppml_tls::Acceptor;

use crate::error::{HeError, Result};
use crate::evaluator::{Prepared, SessionEvaluator};
use crate::frame::{blobs, expect, read_frame, unblobs, write_frame, Tag};
use crate::keys::EvaluationKeys;
use crate::mode::Mode;

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
    let (mut server, spec) = SessionEvaluator::new(models.get(mode)?);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
