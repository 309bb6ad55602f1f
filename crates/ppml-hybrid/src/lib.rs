//! # ppml-hybrid: two-party inference with no third party
//!
//! The client holds an image, the server a model; nobody else takes part, and all correlated
//! randomness is made by these two. Values live as additive shares over `Z_2^64` with 16
//! fractional bits (the server holds share 0, the client share 1).
//!
//! - Linear layers ([`linear`]): Cheetah's coefficient-packed polynomial products (Huang et al.,
//!   USENIX Security 2022) on the client's encrypted share, with the exact RLWE scheme of
//!   `ppml-rlwe` (t = 2^64); the server masks, re-randomises and floods what it returns.
//! - Oblivious transfer ([`ot`]): base OTs (Chou-Orlandi 2015 on Ristretto) and IKNP extension
//!   (Ishai et al., CRYPTO 2003) in both directions, run in an input-independent offline phase;
//!   the online phase turns random OTs into chosen-message OTs (Beaver 1995).
//! - Non-linear layers: AND gates on OT-made bit triples ([`boolean`]), CrypTFlow2's
//!   millionaires' comparison and DReLU ([`compare`]; Rathee et al., CCS 2020), ReLU by a
//!   multiplexer, max-pooling tournaments, squares by Gilboa's OT multiplication and SecureML's
//!   local truncation ([`nonlinear`]).
//! - [`messages`]: the typed messages of a linear layer (encrypted uploads, masked results);
//!   the other messages are typed where they are defined ([`plan::Plan`], [`session::Request`]).
//! - [`plan`]: a model as the parties run it; [`session`]: the client's and the server's side
//!   of a session over any [`link`], with the offline phase (random OTs made ahead of a query)
//!   apart from the online one; [`tls`]: the link over TLS 1.3 (`ppml-tls`); [`server`]: the
//!   server accepting clients; [`backend`]: [`HybridBackend`], the client of a server on
//!   threads of this process (over TLS on 127.0.0.1) or at an address.
//!
//! Security: semi-honest client and server; 128-bit computational security (RLWE at the
//! HomomorphicEncryption.org bound, 128 base OTs, AES-128); masks uniform over the whole ring;
//! HE noise flooded with 40 bits of statistical security. The server sees RLWE ciphertexts and
//! uniformly masked openings; the client sees masked layer outputs and the logits. What leaks:
//! the architecture and shapes, the number of images, timing. Not protected: a party that
//! deviates from the protocol. Between them, TLS 1.3 authenticates the server (a certificate of
//! the deployment's CA, and its name) and keeps a network attacker from reading or altering
//! the messages.

pub mod backend;
pub mod boolean;
pub mod compare;
pub mod error;
pub mod fixed;
pub mod linear;
pub mod link;
pub mod messages;
pub mod nonlinear;
pub mod ot;
pub mod party;
pub mod plan;
pub mod prg;
pub mod server;
pub mod session;
pub mod tls;

pub use backend::{HybridBackend, RemoteServer};
pub use error::{HybridError, Result};
pub use link::{memory_pair, Link, LinkStats, MemoryLink};
pub use ot::{OtCount, Role};
pub use party::Party;
pub use session::{ClientSession, PhaseCost, ServerSession};
