//! The backends this build offers, by the name the CLI uses, and how to build each.

use std::fmt;
use std::str::FromStr;

use ppml_nn::backend::{Backend, PlainBackend};
use ppml_nn::Model;
use ppml_tee::{EnclaveOptions, Measurement, TeeBackend};

/// A backend name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// f32 inference in the clear: the reference.
    Plain,
    /// An enclave process behind an attested, encrypted channel.
    Tee,
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
}

impl BackendKind {
    /// Every backend, in the order reports list them.
    pub const ALL: &'static [BackendKind] = &[BackendKind::Plain, BackendKind::Tee];

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Plain => "plain",
            BackendKind::Tee => "tee",
        }
    }

    /// A fresh backend of this kind, or why the options do not allow one.
    pub fn build(self, opts: &BackendOptions) -> Result<Box<dyn Backend>, String> {
        Ok(match self {
            BackendKind::Plain => Box::new(PlainBackend::default()),
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
    pub fn unsupported(self, _model: &Model) -> Option<String> {
        match self {
            BackendKind::Plain | BackendKind::Tee => None,
        }
    }

    /// The batch size at which this backend's throughput is measured.
    pub fn throughput_batch(self) -> usize {
        match self {
            BackendKind::Plain | BackendKind::Tee => 100,
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
