//! # ppml-ckks: RNS-CKKS approximate homomorphic encryption
//!
//! Approximate arithmetic on encrypted vectors of real (or complex) numbers, in the full-RNS
//! variant of CKKS (Cheon–Kim–Kim–Song; Cheon–Han–Kim–Kim–Song for RNS) with hybrid key
//! switching. The crate knows nothing of neural networks; `ppml-he` builds on it.
//!
//! - [`CkksParameters`]: ring degree N ∈ {2^12, ..., 2^16}, a chain of NTT-friendly primes
//!   q_0..q_L (q ≡ 1 mod 2N, generated deterministically from bit sizes or given), the special
//!   primes of hybrid key switching, and the default scale. Built by
//!   [`CkksParameters::builder`] or a [`Preset`], validated once, shared by `Arc`; every
//!   operation checks its operands belong to the same parameters.
//! - [`Encoder`]: the canonical embedding (special FFT) between N/2 complex slots and scaled
//!   integer polynomials.
//! - Keys: [`SecretKey`] (uniform ternary, zeroised on drop, no `Debug` output, no
//!   `PartialEq`), [`PublicKey`], [`RelinearizationKey`], [`GaloisKeys`] (rotations by any set of
//!   steps and conjugation). Encryption with the public key or the secret key (the latter sends its
//!   mask as a 32-byte seed, halving the upload).
//! - [`Evaluator`]: add, sub, negate, plaintext and scalar add/multiply, multiply + relinearise,
//!   rescale, level matching, rotations, conjugation, hoisted rotations ([`Evaluator::hoist`],
//!   [`Evaluator::rotate_hoisted`]) and baby-step giant-step diagonal matrix-vector products
//!   ([`LinearTransform`], [`Evaluator::linear_transform`], and [`Evaluator::linear_transform_sum`]
//!   for block matrices over several ciphertexts).
//! - Serialisation (`to_bytes` / `from_bytes` on every public object): a compact bit-packed
//!   binary format whose decoder validates everything and never panics.
//!
//! Polynomials are kept in the NTT domain; NTTs and vectorised modular products come from
//! `tfhe-ntt` (AVX-512 IFMA when available for primes below 2^50), and RNS limbs are processed
//! in parallel with rayon.
//!
//! ## Security
//!
//! Security rests on the ring-LWE problem with a uniform ternary secret and centred binomial
//! error (η = 21, standard deviation ≈ 3.24, matching the standard's σ = 3.2). The total
//! modulus that matters for lattice attacks is the product of *all* primes, the special ones
//! included (key-switching keys live modulo Q·P). Parameter construction refuses any set whose
//! log2(Q·P) exceeds the HomomorphicEncryption.org standard's bound for 128-bit classical
//! security with ternary secrets (Albrecht et al. 2018, Table 1: N = 4096 → 109 bits,
//! 8192 → 218, 16384 → 438, 32768 → 881; for N = 65536, outside that table, 1770 bits by the
//! same estimator methodology), see [`max_total_modulus_bits`]. Randomness comes from a
//! ChaCha20 stream seeded by the operating system's CSPRNG; uniform masks are expanded from
//! per-object 32-byte seeds. CKKS decryptions leak information about the secret key when shared
//! with an adversary (Li–Micciancio 2021): callers must not reveal decrypted values to parties
//! that also hold ciphertexts, unless they add noise first.
//!
//! ## Scale management
//!
//! A product's scale is the product of the scales; [`Evaluator::rescale`] divides it by the last
//! prime q_level. Since primes are not exactly powers of two, scales drift; additions require
//! equal scales (relative tolerance 1e-9). To keep a scale fixed through a product, encode the
//! plaintext (or the other ciphertext) at scale q_level: after rescaling, the scale is back to
//! the original one.
//!
//! # Example
//!
//! ```
//! use ppml_ckks::{Encoder, Evaluator, Preset, SecretKey};
//!
//! # fn main() -> Result<(), ppml_ckks::CkksError> {
//! let params = Preset::N8192Depth6.build()?; // 7 ciphertext primes + 1 special, scale 2^26
//! let sk = SecretKey::generate(&params)?;
//! let pk = sk.public_key()?;
//! let rlk = sk.relinearization_key()?;
//! let gk = sk.galois_keys(&[1], false)?;
//! let (encoder, eval) = (Encoder::new(&params), Evaluator::new(&params));
//!
//! let x = [1.0, 2.0, 3.0, 4.0];
//! let pt = encoder.encode(&x, params.max_level(), params.scale())?;
//! let ct = pk.encrypt(&pt)?;
//! let sq = eval.mul_relin_rescale(&ct, &ct, &rlk)?; // x^2, one level consumed
//! let rot = eval.rotate(&sq, 1, &gk)?; // slot i <- slot i + 1
//! let out = encoder.decode(&sk.decrypt(&rot)?)?;
//! assert!((out[0] - 4.0).abs() < 1e-2 && (out[2] - 16.0).abs() < 1e-2);
//!
//! // Ciphertexts travel as bytes; decoding validates them.
//! let bytes = rot.to_bytes();
//! let back = ppml_ckks::Ciphertext::from_bytes(&params, &bytes)?;
//! assert_eq!(back.level(), rot.level());
//! # Ok(())
//! # }
//! ```

mod arith;
mod basis;
mod buffers;
mod ciphertext;
mod embedding;
mod encoding;
mod error;
mod keys;
mod ops;
mod packed;
mod params;
mod plaintext;
mod poly;
mod sampling;
mod serialize;
mod simd;

pub use ciphertext::Ciphertext;
pub use embedding::Complex;
pub use encoding::Encoder;
pub use error::{CkksError, Result};
pub use keys::{GaloisKeys, KeySwitchingKey, PublicKey, RelinearizationKey, SecretKey};
pub use ops::{BabySteps, Evaluator, HoistedCiphertext, LinearTransform};
pub use params::{
    generate_primes, max_total_modulus_bits, CkksParameters, CkksParametersBuilder, Preset,
    MAX_DEGREE, MAX_PRIME_BITS, MIN_DEGREE, MIN_PRIME_BITS,
};
pub use plaintext::Plaintext;
