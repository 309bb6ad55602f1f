//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong in `ppml-mpc`.
#[derive(Debug, thiserror::Error)]
pub enum MpcError {
    /// A peer closed its connection (or its thread ended) before sending what was expected.
    #[error("party {party}: peer {peer} disconnected")]
    Disconnected {
        /// The party that noticed.
        party: usize,
        /// The peer that went away.
        peer: usize,
    },
    /// A peer sent nothing within the configured timeout.
    #[error("party {party}: no message from peer {peer} within {timeout:?}")]
    Timeout {
        /// The party that waited.
        party: usize,
        /// The silent peer.
        peer: usize,
        /// How long it waited.
        timeout: Duration,
    },
    /// A frame of the wrong length arrived.
    #[error(
        "party {party}: malformed frame from peer {peer}: expected {expected} words, got {got}"
    )]
    Malformed {
        /// The receiving party.
        party: usize,
        /// The sender.
        peer: usize,
        /// Words the protocol expected.
        expected: usize,
        /// Words that arrived.
        got: usize,
    },
    /// Correlated randomness that no honest dealer produces (a frame of the right length
    /// whose content is invalid), or a batch whose sizes do not fit it.
    #[error("invalid correlated randomness: {what}")]
    InvalidMaterial {
        /// What was wrong.
        what: &'static str,
    },
    /// A TLS failure: a handshake that failed (wrong or unknown certificate, not TLS at all),
    /// or bytes from a peer that are not valid TLS records.
    #[error("party {party}: TLS with {peer} failed: {reason}")]
    Tls {
        /// The party that noticed.
        party: usize,
        /// The peer (its name when known).
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// A peer announced a frame larger than the configured bound.
    #[error("party {party}: peer {peer} sent a frame of {words} words (at most {max} allowed)")]
    FrameTooLarge {
        /// The receiving party.
        party: usize,
        /// The sender.
        peer: usize,
        /// Words announced.
        words: u64,
        /// The bound.
        max: u64,
    },
    /// A deployment file (configuration, certificate, key) could not be read, written or
    /// understood.
    #[error("{path}: {reason}")]
    Deploy {
        /// The file or directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A party's thread ended abnormally.
    #[error("party {party} stopped abnormally")]
    PartyFailed {
        /// The party.
        party: usize,
    },
    /// A session id already in use at this party.
    #[error("party {party}: that session id is already in use")]
    SessionInUse {
        /// The party.
        party: usize,
    },
    /// A client broke the session protocol; only its session ends.
    #[error("party {party}: client error: {what}")]
    BadClient {
        /// The party.
        party: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// A party answered the client with a frame that does not fit the protocol.
    #[error("party {party} sent the client a malformed frame")]
    BadParty {
        /// The party.
        party: usize,
    },
    /// A party ended the client's session and said why.
    #[error("party {party} ended the session: {message}")]
    Remote {
        /// The party.
        party: usize,
        /// Its message.
        message: String,
    },
    /// A party's link to another party broke: the deployment must be restarted.
    #[error("party {party}: the link to another party broke; restart the three parties")]
    MeshBroken {
        /// The party.
        party: usize,
    },
    /// The model is invalid or the input does not fit it.
    #[error(transparent)]
    Model(#[from] ppml_nn::NnError),
    /// The input batch does not have the model's input shape.
    #[error("input shape {got:?} does not match the model input [n, {expected:?}]")]
    InputShape {
        /// The shape given.
        got: Vec<usize>,
        /// One image's shape.
        expected: Vec<usize>,
    },
    /// `infer` was called before `setup`.
    #[error("{backend} backend used before setup")]
    NotSetUp {
        /// The backend's name.
        backend: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {field} = {value} ({reason})")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = MpcError> = std::result::Result<T, E>;
