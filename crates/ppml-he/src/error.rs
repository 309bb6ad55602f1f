//! The crate's error type.

use ppml_ckks::CkksError;

/// Everything that can go wrong while compiling, planning or evaluating encrypted inference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeError {
    /// The model has a layer HE cannot evaluate (ReLU, max pooling).
    #[error("layer {index} ({op}) is not polynomial: HE runs only models with x^2 activations and average pooling")]
    NotPolynomial {
        /// Index of the layer in the model.
        index: usize,
        /// The layer's operator name.
        op: &'static str,
    },
    /// The model description itself is invalid.
    #[error("invalid model: {0}")]
    Model(#[from] ppml_nn::NnError),
    /// No secure parameter set fits the plan.
    #[error("no secure CKKS parameters fit a depth-{depth} circuit{extra}")]
    NoParameters {
        /// Multiplicative depth of the plan.
        depth: usize,
        /// Additional constraint that failed (e.g. slot count).
        extra: String,
    },
    /// The input batch does not match the model or the parameters.
    #[error("bad input: expected {expected}, got {got}")]
    BadInput {
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// The requested mode cannot run this model.
    #[error("{mode} mode cannot run model {model}: {reason}")]
    Unsupported {
        /// The mode.
        mode: &'static str,
        /// The model name.
        model: String,
        /// Why.
        reason: String,
    },
    /// A backend call came before `setup`.
    #[error("HE backend used before setup")]
    NotSetUp,
    /// A message from the other party is malformed.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A frame longer than the bound.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// Limit.
        max: u64,
    },
    /// The other side reported an error.
    #[error("remote error: {0}")]
    Remote(String),
    /// The TLS layer: certificates, configuration or the handshake.
    #[error(transparent)]
    Tls(#[from] ppml_tls::TlsError),
    /// Network I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An error of the CKKS layer.
    #[error(transparent)]
    Ckks(#[from] CkksError),
}

/// Result with [`HeError`].
pub type Result<T, E = HeError> = std::result::Result<T, E>;

impl From<ppml_wire::WireError> for HeError {
    fn from(e: ppml_wire::WireError) -> Self {
        use ppml_wire::WireError as W;
        match e {
            W::TooLarge { len, max } => HeError::FrameTooLarge { len, max },
            W::Trailing { .. } => HeError::Malformed("trailing bytes"),
            W::CutShort { .. } => HeError::Malformed("connection closed inside a frame"),
            W::Io(e) => HeError::Io(e),
            _ => HeError::Malformed("truncated message"),
        }
    }
}
