//! # ppml-he: encrypted MNIST inference with RNS-CKKS
//!
//! The client encrypts its image, the server holds the model and the client's evaluation keys
//! (never the secret key) and computes on ciphertexts, the client decrypts the logits.
//!
//! - [`plan`]: compiles a polynomial [`ppml_nn::Model`] (`cnn`, `mlp-sq`, `lenet-sq`) into
//!   stages: each run of linear layers becomes one sparse affine map (one level, one rescale),
//!   `x^2` one ciphertext square, average pooling an additions-only sum (its `1/k^2` folded into
//!   the next map).
//! - [`params`]: the smallest secure ring degree and prime chain fitting the plan's depth.
//! - [`throughput`]: one image per slot (CryptoNets); [`latency`]: one image in one ciphertext
//!   (or a few: a grid of channel blocks and pooling phases when the feature maps exceed the
//!   slots, [`layout`]), im2col input layout, diagonal matrix-vector products with baby-step
//!   giant-step.
//! - [`evaluator`]: the model prepared once per [`Mode`] ([`Prepared`]) and one client's
//!   evaluator ([`SessionEvaluator`]); [`keys`]: the evaluation keys; [`spec`]: what the server
//!   tells the client at setup.
//! - [`HeBackend`]: ppml-nn's `Backend` (`HeBackend::throughput()`, `::latency()`, `::auto()`).
//! - Profiling: with `PPML_HE_TRACE` set, the client and server print coarse timing spans
//!   (encryption, each stage, decryption) to standard error.
//! - [`session`]: the server's session handling over TLS ([`serve`]: a thread per session, at
//!   most [`ServeOptions::max_sessions`] at once, the next clients queued; the model is compiled
//!   and encoded once per mode and shared, [`PreparedModels`]; [`LocalServer`] in this
//!   process); [`client`]: the one client path ([`HeClient::connect`]), [`frame`]: the frames.
//!
//! # Example
//! ```no_run
//! use ppml_nn::backend::Backend;
//! let mut model = ppml_nn::zoo::architecture("cnn").ok_or("no such model")?;
//! ppml_nn::zoo::init_weights(&mut model, 1);
//! let mut he = ppml_he::HeBackend::auto();
//! let report = he.setup(&model)?;
//! println!("{:?}", report.notes);
//! let images = ppml_nn::Tensor::zeros(vec![1, 1, 28, 28]);
//! let (logits, stats) = he.infer(&images)?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

pub mod backend;
pub mod client;
pub mod error;
pub mod evaluator;
pub mod frame;
pub mod keys;
pub mod latency;
pub mod layout;
pub mod mode;
pub mod params;
pub mod plan;
pub mod session;
pub mod spec;
pub mod throughput;
mod trace;
mod wire;

pub use backend::HeBackend;
pub use client::HeClient;
pub use error::{HeError, Result};
pub use evaluator::{Prepared, SessionEvaluator};
pub use mode::Mode;
pub use session::{serve, serve_with, LocalServer, PreparedModels, ServeOptions};
