//! # ppml-tls: certificates and TLS 1.3 for ppml's networked components
//!
//! One job: the certificates of a deployment and the rustls configurations every networked
//! component (the HE server and client, the MPC parties) uses. It knows nothing of HE or MPC.
//!
//! - [`Ca`]: a deployment's own certificate authority (ECDSA P-256): [`Ca::generate`],
//!   [`Ca::write`] (`ca.pem`, and `ca.key` with mode 0600), [`Ca::load`], and [`Ca::issue`] of
//!   an identity for a DNS name, usable as TLS server and client, so identities can be added
//!   later without a new deployment.
//! - [`read_certs`], [`read_key`], [`Identity::load`]: PEM readers, bounded
//!   ([`MAX_PEM_BYTES`]), with typed errors ([`parse_certs`] and [`parse_key`] on bytes; fuzz
//!   target `tls_pem`).
//! - [`server_config`], [`client_config`]: TLS 1.3 only (rustls with the `ring` provider, no
//!   resumption); the client trusts roots or one pinned certificate ([`Trust`]) and always
//!   checks the server's name; the server may require client certificates (mutual TLS).
//! - [`Connector`], [`Acceptor`]: blocking handshakes over any `Read + Write` stream.
//!
//! What it protects: the peer's identity (the server's certificate chains to a trusted CA and
//! names the server, or is the pinned one), and the confidentiality and integrity of the bytes
//! in between. What it does not: traffic analysis (sizes and timing of messages), and anyone
//! who holds a trusted CA's key or the peer's private key.
//!
//! # Example
//! ```no_run
//! use ppml_tls::{Acceptor, Ca, Connector, Trust};
//! let ca = Ca::generate("my deployment CA")?;
//! let server = Acceptor::new(&ca.identity("he-server")?, None)?;
//! let client = Connector::new(&Trust::Roots(vec![ca.cert().clone()]), None, "he-server")?;
//! # let _ = (server, client);
//! # Ok::<(), ppml_tls::TlsError>(())
//! ```

mod ca;
mod config;
mod error;
mod pem;
mod stream;

pub use ca::{check_name, Ca, CA_VALIDITY, CLOCK_SKEW, LEAF_VALIDITY};
pub use config::{client_config, provider, server_config, Trust};
pub use error::{Result, TlsError};
pub use pem::{parse_certs, parse_key, read_certs, read_key, Identity, MAX_PEM_BYTES};
pub use stream::{Acceptor, ClientStream, Connector, ServerStream};

/// The rustls this crate configures (so users name its types in the same version).
pub use rustls;
