//! `ppml-nn`: the data and network layer of ppml.
//!
//! It knows nothing of cryptography. It owns:
//! - [`idx`]: the MNIST IDX loader (raw or gzip, validated);
//! - [`model`]: the model description every backend consumes;
//! - [`zoo`]: the named architectures;
//! - [`io`]: model files (safetensors with the architecture in its metadata);
//! - [`engine`]: the f32 reference engine (plain inference);
//! - [`backend`]: the [`backend::Backend`] trait that ties backends to the CLI and benchmark, and
//!   [`backend::PlainBackend`];
//! - [`eval`]: the one evaluation loop that measures every backend alike;
//! - [`testing`]: deterministic inputs and the one "agrees with plain" check of the backends'
//!   tests.

pub mod backend;
pub mod engine;
mod error;
pub mod eval;
pub mod idx;
pub mod image;
pub mod io;
pub mod model;
pub mod tensor;
pub mod testing;
pub mod zoo;

pub use error::{NnError, Result};
pub use model::{Layer, Model, Shape};
pub use tensor::Tensor;
