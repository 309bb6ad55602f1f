//! # ppml-rlwe: exact RLWE encryption over `Z_2^64` for two-party linear layers
//!
//! The scheme Cheetah (Huang, Lu, Hong, Chen, Li, Ma; USENIX Security 2022) runs its linear
//! layers on: ring-LWE ciphertexts over `R_q = Z_q[X]/(X^N + 1)` whose plaintexts are
//! polynomials over `Z_t` with `t = 2^64`, one ring element per coefficient (no SIMD slots, no
//! rotations, so no Galois keys). The client encrypts its share; the server multiplies by
//! plaintext polynomials (its weights laid out so that the wanted sums of products land on known
//! coefficients), subtracts a uniform mask, re-randomises with a public-key encryption of zero,
//! floods the noise and returns the result; the client decrypts its share of the product.
//!
//! The noise sits in the low bits as in BGV (`c_0 + c_1 s = m + t e` over the integers, centred),
//! not under a scale `Delta = q / t` as in BFV: with `t = 2^64` and a product of primes `q`, the
//! LSB form needs no rounding at decryption, only an exact centred lift (Garner's mixed-radix
//! conversion) reduced modulo `2^64`. Security is the same ring-LWE assumption.
//!
//! - [`Params`]: N = 8192 and four NTT-friendly primes (log2 q about 218, the
//!   HomomorphicEncryption.org bound for 128-bit security with ternary secrets, checked through
//!   `ppml_ckks::max_total_modulus_bits`); primes from `ppml_ckks::generate_primes`, NTTs from
//!   `tfhe-ntt` (the crate ppml-ckks uses). The noise budget is in [`params`].
//! - [`SecretKey`], [`PublicKey`]: keys, encryption (seeded: an upload is one polynomial and a
//!   seed), decryption.
//! - [`Ciphertext`], [`PlainPoly`], [`Accumulator`]: the server's products and the flooded result.
//! - [`keep_coefficients`], [`SecretKey::decrypt_kept`]: a result cut down to the coefficients
//!   the client keeps (`c_1` whole, `c_0` at those coefficients).
//!
//! Every decoder checks lengths and that every word is reduced modulo its prime, and returns a
//! typed [`RlweError`] rather than panicking. The crate knows nothing of networks.

mod error;
mod eval;
mod kept;
mod keys;
pub mod params;
mod sampling;

pub use error::{Result, RlweError};
pub use eval::{Accumulator, Ciphertext, PlainPoly};
pub use kept::{keep_coefficients, kept_words};
pub use keys::{PublicKey, SecretKey};
pub use params::Params;
