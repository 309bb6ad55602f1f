//! The backends this build offers, by the name the CLI uses.

use std::fmt;
use std::str::FromStr;

use ppml_nn::backend::{Backend, PlainBackend};
use ppml_nn::Model;

/// A backend name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// f32 inference in the clear: the reference.
    Plain,
}

impl BackendKind {
    /// Every backend, in the order reports list them.
    pub const ALL: &'static [BackendKind] = &[BackendKind::Plain];

    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Plain => "plain",
        }
    }

    /// A fresh backend of this kind.
    pub fn build(self) -> Box<dyn Backend> {
        match self {
            BackendKind::Plain => Box::new(PlainBackend::default()),
        }
    }

    /// Why this backend cannot run `model`, if it cannot.
    pub fn unsupported(self, _model: &Model) -> Option<String> {
        match self {
            BackendKind::Plain => None,
        }
    }

    /// The batch size at which this backend's throughput is measured.
    pub fn throughput_batch(self) -> usize {
        match self {
            BackendKind::Plain => 100,
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
