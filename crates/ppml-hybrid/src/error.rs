//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in a hybrid session.
#[derive(Debug, Error)]
pub enum HybridError {
    /// The peer closed the link or could not be reached.
    #[error("link to the {peer} closed: {reason}")]
    LinkClosed {
        /// Which role the peer plays.
        peer: &'static str,
        /// What happened.
        reason: String,
    },
    /// The peer did not send within the session's timeout.
    #[error("the {peer} sent nothing for {seconds} s")]
    Timeout {
        /// Which role the peer plays.
        peer: &'static str,
        /// The timeout.
        seconds: u64,
    },
    /// A message of the wrong length (protocol messages have lengths both sides know).
    #[error("{what}: expected {expected} words from the peer, got {got}")]
    Malformed {
        /// The message.
        what: &'static str,
        /// Words expected.
        expected: usize,
        /// Words received.
        got: usize,
    },
    /// A message whose content is invalid (a point off the curve, a coefficient out of range).
    #[error("{what}: invalid content at word {index}")]
    InvalidContent {
        /// The message.
        what: &'static str,
        /// The first offending word.
        index: usize,
    },
    /// A protocol step wanted more precomputed oblivious transfers than the offline phase made.
    #[error("{kind} oblivious transfers exhausted: {needed} needed, {left} left")]
    OtExhausted {
        /// Which pool.
        kind: &'static str,
        /// How many were asked for.
        needed: usize,
        /// How many were left.
        left: usize,
    },
    /// The RLWE scheme refused (a ciphertext that does not decode, a noise budget exceeded).
    #[error(transparent)]
    Rlwe(#[from] ppml_rlwe::RlweError),
    /// A model or layer this backend cannot run.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
    /// Inputs of a local step whose lengths disagree (a bug in the caller).
    #[error("{what}: lengths {left} and {right} disagree")]
    Shape {
        /// The step.
        what: &'static str,
        /// One length.
        left: usize,
        /// The other.
        right: usize,
    },
}

/// The crate's result type.
pub type Result<T, E = HybridError> = std::result::Result<T, E>;
