//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong importing an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`crate::MAX_ONNX_BYTES`].
    #[error("{path}: {size} bytes, more than the {max} an ONNX import accepts")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not an ONNX `ModelProto` (truncated, garbage, another format).
    #[error("not a valid ONNX model: {reason}")]
    Decode {
        /// What the protobuf decoder said.
        reason: String,
    },
    /// The model declares no default-domain opset, or one older than [`crate::MIN_OPSET`].
    #[error("ONNX opset {found}: this importer reads opset {min} and later (re-export with opset_version={min} or newer)")]
    Opset {
        /// The opset found (0 when none is declared).
        found: i64,
        /// The oldest opset read.
        min: i64,
    },
    /// An operator, attribute or graph shape that ppml cannot run.
    #[error("node `{node}` ({op}): {reason}; backends that cannot run it: {backends}")]
    Unsupported {
        /// The ONNX operator (`op_type`).
        op: String,
        /// The node's name (or `#index` when the node has none).
        node: String,
        /// Why.
        reason: String,
        /// Which backends cannot run it, and why.
        backends: String,
    },
    /// A node that contradicts the ONNX specification or the rest of the graph.
    #[error("node `{node}` ({op}): invalid model: {reason}")]
    Malformed {
        /// The ONNX operator.
        op: String,
        /// The node's name.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// Something wrong with the graph as a whole (inputs, outputs, cycles).
    #[error("ONNX graph: {0}")]
    Graph(String),
    /// The converted model does not pass ppml's own checks.
    #[error(transparent)]
    Model(#[from] ppml_nn::NnError),
}

/// Result with [`OnnxError`].
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
