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
//! - [`plan`]: a model as the parties run it; [`session`]: the client's and the server's side
//!   of a session over any [`link`]; [`backend`]: [`HybridBackend`], the server on a thread over
//!   an in-memory link or at a TCP address ([`tcp`]).
//!
//! Security: semi-honest client and server; 128-bit computational security (RLWE at the
//! HomomorphicEncryption.org bound, 128 base OTs, AES-128); masks uniform over the whole ring;
//! HE noise flooded with 40 bits of statistical security. The server sees RLWE ciphertexts and
//! uniformly masked openings; the client sees masked layer outputs and the logits. What leaks:
//! the architecture and shapes, the number of images, timing. Not protected: a party that
//! deviates from the protocol.

pub mod backend;
pub mod boolean;
pub mod compare;
pub mod error;
pub mod fixed;
pub mod linear;
pub mod link;
pub mod nonlinear;
pub mod ot;
pub mod party;
pub mod plan;
pub mod prg;
pub mod session;
pub mod tcp;

pub use backend::HybridBackend;
pub use error::{HybridError, Result};
pub use link::{memory_pair, Link, LinkStats, MemoryLink};
pub use ot::{OtCount, Role};
pub use party::Party;
pub use session::{CallSplit, ClientSession, PhaseCost, ServerSession};
