//! [`MpcBackend`]: `mpc2`/`mpc3` as a [`Backend`], the client of a deployment. The parties run
//! either as threads of this process over in-memory links ([`MpcBackend::in_process`]) or as
//! their own processes over TLS ([`MpcBackend::remote`], see [`crate::deploy`]); both are the
//! same service code ([`crate::service`]), so their figures are measured the same way.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupFacts, SetupReport};
use ppml_nn::{Model, Tensor};

use crate::client::{Client, Opened};
use crate::comparison::Comparator;
use crate::config::PartiesConfig;
use crate::error::{MpcError, Result};
use crate::link::{in_memory_pair, Duplex, DEFAULT_MAX_FRAME_WORDS};
use crate::material::PoolRequest;
use crate::mesh::Mesh;
use crate::plan::{decode_output, encode_input, plan};
use crate::ring::FixedPoint;
use crate::service::{PartyState, SessionLimits, SessionReport, Setting};
use crate::{MpcConfig, Protocol};

enum Target {
    InProcess(MpcConfig),
    Remote(Box<PartiesConfig>),
}

/// Parties running as threads of this process: their mesh and their session threads.
struct Threads {
    _meshes: Vec<Arc<Mesh>>,
    sessions: Vec<JoinHandle<Result<SessionReport>>>,
}

struct Connected {
    client: Client,
    threads: Option<Threads>,
    in_len: usize,
    input: Vec<usize>,
    classes: usize,
}

/// The `mpc2` or `mpc3` backend.
pub struct MpcBackend {
    setting: Setting,
    target: Target,
    pool: PoolRequest,
    state: Option<Connected>,
}

impl MpcBackend {
    /// Parties as threads of this process (over socket pairs) running `protocol` with `config`.
    pub fn in_process(protocol: Protocol, config: MpcConfig) -> Result<Self> {
        Ok(Self {
            setting: Setting {
                protocol,
                fp: FixedPoint::new(config.frac_bits)?,
                comparison: config.comparison,
            },
            target: Target::InProcess(config),
            pool: PoolRequest::batch(1),
            state: None,
        })
    }

    /// The client of parties running as their own processes (`ppml party`), as `config` says.
    pub fn remote(config: PartiesConfig) -> Result<Self> {
        Ok(Self {
            setting: Setting {
                protocol: config.protocol,
                fp: FixedPoint::new(config.frac_bits)?,
                comparison: config.comparison,
            },
            target: Target::Remote(Box::new(config)),
            pool: PoolRequest::batch(1),
            state: None,
        })
    }

    /// Asks the parties to make correlated randomness ahead for queries of `batch` images (the
    /// default: 1); queries of other sizes make theirs online. 0: no offline phase.
    pub fn with_pool_batch(mut self, batch: usize) -> Self {
        self.pool.batch = batch;
        self
    }

    /// Tells the parties that the session will run at most `queries` queries of the pool batch
    /// size, so that they make material for no more (the default, 0: no bound, the pool is
    /// refilled for as long as the session lasts).
    pub fn with_pool_queries(mut self, queries: usize) -> Self {
        self.pool.queries = queries;
        self
    }

    /// Starts the three parties on threads (start-up included) and links a client session to
    /// them.
    fn start_threads(
        &self,
        model: &Model,
        config: &MpcConfig,
    ) -> Result<(Client, Threads, Opened)> {
        let limits = SessionLimits {
            timeout: config.timeout,
            idle: config.timeout,
            max_frame_words: DEFAULT_MAX_FRAME_WORDS,
            pool_depth: config.pool_depth,
        };
        let meshes = Mesh::in_memory(3, config.timeout, DEFAULT_MAX_FRAME_WORDS)?;
        let setting = self.setting;
        let parties: Vec<Arc<PartyState>> = std::thread::scope(|s| {
            let handles: Vec<_> = meshes
                .iter()
                .map(|m| s.spawn(move || PartyState::start(m, model, setting)))
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(i, h)| {
                    h.join()
                        .unwrap_or(Err(MpcError::PartyFailed { party: i }))
                        .map(Arc::new)
                })
                .collect::<Result<_>>()
        })?;
        let mut links: Vec<Box<dyn Duplex>> = Vec::with_capacity(3);
        let mut sessions = Vec::with_capacity(3);
        for (party, mesh) in parties.iter().zip(&meshes) {
            let (mine, theirs) =
                in_memory_pair().map_err(|_| MpcError::PartyFailed { party: links.len() })?;
            links.push(Box::new(mine));
            let (party, mesh) = (party.clone(), mesh.clone());
            sessions.push(std::thread::spawn(move || {
                let mut theirs = theirs;
                party.serve_client(&mesh, &mut theirs, &limits)
            }));
        }
        let (in_len, classes) = (parties[0].in_len(), parties[0].classes());
        let (client, opened) = Client::open(
            links,
            setting,
            (in_len, classes, self.pool),
            (4 * config.timeout, DEFAULT_MAX_FRAME_WORDS),
        )?;
        let threads = Threads {
            _meshes: meshes,
            sessions,
        };
        Ok((client, threads, opened))
    }

    fn setup_inner(&mut self, model: &Model) -> Result<SetupReport> {
        let start = Instant::now();
        let (_, in_len, classes) = plan(model)?;
        self.close();
        let (client, threads, opened, run_as) = match &self.target {
            Target::InProcess(config) => {
                let (c, t, o) = self.start_threads(model, config)?;
                (
                    c,
                    Some(t),
                    o,
                    "parties as threads of this process over in-memory links",
                )
            }
            Target::Remote(config) => {
                let (c, o) = crate::deploy::connect_client(
                    config,
                    self.setting,
                    (in_len, classes, self.pool),
                )?;
                (c, None, o, "parties as separate processes over TLS 1.3")
            }
        };
        self.state = Some(Connected {
            client,
            threads,
            in_len,
            input: model.input.to_vec(),
            classes,
        });
        let fp = self.setting.fp;
        let cmp = Comparator::new(self.setting.comparison, fp.frac_bits());
        let mut notes = vec![
            format!("Z_2^64 fixed point with {} fractional bits", fp.frac_bits()),
            run_as.to_string(),
            if opened.offline_bytes > 0 {
                format!(
                    "offline phase: party 2 makes correlated randomness ahead for queries of {} image(s); the pool was filled at setup ({:.2} MB, {:.3} s); queries of other sizes make theirs online",
                    self.pool.batch,
                    opened.offline_bytes as f64 / 1e6,
                    opened.offline_time.as_secs_f64()
                )
            } else {
                "no offline phase: correlated randomness is made while each query runs".into()
            },
        ];
        notes.extend(match self.setting.protocol {
            Protocol::Mpc2 => [
                "2 parties with additive sharing and a dealer; dealer traffic seed-compressed, counted per query".to_string(),
                "linear layers: matrix/convolution Beaver triples with weights masked once at start-up".into(),
                cmp.describe(),
                "truncation: local SecureML (<= 1 ulp, fails w.p. ~|x|/2^63)".into(),
            ],
            Protocol::Mpc3 => [
                "3 parties, 2-out-of-3 replicated sharing, semi-honest, honest majority".to_string(),
                "weights replicated-shared by the model owner at start-up; fresh pairwise PRG keys per session".into(),
                format!("{}, party 2 as helper", cmp.describe()),
                "truncation: ABY3 share truncation (<= 1 ulp, fails w.p. ~|x|/2^63)".into(),
            ],
        });
        Ok(SetupReport {
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent: opened.startup_bytes + opened.session_bytes + opened.offline_bytes,
            facts: SetupFacts {
                comparison: Some(self.setting.comparison.name().to_string()),
                fractional_bits: Some(fp.frac_bits()),
                ..SetupFacts::default()
            },
            notes,
        })
    }

    fn infer_inner(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let fp = self.setting.fp;
        let name = self.name_static();
        let st = self
            .state
            .as_mut()
            .ok_or(MpcError::NotSetUp { backend: name })?;
        let x = encode_input(images, st.in_len, &st.input, &fp)?;
        let n = images.batch();
        if n == 0 {
            return Ok((Tensor::zeros(vec![0, st.classes]), CallStats::default()));
        }
        match st.client.query(&x, n) {
            Ok((y, stats)) => Ok((decode_output(&[y], n, st.classes, &fp)?, stats)),
            Err(e) => {
                // The session is over (the parties have ended it too): set up again to go on.
                self.close();
                Err(e)
            }
        }
    }

    fn name_static(&self) -> &'static str {
        match self.setting.protocol {
            Protocol::Mpc2 => "mpc2",
            Protocol::Mpc3 => "mpc3",
        }
    }

    /// Ends the session: the parties' session threads finish (in-process parties stop too).
    pub fn close(&mut self) {
        if let Some(mut st) = self.state.take() {
            st.client.close();
            drop(st.client);
            if let Some(t) = st.threads {
                for h in t.sessions {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Drop for MpcBackend {
    fn drop(&mut self) {
        self.close();
    }
}

impl Backend for MpcBackend {
    fn name(&self) -> &str {
        self.name_static()
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        Ok(self.setup_inner(model)?)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        Ok(self.infer_inner(images)?)
    }
}
