//! The crate's error type.

use std::path::PathBuf;

/// Why a frame of the secure channel was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream ended inside a frame (or before its header was complete).
    #[error("truncated frame: the stream ended after {got} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame needed.
        expected: usize,
    },
    /// The length prefix exceeds the bound.
    #[error("frame of {len} bytes exceeds the {max}-byte bound")]
    TooLarge {
        /// Declared length.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// The frame is shorter than an authentication tag.
    #[error("frame of {len} bytes is shorter than the {min}-byte minimum")]
    TooShort {
        /// Declared length.
        len: u64,
        /// The minimum.
        min: u64,
    },
    /// A frame with a sequence number already consumed (a replay).
    #[error("replayed frame: sequence {got}, expected {expected}")]
    Replayed {
        /// The frame's sequence number.
        got: u64,
        /// The next sequence number the receiver accepts.
        expected: u64,
    },
    /// A frame from the future: an earlier frame was dropped or the frames were reordered.
    #[error("out-of-order frame: sequence {got}, expected {expected}")]
    OutOfOrder {
        /// The frame's sequence number.
        got: u64,
        /// The next sequence number the receiver accepts.
        expected: u64,
    },
    /// The AEAD tag did not verify: the frame was tampered with or forged.
    #[error("frame failed authentication (tampered or forged)")]
    BadTag,
    /// The per-direction counter is exhausted; the session must end.
    #[error("sequence counter exhausted")]
    CounterExhausted,
}

/// Why attestation evidence was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The quote bytes are not a well-formed SGX quote v3.
    #[error("malformed quote: {0}")]
    Malformed(String),
    /// Simulated evidence offered while the verifier does not allow it.
    #[error("the enclave offered simulated evidence (no hardware isolation); refused without allow_simulated")]
    SimulatedRefused,
    /// The enclave measurement differs from the expected one.
    #[error("measurement mismatch: expected {expected}, enclave reports {got}")]
    MeasurementMismatch {
        /// Expected measurement (hex).
        expected: String,
        /// Reported measurement (hex).
        got: String,
    },
    /// The signer measurement differs from the pinned one.
    #[error("signer mismatch: expected {expected}, enclave reports {got}")]
    SignerMismatch {
        /// Expected signer (hex).
        expected: String,
        /// Reported signer (hex).
        got: String,
    },
    /// The report data does not bind the channel key and the client's nonce.
    #[error("report data does not bind this session's key and nonce")]
    ReportDataMismatch,
    /// The quote's signature does not verify.
    #[error("quote signature does not verify")]
    BadSignature,
    /// A real SGX quote was offered but the verifier holds no collateral to check it.
    #[error("an SGX quote was offered but no DCAP collateral was supplied to verify it")]
    NoCollateral,
    /// dcap-qvl refused the quote.
    #[error("DCAP verification failed: {0}")]
    Dcap(String),
    /// The platform's TCB status is not among the accepted ones.
    #[error("TCB status {status} is not accepted (accepted: {accepted})")]
    TcbStatus {
        /// The status reported by the collateral.
        status: String,
        /// The accepted statuses.
        accepted: String,
    },
    /// The enclave runs in debug mode (its memory is readable by the host).
    #[error("the enclave runs in debug mode; refused without allow_debug")]
    DebugEnclave,
    /// The evidence mode names nothing this verifier knows.
    #[error("unknown evidence mode {0}")]
    UnknownMode(u8),
}

/// Everything that can go wrong in `ppml-tee`.
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A channel frame was rejected.
    #[error("channel: {0}")]
    Frame(#[from] FrameError),
    /// The attestation evidence was refused.
    #[error("attestation refused: {0}")]
    Attestation(#[from] AttestationError),
    /// The handshake failed (malformed message, version, low-order key, ...).
    #[error("handshake: {0}")]
    Handshake(String),
    /// A decrypted message is malformed.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The enclave reported an error for a request.
    #[error("enclave error: {0}")]
    Remote(String),
    /// Evidence could not be produced.
    #[error("evidence provider ({provider}): {reason}")]
    Evidence {
        /// The provider.
        provider: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A sealed model file could not be opened.
    #[error("sealed model: {0}")]
    Seal(String),
    /// The operating system's random number generator failed.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
    /// Inference failed inside the enclave.
    #[error("model: {0}")]
    Model(#[from] ppml_nn::NnError),
    /// An argument is out of range (a bad hex string, a zero bound, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result with [`TeeError`].
pub type Result<T, E = TeeError> = std::result::Result<T, E>;

/// A message that does not decode (a field past its end, trailing bytes) is a protocol error.
impl From<ppml_wire::WireError> for TeeError {
    fn from(e: ppml_wire::WireError) -> Self {
        TeeError::Protocol(e.to_string())
    }
}

/// A quote that does not decode is malformed.
impl From<ppml_wire::WireError> for AttestationError {
    fn from(e: ppml_wire::WireError) -> Self {
        AttestationError::Malformed(e.to_string())
    }
}
