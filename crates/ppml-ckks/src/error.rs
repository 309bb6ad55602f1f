//! The crate's error type.

/// Everything that can go wrong in `ppml-ckks`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CkksError {
    /// The ring degree is not a power of two in the supported range.
    #[error("ring degree {degree} is not a power of two in [{min}, {max}]")]
    InvalidDegree {
        /// The requested degree.
        degree: usize,
        /// Smallest supported degree.
        min: usize,
        /// Largest supported degree.
        max: usize,
    },
    /// A prime bit size is outside the supported range.
    #[error("prime bit size {bits} is outside [{min}, {max}]")]
    InvalidPrimeBits {
        /// The requested size.
        bits: u32,
        /// Smallest supported size.
        min: u32,
        /// Largest supported size.
        max: u32,
    },
    /// The modulus chain is empty or has too many primes.
    #[error("invalid modulus chain: {reason}")]
    InvalidChain {
        /// Why the chain was refused.
        reason: &'static str,
    },
    /// Not enough NTT-friendly primes of the requested size exist.
    #[error("not enough {bits}-bit primes congruent to 1 mod {two_n}")]
    NotEnoughPrimes {
        /// The bit size.
        bits: u32,
        /// 2N.
        two_n: u64,
    },
    /// A modulus is not an NTT-friendly prime for this degree.
    #[error("modulus {modulus} is not a prime congruent to 1 mod 2N for N = {degree}")]
    InvalidModulus {
        /// The modulus.
        modulus: u64,
        /// The ring degree.
        degree: usize,
    },
    /// The parameters are below the 128-bit security level.
    #[error(
        "insecure parameters: total modulus (ciphertext and special primes) is {total_bits} bits, \
         but the HomomorphicEncryption.org standard allows at most {max_bits} bits for N = {degree} \
         with a ternary secret at 128-bit classical security"
    )]
    InsecureParameters {
        /// The ring degree.
        degree: usize,
        /// log2 of the total modulus.
        total_bits: u32,
        /// The largest allowed log2 of the total modulus.
        max_bits: u32,
    },
    /// The scale is not a finite positive number usable with this chain.
    #[error("invalid scale {scale}: {reason}")]
    InvalidScale {
        /// The scale.
        scale: f64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// More values than slots.
    #[error("{given} values given but only {slots} slots")]
    TooManyValues {
        /// Number of values given.
        given: usize,
        /// Number of slots (N/2).
        slots: usize,
    },
    /// A value to encode is not finite or too large for the scale.
    #[error("value cannot be encoded at this scale: {reason}")]
    EncodingOverflow {
        /// What was wrong.
        reason: &'static str,
    },
    /// A level outside the modulus chain was requested.
    #[error("level {level} is out of range (maximum level {max})")]
    InvalidLevel {
        /// The requested level.
        level: usize,
        /// The maximum level.
        max: usize,
    },
    /// Operands are at levels that the operation cannot combine.
    #[error("level mismatch: {left} vs {right}")]
    LevelMismatch {
        /// Level of the first operand.
        left: usize,
        /// Level of the second operand.
        right: usize,
    },
    /// Operands have different scales.
    #[error("scale mismatch: {left} vs {right}")]
    ScaleMismatch {
        /// Scale of the first operand.
        left: f64,
        /// Scale of the second operand.
        right: f64,
    },
    /// Operands belong to different parameter sets.
    #[error("operands belong to different parameter sets")]
    ParametersMismatch,
    /// A ciphertext cannot be rescaled: it is at level 0.
    #[error("cannot rescale a ciphertext at level 0")]
    RescaleAtLevelZero,
    /// The ciphertext has the wrong number of polynomials for the operation.
    #[error("ciphertext has {size} polynomials, expected {expected}")]
    InvalidCiphertextSize {
        /// Actual number of polynomials.
        size: usize,
        /// Expected number.
        expected: usize,
    },
    /// No Galois key for the requested rotation or conjugation.
    #[error("no Galois key for Galois element {galois_element}")]
    MissingGaloisKey {
        /// The Galois element X -> X^g.
        galois_element: u64,
    },
    /// A key-switching key generated for fewer levels than the ciphertext has.
    #[error("the key for Galois element {galois_element} covers levels up to {key_level}, the ciphertext is at level {level}")]
    KeyLevelTooLow {
        /// The Galois element X -> X^g.
        galois_element: u64,
        /// The highest ciphertext level the key serves.
        key_level: usize,
        /// The ciphertext's level.
        level: usize,
    },
    /// A rotation step is out of range.
    #[error("rotation step {step} is out of range for {slots} slots")]
    InvalidRotation {
        /// The requested step.
        step: i64,
        /// Number of slots.
        slots: usize,
    },
    /// A matrix or vector has the wrong shape.
    #[error("invalid shape: {reason}")]
    InvalidShape {
        /// What was wrong.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Rng,
    /// Malformed serialised data.
    #[error("malformed serialised data: {reason}")]
    Malformed {
        /// What was wrong.
        reason: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, CkksError>;

impl From<ppml_wire::WireError> for CkksError {
    fn from(e: ppml_wire::WireError) -> Self {
        use ppml_wire::WireError as W;
        let reason = match e {
            W::Trailing { .. } => "trailing bytes",
            W::TooLarge { .. } => "length above its bound",
            _ => "truncated input",
        };
        CkksError::Malformed { reason }
    }
}
