//! Which backends this build offers, by the name the CLI uses.

use clap::ValueEnum;
use ppml_nn::backend::{Backend, PlainBackend};

/// A backend name on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// f32 inference in the clear: the reference.
    Plain,
}

impl BackendKind {
    /// A fresh backend of this kind.
    pub fn build(self) -> Box<dyn Backend> {
        match self {
            BackendKind::Plain => Box::new(PlainBackend::default()),
        }
    }
}
