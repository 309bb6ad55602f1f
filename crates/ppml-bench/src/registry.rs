//! The backends this build offers, by the name the CLI uses, and how to build each.

use std::fmt;
use std::str::FromStr;

use ppml_he::{HeBackend, HeError};
use ppml_hybrid::{HybridBackend, RemoteServer};
use ppml_mpc::{Comparison, MpcBackend, MpcConfig, PartiesConfig, Protocol};
use ppml_nn::backend::{Backend, BackendError, PlainBackend};
use ppml_nn::Model;
use ppml_tee::{EnclaveOptions, Measurement, TeeBackend};

/// A backend name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// f32 inference in the clear: the reference.
    Plain,
    /// CKKS homomorphic encryption (latency mode for one image, throughput mode for batches).
    He,
    /// Two computing parties with additive sharing and a dealer of correlated randomness.
    Mpc2,
    /// Three parties with 2-out-of-3 replicated sharing.
    Mpc3,
    /// An enclave process behind an attested, encrypted channel.
    Tee,
    /// Two parties only (client and server): HE for linear layers, OT for ReLU and pooling.
    Hybrid,
}

/// Choices that only some backends take.
#[derive(Clone, Debug, Default)]
pub struct BackendOptions {
    /// `tee`: accept simulated evidence (no hardware isolation).
    pub allow_simulated: bool,
    /// `tee`: the address of a running `ppml enclave`; without it an enclave is started in this
    /// process (simulated evidence, so `allow_simulated` is required).
    pub enclave: Option<String>,
    /// `tee`: the measurement the enclave must prove (required with `enclave`).
    pub measurement: Option<Measurement>,
    /// `mpc2`/`mpc3`: fractional bits of the fixed-point encoding (`None`: the default, 16).
    pub frac_bits: Option<u32>,
    /// `mpc2`/`mpc3`: the comparison protocol (`None`: the default, bit decomposition).
    pub comparison: Option<Comparison>,
    /// `mpc2`/`mpc3` in-process: queries' worth of correlated randomness made ahead per session
    /// (`None`: the default, 4). `hybrid`: queries whose random OTs are made at setup (`None`:
    /// the default, 1).
    pub pool_depth: Option<usize>,
    /// `mpc2`/`mpc3`: the most queries of the call batch size the backend will run, when known
    /// (the parties then make material for no more: see `MpcBackend::with_pool_queries`);
    /// `None`: no bound.
    pub pool_queries: Option<usize>,
    /// `mpc2`/`mpc3`: act as the client of parties running as their own processes
    /// (`ppml party`), as described by this `parties.toml`; `None`: parties are threads here.
    pub parties: Option<PartiesConfig>,
    /// `hybrid`: a running `ppml hybrid-server` and whom to trust as it; `None`: the server
    /// runs on threads of this process.
    pub hybrid_server: Option<RemoteServer>,
}

/// The client of separately running parties, after checking the protocol matches.
fn remote(
    cfg: &PartiesConfig,
    (opts, batch): (&BackendOptions, Option<usize>),
    want: Protocol,
    name: &str,
) -> Result<Box<dyn Backend>, String> {
    if cfg.protocol != want {
        return Err(format!(
            "--backend {name} but the parties file runs {:?}",
            cfg.protocol
        ));
    }
    if let Some(c) = opts.comparison.filter(|c| *c != cfg.comparison) {
        return Err(format!(
            "--comparison {} but the parties file sets {} (the parties choose it)",
            c.name(),
            cfg.comparison.name()
        ));
    }
    Ok(Box::new(
        MpcBackend::remote(cfg.clone())
            .map_err(|e| e.to_string())?
            .with_pool_batch(batch.unwrap_or(1))
            .with_pool_queries(opts.pool_queries.unwrap_or(0)),
    ))
}

fn mpc_config(opts: &BackendOptions) -> MpcConfig {
    let default = MpcConfig::default();
    MpcConfig {
        frac_bits: opts.frac_bits.unwrap_or(default.frac_bits),
        comparison: opts.comparison.unwrap_or(default.comparison),
        pool_depth: opts.pool_depth.unwrap_or(default.pool_depth),
        ..default
    }
}

impl BackendKind {
    /// Every backend, in the order the bench runs them (HE last: the memory its keys and
    /// ciphertexts leave with the allocator would otherwise count in later pairs' peaks).
    pub const ALL: &'static [BackendKind] = &[
        BackendKind::Plain,
        BackendKind::Tee,
        BackendKind::Mpc2,
        BackendKind::Mpc3,
        BackendKind::Hybrid,
        BackendKind::He,
    ];

    /// The backends `ppml bench` runs when `--backends` is not given: all but `hybrid`, whose
    /// throughput rows (about 5 `lenet` images/s in-process, under one deployed over `wan`)
    /// would add some 30 minutes to the default run; name it in `--backends` to include it.
    pub const BENCH_DEFAULT: &'static [BackendKind] = &[
        BackendKind::Plain,
        BackendKind::Tee,
        BackendKind::Mpc2,
        BackendKind::Mpc3,
        BackendKind::He,
    ];

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Plain => "plain",
            BackendKind::He => "he",
            BackendKind::Mpc2 => "mpc2",
            BackendKind::Mpc3 => "mpc3",
            BackendKind::Tee => "tee",
            BackendKind::Hybrid => "hybrid",
        }
    }

    /// A fresh backend of this kind, or why the options do not allow one.
    pub fn build(self, opts: &BackendOptions) -> Result<Box<dyn Backend>, String> {
        self.build_for(opts, None)
    }

    /// [`Self::build`] for calls of `batch` images when known: HE then uses the mode made for
    /// them (latency mode for one image, which refuses a model it cannot run in that mode,
    /// rather than running a whole throughput batch per image; throughput mode otherwise).
    pub fn build_for(
        self,
        opts: &BackendOptions,
        batch: Option<usize>,
    ) -> Result<Box<dyn Backend>, String> {
        Ok(match self {
            BackendKind::Plain => Box::new(PlainBackend::default()),
            BackendKind::Hybrid => Box::new(
                match &opts.hybrid_server {
                    Some(server) => HybridBackend::remote(server.clone()),
                    None => HybridBackend::new(),
                }
                .with_pool(batch.unwrap_or(1), opts.pool_depth.unwrap_or(1)),
            ),
            BackendKind::He => Box::new(match batch {
                None => HeBackend::auto(),
                Some(1) => HeBackend::latency(),
                Some(_) => HeBackend::throughput(),
            }),
            BackendKind::Mpc2 => match &opts.parties {
                Some(cfg) => remote(cfg, (opts, batch), Protocol::Mpc2, "mpc2")?,
                None => Box::new(
                    MpcBackend::in_process(Protocol::Mpc2, mpc_config(opts))
                        .map_err(|e| e.to_string())?
                        .with_pool_batch(batch.unwrap_or(1))
                        .with_pool_queries(opts.pool_queries.unwrap_or(0)),
                ),
            },
            BackendKind::Mpc3 => match &opts.parties {
                Some(cfg) => remote(cfg, (opts, batch), Protocol::Mpc3, "mpc3")?,
                None => Box::new(
                    MpcBackend::in_process(Protocol::Mpc3, mpc_config(opts))
                        .map_err(|e| e.to_string())?
                        .with_pool_batch(batch.unwrap_or(1))
                        .with_pool_queries(opts.pool_queries.unwrap_or(0)),
                ),
            },
            BackendKind::Tee => match (&opts.enclave, opts.measurement) {
                (Some(addr), Some(m)) => {
                    Box::new(TeeBackend::connect(addr.clone(), m, opts.allow_simulated))
                }
                (Some(_), None) => {
                    return Err(
                        "--enclave needs --measurement: the enclave measurement (hex) \
                                the client must verify"
                            .into(),
                    )
                }
                (None, _) if !opts.allow_simulated => {
                    return Err(
                        "without --enclave, the tee backend starts a simulated enclave \
                                in this process (no hardware isolation): pass \
                                --allow-simulated to accept that"
                            .into(),
                    )
                }
                (None, _) => Box::new(TeeBackend::in_process(EnclaveOptions::default())),
            },
        })
    }

    /// Why this backend cannot run `model`, if it cannot.
    pub fn unsupported(self, model: &Model) -> Option<String> {
        match self {
            BackendKind::He if !model.is_polynomial() => {
                Some("ReLU or max-pooling: CKKS evaluates polynomial activations only".into())
            }
            _ => None,
        }
    }

    /// If `err` (from setup) says this backend cannot run the model at all (as opposed to a
    /// failure while running), the reason.
    pub fn unsupported_error(self, err: &BackendError) -> Option<String> {
        match (self, err.downcast_ref::<HeError>()) {
            (BackendKind::He, Some(e @ HeError::Unsupported { .. })) => Some(e.to_string()),
            _ => None,
        }
    }

    /// The batch size at which this backend's throughput is measured (HE: one ciphertext of
    /// N/2 = 4096 slots holding two images each, real and imaginary parts, at the parameters
    /// chosen for the zoo's HE models; the bench caps it at the number of images).
    pub fn throughput_batch(self) -> usize {
        match self {
            BackendKind::He => 8192,
            BackendKind::Plain
            | BackendKind::Mpc2
            | BackendKind::Mpc3
            | BackendKind::Tee
            | BackendKind::Hybrid => 100,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown backend `{s}` (this build has: {})",
                    names.join(", ")
                )
            })
    }
}
