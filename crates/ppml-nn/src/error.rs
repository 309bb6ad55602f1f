//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `ppml-nn`.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An IDX file is malformed.
    #[error("{path}: not a valid IDX file: {reason}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image file could not be decoded.
    #[error("{path}: cannot read image: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A model description is inconsistent (shapes that do not chain, bad hyper-parameters).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A model file is malformed or does not match its architecture.
    #[error("model file {path}: {reason}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor in a model file does not match the architecture.
    #[error("model file {path}: tensor `{tensor}`: {reason}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A name that is not in the model zoo and not an existing file.
    #[error("unknown model `{name}`: not a zoo model ({known}) and not a model file")]
    UnknownModel {
        /// What the user gave.
        name: String,
        /// The zoo's names.
        known: String,
    },
    /// An input tensor does not have the shape the model expects.
    #[error("input shape {got:?} does not match the model's input {expected:?}")]
    InputShape {
        /// The shape given.
        got: Vec<usize>,
        /// The shape expected (without the batch dimension).
        expected: Vec<usize>,
    },
}

/// Result with [`NnError`].
pub type Result<T, E = NnError> = std::result::Result<T, E>;
