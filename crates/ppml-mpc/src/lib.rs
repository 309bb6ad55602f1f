//! `ppml-mpc`: secure multi-party inference for ppml.
//!
//! Two protocols, both behind one [`ppml_nn::backend::Backend`], [`MpcBackend`]:
//! - `mpc2` ([`Protocol::Mpc2`]): two computing parties holding additive shares over `Z_2^64`,
//!   and a dealer that supplies correlated randomness (matrix/convolution Beaver triples, square
//!   pairs, comparison material), seed-compressed.
//! - `mpc3` ([`Protocol::Mpc3`]): three parties with 2-out-of-3 replicated sharing
//!   (ABY3/Falcon): one-round multiplication by re-sharing with pairwise-PRG zero shares, ABY3
//!   share truncation, exact comparison for ReLU and max-pooling.
//!
//! There is one implementation of each: the party service (`service.rs`) (start-up once, then
//! client sessions multiplexed over the parties' mesh, `mesh.rs`, in typed
//! [`mesh_frame`]s), and the client (`client.rs`).
//! [`MpcBackend::in_process`] runs the three parties as threads of this process over in-memory
//! links (socket pairs); [`MpcBackend::remote`] is the client of parties running as their own
//! processes over mutually authenticated TLS 1.3 ([`run_party`], see [Deployment](#deployment)).
//! Bytes and rounds are counted on the links in both cases, and each party reports its own
//! traffic with every result, so the client reports every party's traffic. Protocol code only
//! sees the [`transport::Transport`] trait.
//!
//! # Numbers
//! Fixed point in `Z_2^64` with `f` fractional bits (default 16). Weights are encoded with `f`
//! bits, biases with `2f` (they are added to products before truncation). Linear layers and
//! `x^2` are exact in the ring; each truncation is off by at most one unit in the last place,
//! and fails (an error of about `2^(64-f)`) with probability about `|x| / 2^63` where `x` is the
//! product before truncation (with `f = 16`, `|x| < 2^40`: below `2^-23` per value).
//! Comparisons (ReLU, max-pooling) are exact on the whole ring with the default
//! [`Comparison::BitDecomposition`], and for fixed-point values below `2^23` in magnitude with
//! [`Comparison::Fss`].
//!
//! # Threat model and what each party learns
//! Both backends are **semi-honest** (parties follow the protocol but try to learn from what they
//! see). The model's architecture and all shapes (layer types, sizes, the batch size) are public.
//! - **Client**: sends shares of its preprocessed images, receives the shares of the logits and
//!   reconstructs them; it learns the logits and nothing else about the weights.
//! - **Model owner**: shares the weights at setup; it learns nothing about queries.
//! - **`mpc2` parties 0 and 1**: each sees its own shares and values opened during the protocol,
//!   all of them one-time-padded by dealer randomness unknown to it: `X - A` and `W - B`
//!   (Beaver), `x + r` and `x - u` (comparison; `r`, `u` uniform), the bitwise Beaver openings
//!   and `[x >= 0] xor t` (`t` a uniform bit); with FSS, `x + r` and its DCF key, which is
//!   pseudorandom on its own. A single party's view is therefore independent
//!   of the image and of the weights. Two colluding parties learn everything.
//! - **`mpc2` dealer**: only sends; it knows all the correlated randomness but never sees a
//!   message derived from the image or the weights. A dealer colluding with one party learns
//!   everything (the usual trusted-dealer assumption).
//! - **`mpc3` parties**: any single party holds two of three replicated shares (uniform) and sees
//!   re-shared values masked by zero shares from a PRG key it does not hold; party 2 acts as the
//!   comparison helper and, like the `mpc2` dealer, only sends during comparisons; parties 0 and
//!   1 see only masked openings as above. Security holds against any one corrupted party
//!   (honest majority); two colluding parties learn everything.
//! - Nothing is protected against a malicious party (no MACs); a party that disconnects, stays
//!   silent beyond the configured timeout or sends a frame of the wrong length makes the others
//!   stop with an [`MpcError`]; no partial output is returned, and the backend must be set up
//!   again (its PRG streams are no longer in step).
//!
//! # Deployment
//! [`deploy`] runs each party as a long-running process (`ppml party --id I --config
//! parties.toml`, i.e. [`run_party`]); clients are [`MpcBackend::remote`]. [`quick_start`]
//! (`ppml mpc-certs --out DIR`) makes a CA (its key kept, so that [`add_client`] can issue new
//! client identities later) and one certificate per party and a default client, and writes a
//! `parties.toml`, which [`PartiesConfig`] reads. `party-0` is also the model owner: it
//! secret-shares the weights to the others once at start-up. `party-2` is the dealer under
//! `mpc2`, the third replicated party under `mpc3`. PRG keys are drawn afresh for every
//! session by the parties that share them (under `mpc2` the dealer draws them), never by the
//! client. Quick start: `docs/mpc.md`.
//!
//! ## Network threat model
//! - Every connection is TLS 1.3 (rustls, `ring` provider) with mutual authentication: chains
//!   must lead to the deployment CA, server names must be the node's name, and each peer's
//!   end-entity certificate must be the one configured for it (pinning). A network attacker
//!   cannot read, alter, replay or inject messages or impersonate a node.
//! - Frames are a word count plus words, bounded by `max_frame_words`; a larger announcement is
//!   [`MpcError::FrameTooLarge`], a frame of the wrong length [`MpcError::Malformed`], bytes that
//!   are not TLS [`MpcError::Tls`], a closed connection [`MpcError::Disconnected`], silence or a
//!   peer that stops reading [`MpcError::Timeout`] after the configured timeout. Any of these
//!   stops the node (and so, by disconnection, the others) with no output; nothing panics.
//! - Not protected: traffic analysis (sizes and timing depend only on public shapes), denial of
//!   service (anyone who can reach a port during mesh setup can make that node abort by failing
//!   a handshake; any node can stall or abort the computation), and a malicious authenticated
//!   party (the protocols are semi-honest). Private keys are read from files; protect them.
//!
//! # Performance
//! The ring matrix products (the hot path) are `u64` kernels dispatched at run time with
//! [`pulp`] to the best instruction set of the CPU (AVX-512 has 64-bit vector multiplication),
//! split across both cores with rayon; PRGs are AES-128 in counter mode (AES-NI). Measured with
//! `cargo bench -p ppml-mpc --bench mpc` (in-process transport, random weights, 2 cores shared
//! with other jobs: load average about 12 during the run, so absolute times are pessimistic;
//! ratios are to plain in the same run):
//!
//! | model | backend | one image | ratio | bytes / image | rounds | batch 100 | ratio |
//! |-------|---------|-----------|-------|---------------|--------|-----------|-------|
//! | mlp   | plain   | 0.068 ms  | 1     |               |        | 232,700 img/s | 1 |
//! | mlp   | mpc3    | 1.23 ms   | 18    | 80 KB         | 23     | 7,150 img/s | 33 |
//! | mlp   | mpc2    | 1.39 ms   | 20    | 61 KB         | 21     | 5,840 img/s | 40 |
//! | lenet | plain   | 0.55 ms   | 1     |               |        | 3,070 img/s | 1 |
//! | lenet | mpc3    | 6.15 ms   | 11    | 2.36 MB       | 65     | 137 img/s | 22 |
//! | lenet | mpc2    | 6.40 ms   | 12    | 1.98 MB       | 62     | 138 img/s | 22 |
//!
//! Bytes count every party (dealer included) and the client's shares; `mpc2`'s dealer traffic is
//! generated per query, not ahead of time.
//!
//! # Comparisons
//! [`Comparison`] selects the protocol behind ReLU and max-pooling in both backends: the
//! bit decomposition of [`comparison`] (the default: 8 rounds, little traffic) or AriaNN's function
//! secret sharing ([`comparison::dcf`] keys over fixed-key AES, one round, large keys). Measured on `lenet`,
//! one image, in-process (`ppml eval --model lenet --backend mpc2 --comparison ... --batch 1
//! --json`, same run, two busy cores): bit decomposition 6.8 ms, 2.0 MB, 62 rounds; FSS 90 ms,
//! 39 MB, 13 rounds. FSS is for links where round trips cost more than bandwidth;
//! `docs/mpc.md` compares them.
//!
//! # Offline and online phases
//! Correlated randomness that does not depend on the input (`mpc2`'s dealer messages, `mpc3`'s
//! comparison-helper messages, FSS keys included) is made by party 2 ahead of the queries that
//! use it, into a pool of `pool_depth` queries per session refilled in the background
//! (`material.rs`); a query of the announced pool batch size then runs without waiting for it.
//! Its cost is reported apart ([`ppml_nn::backend::CallStats`]'s `offline_bytes` and
//! `offline_time`), and a query that found no material ready says so (`offline_on_demand`).
//!
//! # Not yet done
//! - `mpc3` compares with party 2 as a helper (SecureNN-style), not with Falcon's or ABY3's
//!   helper-free MSB extraction.
//! - A party that dies ends the deployment: the other two exit with an error and all three must
//!   be restarted (see [`deploy`]).
//!
//! # Example
//! ```
//! use ppml_nn::backend::Backend;
//! use ppml_mpc::{MpcBackend, MpcConfig, Protocol};
//!
//! let mut model = ppml_nn::zoo::architecture("mlp").unwrap();
//! ppml_nn::zoo::init_weights(&mut model, 1);
//! let mut backend = MpcBackend::in_process(Protocol::Mpc3, MpcConfig::default()).unwrap();
//! backend.setup(&model).unwrap();
//! let images = ppml_nn::Tensor::zeros(vec![2, 1, 28, 28]);
//! let (logits, stats) = backend.infer(&images).unwrap();
//! assert_eq!(logits.shape(), &[2, 10]);
//! assert!(stats.bytes_sent > 0);
//! ```

use std::time::Duration;

mod backend;
mod certs;
mod client;
pub mod comparison;
mod config;
pub mod deploy;
mod error;
pub mod linalg;
pub mod link;
mod material;
mod mesh;
pub mod mesh_frame;
pub mod messages;
mod mpc2;
mod mpc3;
pub mod net;
mod plan;
pub mod prg;
pub mod ring;
mod service;
mod topology;
pub mod transport;

pub use backend::MpcBackend;
pub use certs::{add_client, generate_certs, quick_start, CertFiles};
pub use config::{node_name, NodeConfig, PartiesConfig};
pub use deploy::{run_party, PartyOptions, PartyReport};
pub use error::{MpcError, Result};
pub use material::PoolRequest;

/// The protocol the parties run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Two parties with additive sharing and a dealer (`party-2`).
    Mpc2,
    /// Three parties with replicated sharing.
    Mpc3,
}

/// Queries' worth of correlated randomness made ahead per session, when nothing else is
/// configured.
pub const DEFAULT_POOL_DEPTH: usize = 4;

/// How long a party waits for a message that is due, when nothing else is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The secure comparison behind ReLU and max-pooling, in both backends (`mpc2`'s dealer or
/// `mpc3`'s party 2 supplies its correlated randomness).
///
/// Measured on `lenet` (one image, in-process, see the crate docs): FSS needs 5x fewer rounds
/// but 7x the CPU time and 20x the bytes, so bit decomposition is the default; FSS pays off
/// when round trips are slow (a WAN) and bandwidth is plentiful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Comparison {
    /// AriaNN's function-secret-sharing comparison ([`comparison::dcf`]): one online round per comparison,
    /// exact for values below `2^23` in magnitude; the helper sends each computing party about
    /// 1.3 KB of keys per compared value (at 16 fractional bits).
    Fss,
    /// Bit decomposition of the masked value with a carry tree ([`comparison`]): eight rounds,
    /// exact on the whole ring; the helper sends about 40 bytes per value.
    #[default]
    BitDecomposition,
}

impl Comparison {
    /// The name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fss => "fss",
            Self::BitDecomposition => "bit-decomposition",
        }
    }

    /// The comparison called `name` (see [`Comparison::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Fss, Self::BitDecomposition]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// Configuration shared by both backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpcConfig {
    /// Fractional bits of the fixed-point encoding (1 to 30; default 16).
    pub frac_bits: u32,
    /// How long a party waits for a peer's message before giving up.
    pub timeout: Duration,
    /// The comparison protocol for ReLU and max-pooling.
    pub comparison: Comparison,
    /// Queries whose correlated randomness party 2 makes ahead, per session (0: none, every
    /// query makes its own online). In-process parties only; deployed parties take it from
    /// `parties.toml`.
    pub pool_depth: usize,
}

impl Default for MpcConfig {
    fn default() -> Self {
        Self {
            frac_bits: 16,
            timeout: DEFAULT_TIMEOUT,
            comparison: Comparison::default(),
            pool_depth: DEFAULT_POOL_DEPTH,
        }
    }
}
