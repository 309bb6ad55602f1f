//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while making, reading or using certificates and TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A private key does not belong to the certificate it was given with.
    #[error("the key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A name that cannot be a certificate's DNS name (or a file name beside it).
    #[error("{name:?} is not a valid identity name ({reason})")]
    Name {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A validity period that ends before it starts, or outside what X.509 can say.
    #[error("invalid validity period: {reason}")]
    Validity {
        /// Why it is refused.
        reason: &'static str,
    },
    /// Certificate generation or signing failed.
    #[error("certificate generation: {source}")]
    Certificate {
        /// The error of the certificate builder.
        source: rcgen::Error,
    },
    /// rustls refused a configuration (a bad certificate, key or root).
    #[error("TLS configuration: {source}")]
    Config {
        /// The rustls error.
        source: rustls::Error,
    },
    /// The client-certificate verifier could not be built (for example, no roots).
    #[error("TLS client verifier: {source}")]
    Verifier {
        /// The verifier builder's error.
        source: rustls::server::VerifierBuilderError,
    },
    /// The handshake failed: the peer's certificate was refused, the peer refused ours, the
    /// connection closed or timed out.
    #[error("TLS handshake with {peer}: {source}")]
    Handshake {
        /// Who the peer was meant to be (the server name, or "a client").
        peer: String,
        /// The error, a rustls error inside an I/O error when a check failed.
        source: std::io::Error,
    },
}

/// Result with [`TlsError`].
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

impl From<rcgen::Error> for TlsError {
    fn from(source: rcgen::Error) -> Self {
        Self::Certificate { source }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(source: rustls::Error) -> Self {
        Self::Config { source }
    }
}

impl From<rustls::server::VerifierBuilderError> for TlsError {
    fn from(source: rustls::server::VerifierBuilderError) -> Self {
        Self::Verifier { source }
    }
}
