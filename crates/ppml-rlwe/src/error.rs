//! The crate's error type.

use thiserror::Error;

/// Everything the scheme can refuse.
#[derive(Debug, Error)]
pub enum RlweError {
    /// Parameters outside what the scheme supports or what is secure.
    #[error("invalid parameters: {reason}")]
    Parameters {
        /// Why.
        reason: String,
    },
    /// The ring-LWE arithmetic layer refused (prime generation).
    #[error(transparent)]
    Arithmetic(#[from] ppml_ckks::CkksError),
    /// A serialised object of the wrong size.
    #[error("{what}: expected {expected} words, got {got}")]
    Length {
        /// The object.
        what: &'static str,
        /// Words expected.
        expected: usize,
        /// Words received.
        got: usize,
    },
    /// A coefficient not reduced modulo its prime.
    #[error("{what}: word {index} is not reduced modulo its prime")]
    Unreduced {
        /// The object.
        what: &'static str,
        /// The offending word.
        index: usize,
    },
    /// A plaintext of the wrong degree or too large a norm for the noise budget.
    #[error("plaintext: {reason}")]
    Plaintext {
        /// Why.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("the operating system's random source failed")]
    Rng,
}

/// The crate's result type.
pub type Result<T, E = RlweError> = std::result::Result<T, E>;
