//! Rust errors as Python exceptions.
//!
//! The exception classes are defined in Python (`ppml/errors.py`, where they can inherit from
//! both `ppml.Error` and a builtin such as `ValueError` or `ConnectionError`); this module sorts
//! each Rust error into one of them by its type and variant and keeps its message unchanged.

use std::error::Error as StdError;
use std::fmt;

use ppml_bench::BenchError;
use ppml_he::HeError;
use ppml_mpc::MpcError;
use ppml_nn::NnError;
use ppml_onnx::OnnxError;
use ppml_tee::TeeError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The Python exception class an error becomes (a class of `ppml.errors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad images, arguments or options (`ppml.InputError`, also a `ValueError`).
    Input,
    /// A file that cannot be found, read or written (`ppml.FileError`, also an `OSError`).
    File,
    /// A model that cannot be loaded, imported or run by the backend (`ppml.ModelError`).
    Model,
    /// A malformed dataset file (`ppml.DataError`).
    Data,
    /// A backend that failed while it ran (`ppml.BackendError`).
    Backend,
    /// A peer that sent malformed, unauthenticated or refused data (`ppml.ProtocolError`).
    Protocol,
    /// A peer that cannot be reached, went away or timed out (`ppml.PeerError`, also a
    /// `ConnectionError`).
    Peer,
}

impl Kind {
    /// The class name in `ppml.errors`.
    fn class_name(self) -> &'static str {
        match self {
            Kind::Input => "InputError",
            Kind::File => "FileError",
            Kind::Model => "ModelError",
            Kind::Data => "DataError",
            Kind::Backend => "BackendError",
            Kind::Protocol => "ProtocolError",
            Kind::Peer => "PeerError",
        }
    }
}

/// An error on its way to Python: which class, and the Rust error's message. It holds no Python
/// object, so it can leave a computation that ran without the GIL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The exception class.
    pub kind: Kind,
    /// The message, as the Rust error (and the CLI) prints it.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Bad input given by the caller.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }

    /// A Rust error, sorted by [`classify`].
    pub fn from_error(err: &(dyn StdError + 'static)) -> Self {
        Self::new(classify(err), err.to_string())
    }

    /// A Rust error with `context` before its message (`context: message`).
    pub fn with_context(err: &(dyn StdError + 'static), context: &str) -> Self {
        Self::new(classify(err), format!("{context}: {err}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        Python::attach(|py| {
            let class = py
                .import("ppml.errors")
                .and_then(|m| m.getattr(f.kind.class_name()));
            match class.and_then(|c| c.call1((f.message.clone(),))) {
                Ok(exc) => PyErr::from_value(exc),
                // Only if `ppml.errors` itself is broken: keep the message.
                Err(_) => PyRuntimeError::new_err(f.message),
            }
        })
    }
}

impl From<NnError> for Failure {
    fn from(e: NnError) -> Self {
        Self::from_error(&e)
    }
}

/// Which exception class a Rust error from any ppml crate becomes.
pub fn classify(err: &(dyn StdError + 'static)) -> Kind {
    if let Some(e) = err.downcast_ref::<NnError>() {
        return nn(e);
    }
    if let Some(e) = err.downcast_ref::<OnnxError>() {
        return match e {
            OnnxError::Io { .. } => Kind::File,
            OnnxError::Model(nn_err) => nn(nn_err),
            _ => Kind::Model,
        };
    }
    if let Some(e) = err.downcast_ref::<HeError>() {
        return match e {
            HeError::Model(nn_err) => nn(nn_err),
            HeError::NotPolynomial { .. }
            | HeError::Unsupported { .. }
            | HeError::NoParameters { .. } => Kind::Model,
            HeError::BadInput { .. } => Kind::Input,
            HeError::Malformed(_) | HeError::FrameTooLarge { .. } | HeError::Remote(_) => {
                Kind::Protocol
            }
            HeError::Io(_) => Kind::Peer,
            _ => Kind::Backend,
        };
    }
    if let Some(e) = err.downcast_ref::<MpcError>() {
        return match e {
            MpcError::Model(nn_err) => nn(nn_err),
            MpcError::Disconnected { .. }
            | MpcError::Timeout { .. }
            | MpcError::Tls { .. }
            | MpcError::Remote { .. }
            | MpcError::MeshBroken { .. } => Kind::Peer,
            MpcError::Malformed { .. }
            | MpcError::InvalidMaterial { .. }
            | MpcError::FrameTooLarge { .. }
            | MpcError::BadParty { .. }
            | MpcError::BadClient { .. }
            | MpcError::SessionInUse { .. } => Kind::Protocol,
            MpcError::InputShape { .. } | MpcError::Config { .. } => Kind::Input,
            MpcError::Deploy { .. } => Kind::File,
            _ => Kind::Backend,
        };
    }
    if let Some(e) = err.downcast_ref::<TeeError>() {
        return match e {
            TeeError::Model(nn_err) => nn(nn_err),
            TeeError::Io(_) => Kind::Peer,
            TeeError::File { .. } => Kind::File,
            TeeError::Frame(_)
            | TeeError::Attestation(_)
            | TeeError::Handshake(_)
            | TeeError::Protocol(_)
            | TeeError::Remote(_)
            | TeeError::Evidence { .. } => Kind::Protocol,
            TeeError::Invalid(_) => Kind::Input,
            _ => Kind::Backend,
        };
    }
    if let Some(e) = err.downcast_ref::<BenchError>() {
        return match e {
            BenchError::Nn(nn_err) => nn(nn_err),
            BenchError::Backend { source, .. } => classify(source.as_ref()),
            BenchError::Write { .. } => Kind::File,
            BenchError::Config(_) => Kind::Input,
            // Drawing a chart fails only on a bug of ours, never on the caller's input.
            BenchError::Chart(_) => Kind::Backend,
        };
    }
    if err.downcast_ref::<std::io::Error>().is_some() {
        // Backends report a bare I/O error only for their connections.
        return Kind::Peer;
    }
    // Any other wrapper takes the kind of what it wraps.
    err.source().map_or(Kind::Backend, classify)
}

fn nn(e: &NnError) -> Kind {
    match e {
        NnError::Io { .. } => Kind::File,
        NnError::Idx { .. } | NnError::Image { .. } => Kind::Data,
        NnError::InputShape { .. } => Kind::Input,
        _ => Kind::Model,
    }
}
