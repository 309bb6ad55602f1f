//! The bench's one error type.

use std::path::PathBuf;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A model or data file could not be loaded.
    #[error(transparent)]
    Nn(#[from] ppml_nn::NnError),
    /// A backend failed while it ran (a failure is never reported as a result).
    #[error("{model} under {backend}: {source}")]
    Backend {
        /// The model run.
        model: String,
        /// The backend.
        backend: String,
        /// What went wrong.
        source: ppml_nn::backend::BackendError,
    },
    /// Writing the report failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A chart could not be drawn.
    #[error("drawing a chart: {0}")]
    Chart(String),
    /// A bad configuration.
    #[error("{0}")]
    Config(String),
}
