//! `ppml-tee`: private inference in a trusted execution environment.
//!
//! An enclave process holds the model (sealed at rest), proves what code it runs with a quote
//! whose report data binds a fresh channel key and the client's nonce, and serves inference over
//! an encrypted, authenticated channel bound to that proof. The crate is layered so that the
//! protocol logic never touches a socket:
//!
//! - [`channel`]: the record layer (per-direction ChaCha20-Poly1305 keys and sequence numbers);
//! - [`handshake`]: the attested X25519 key exchange, HKDF-SHA256 over the transcript;
//! - [`hello`]: the two handshake messages, typed, with total decoders;
//! - [`quote`]: the SGX quote v3 layout, [`quote::Measurement`];
//! - [`evidence`]: the `sgx` (Gramine `/dev/attestation`) and `simulated` providers;
//! - [`verify`]: the client's verifier (`dcap-qvl` for real SGX quotes, offline);
//! - [`seal`]: the model sealed at rest;
//! - [`wire`]: framed I/O over a stream and the request/response messages;
//! - [`service`] and [`client`]: the enclave server and the client over TCP;
//! - [`backend`]: [`backend::TeeBackend`], the [`ppml_nn::backend::Backend`] for the CLI.
//!
//! The simulated mode runs every check for real but offers no hardware isolation; it is always
//! labelled "simulated (no hardware isolation)". See `docs/tee.md` for the threat model.
//!
//! # Example
//!
//! ```
//! use ppml_nn::{engine, zoo, Tensor};
//! use ppml_tee::evidence::SimulatedProvider;
//! use ppml_tee::{Enclave, EnclaveOptions, Measurement, TeeClient, VerifyPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut model = zoo::architecture("mlp").ok_or("zoo")?;
//! zoo::init_weights(&mut model, 1);
//!
//! // An enclave on a loopback port, with simulated evidence for a known measurement.
//! let m = Measurement([7; 32]);
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let provider = Box::new(SimulatedProvider::with_measurement(m)?);
//! let enclave = Enclave::new(listener, model.clone(), provider, EnclaveOptions::default())?;
//! let handle = enclave.spawn()?;
//!
//! // The client requires that measurement and accepts simulated evidence explicitly.
//! let mut client = TeeClient::connect(handle.addr(), &VerifyPolicy::new(m, true))?;
//! assert_eq!(client.attestation().mode.label(), "simulated (no hardware isolation)");
//! let images = Tensor::zeros(vec![2, 1, 28, 28]);
//! assert_eq!(client.infer(&images)?, engine::forward(&model, &images)?);
//!
//! // Without the flag, the same enclave is refused.
//! assert!(TeeClient::connect(handle.addr(), &VerifyPolicy::new(m, false)).is_err());
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod channel;
pub mod client;
mod error;
pub mod evidence;
pub mod handshake;
pub mod hello;
pub mod quote;
pub mod seal;
pub mod service;
pub mod verify;
pub mod wire;

pub use backend::TeeBackend;
pub use client::TeeClient;
pub use error::{AttestationError, FrameError, Result, TeeError};
pub use evidence::{ProviderChoice, TeeMode};
pub use quote::Measurement;
pub use service::{run_enclave, Enclave, EnclaveHandle, EnclaveOptions, ModelSource};
pub use verify::{DcapPolicy, VerifyPolicy};

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| TeeError::Rng(e.to_string()))?;
    Ok(b)
}
