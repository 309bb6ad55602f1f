//! The enclave service: holds the model, attests each session, answers inference requests.
//!
//! One thread per connection, at most [`EnclaveOptions::max_connections`] at once (further
//! connections are closed at once). Each connection: handshake (bounded by a timeout), then
//! requests until the client closes, the idle timeout passes, or a frame is rejected, which ends
//! the connection (fail closed).

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ppml_nn::{engine, Model, Tensor};
use sha2::{Digest, Sha256};

use crate::channel::DEFAULT_MAX_FRAME;
use crate::evidence::{detect, EvidenceProvider, ProviderChoice, TeeMode};
use crate::handshake::enclave_handshake;
use crate::quote::Measurement;
use crate::wire::{read_handshake, write_handshake, ModelInfo, Request, Response, SecureStream};
use crate::{Result, TeeError};

/// Where the enclave gets its model.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// A model already in memory (the in-process benchmark path).
    Model(Model),
    /// A plain model file; under Gramine, a file on an encrypted mount keyed to MRENCLAVE,
    /// which Gramine decrypts inside the enclave.
    File(PathBuf),
    /// Under Gramine: `sealed` on an encrypted mount keyed to MRENCLAVE; if it does not exist
    /// yet, the model is read from `plain` (a trusted file, its hash fixed by the manifest) and
    /// written to `sealed`, which Gramine encrypts. One manifest (one MRENCLAVE) serves both the
    /// provisioning run and later runs, after which `plain` can be deleted from the host.
    Provisioned {
        /// The model file on the encrypted mount.
        sealed: PathBuf,
        /// The plaintext model, read only when `sealed` does not exist yet.
        plain: PathBuf,
    },
    /// A model sealed with [`crate::seal`] and the sealing key file that opens it.
    Sealed {
        /// The sealed model file.
        path: PathBuf,
        /// The 32-byte sealing key file.
        key: PathBuf,
    },
}

impl ModelSource {
    /// Loads (and if sealed, opens) the model.
    pub fn load(self) -> Result<Model> {
        match self {
            ModelSource::Model(m) => Ok(m),
            ModelSource::File(p) => Ok(ppml_nn::io::load(&p)?),
            ModelSource::Provisioned { sealed, plain } => {
                if sealed.exists() {
                    return Ok(ppml_nn::io::load(&sealed)?);
                }
                let model = ppml_nn::io::load(&plain)?;
                ppml_nn::io::save(&model, &sealed)?;
                Ok(model)
            }
            ModelSource::Sealed { path, key } => crate::seal::unseal_file(&path, &key),
        }
    }
}

/// How the enclave service runs.
#[derive(Clone, Debug)]
pub struct EnclaveOptions {
    /// Which evidence provider to use.
    pub provider: ProviderChoice,
    /// Connections served at once.
    pub max_connections: usize,
    /// The bound on one frame's ciphertext.
    pub max_frame: usize,
    /// Time allowed for a client to send its hello.
    pub handshake_timeout: Duration,
    /// A connection idle this long is closed; `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// Write one line per connection event to stderr (peer address and error kind; never keys,
    /// images or logits).
    pub log: bool,
}

impl Default for EnclaveOptions {
    fn default() -> Self {
        Self {
            provider: ProviderChoice::Auto,
            max_connections: 16,
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            log: false,
        }
    }
}

/// SHA-256 over the model's architecture (JSON, without weights) and every weight, so a client
/// can check that the enclave holds the model it expects.
pub fn model_digest(model: &Model) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ppml-tee/v1 model");
    let arch = serde_json::to_vec(model).unwrap_or_default();
    h.update((arch.len() as u64).to_le_bytes());
    h.update(&arch);
    for layer in &model.layers {
        for (_, _, data) in layer.params() {
            h.update((data.len() as u64).to_le_bytes());
            for v in data {
                h.update(v.to_le_bytes());
            }
        }
    }
    h.finalize().into()
}

/// What each connection thread shares.
#[derive(Debug)]
struct Shared {
    model: Model,
    info: ModelInfo,
    provider: Box<dyn EvidenceProvider>,
    options: EnclaveOptions,
    active: AtomicUsize,
}

/// A bound enclave service, ready to [`run`](Enclave::run) or [`spawn`](Enclave::spawn).
#[derive(Debug)]
pub struct Enclave {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Enclave {
    /// Loads the model, chooses the evidence provider and binds `listen`.
    pub fn bind(
        source: ModelSource,
        listen: impl ToSocketAddrs,
        options: EnclaveOptions,
    ) -> Result<Self> {
        let model = source.load()?;
        let provider = detect(options.provider)?;
        Self::new(TcpListener::bind(listen)?, model, provider, options)
    }

    /// An enclave on an existing listener with a given provider.
    pub fn new(
        listener: TcpListener,
        model: Model,
        provider: Box<dyn EvidenceProvider>,
        options: EnclaveOptions,
    ) -> Result<Self> {
        let classes = model.classes()?;
        if options.max_connections == 0 || options.max_frame < 1024 {
            return Err(TeeError::Invalid(
                "max_connections must be positive and max_frame at least 1024".into(),
            ));
        }
        let to_u32 =
            |v: usize| u32::try_from(v).map_err(|_| TeeError::Invalid("model too large".into()));
        let info = ModelInfo {
            name: model.name.clone(),
            input: [
                to_u32(model.input[0])?,
                to_u32(model.input[1])?,
                to_u32(model.input[2])?,
            ],
            classes: to_u32(classes)?,
            normalization: model.normalization,
            digest: model_digest(&model),
        };
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                model,
                info,
                provider,
                options,
                active: AtomicUsize::new(0),
            }),
        })
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The evidence mode.
    pub fn mode(&self) -> TeeMode {
        self.shared.provider.mode()
    }

    /// The measurement clients must expect, when known in advance (simulated mode; under SGX,
    /// MRENCLAVE comes from `gramine-sgx-sign` at build time).
    pub fn measurement(&self) -> Option<Measurement> {
        self.shared.provider.measurement()
    }

    /// The model the enclave serves.
    pub fn model_info(&self) -> &ModelInfo {
        &self.shared.info
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<()> {
        accept_loop(self.listener, self.shared, Arc::new(AtomicBool::new(false)))
    }

    /// Serves on a background thread; the handle stops it when dropped.
    pub fn spawn(self) -> Result<EnclaveHandle> {
        let addr = self.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ppml-enclave".into())
            .spawn(move || accept_loop(self.listener, self.shared, s))?;
        Ok(EnclaveHandle {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

/// A running enclave service on a background thread.
#[derive(Debug)]
pub struct EnclaveHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl EnclaveHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the accept loop (open connections finish on
    /// their own when their clients close).
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| TeeError::Invalid("enclave accept thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for EnclaveHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Serves `model` on `listener` with `provider` until the process ends.
pub fn serve(
    listener: TcpListener,
    model: Model,
    provider: Box<dyn EvidenceProvider>,
    options: EnclaveOptions,
) -> Result<()> {
    Enclave::new(listener, model, provider, options)?.run()
}

/// The entry point of `ppml enclave`: loads the model, picks the provider, binds `listen` and
/// serves until the process ends. Use [`Enclave::bind`] to print the address and measurement
/// before serving.
pub fn run_enclave(source: ModelSource, listen: &str, options: EnclaveOptions) -> Result<()> {
    Enclave::bind(source, listen, options)?.run()
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> Result<()> {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                if shared.options.log {
                    eprintln!("ppml-tee enclave: accept failed: {e}");
                }
                continue;
            }
        };
        let prev = shared.active.fetch_add(1, Ordering::SeqCst);
        if prev >= shared.options.max_connections {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            if shared.options.log {
                eprintln!(
                    "ppml-tee enclave: refused {:?}: {} connections already open",
                    stream.peer_addr().ok(),
                    prev
                );
            }
            continue; // dropping the stream closes it
        }
        let sh = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("ppml-enclave-conn".into())
            .spawn(move || {
                let peer = stream.peer_addr().ok();
                if let Err(e) = handle(stream, &sh) {
                    if sh.options.log {
                        eprintln!("ppml-tee enclave: connection {peer:?} ended: {e}");
                    }
                }
                sh.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn handle(mut stream: TcpStream, shared: &Shared) -> Result<()> {
    let opts = &shared.options;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(opts.handshake_timeout))?;
    let hello = read_handshake(&mut stream)?;
    let (session, reply) = enclave_handshake(&hello, shared.provider.as_ref(), opts.max_frame)?;
    write_handshake(&mut stream, &reply)?;
    stream.set_read_timeout(opts.idle_timeout)?;
    let mut chan = SecureStream::new(stream, session);
    while let Some(msg) = chan.recv()? {
        let response = match Request::decode(&msg) {
            Ok(Request::Infer(images)) => match infer(&shared.model, &images) {
                Ok(logits) => Response::Logits(logits),
                Err(e) => Response::Error(e.to_string()),
            },
            Ok(Request::Info) => Response::Info(shared.info.clone()),
            Err(e) => Response::Error(e.to_string()),
        };
        chan.send(&response.encode()?)?;
    }
    Ok(())
}

fn infer(model: &Model, images: &Tensor) -> Result<Tensor> {
    Ok(engine::forward(model, images)?)
}
