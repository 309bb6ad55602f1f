//! Shared test helpers: seeded randomness, cached keys per preset.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers shared by several test binaries"
)]

pub mod noise;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ppml_ckks::Preset;
use ppml_ckks::{CkksParameters, GaloisKeys, PublicKey, RelinearizationKey, SecretKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The environment variable that picks the seed of every test's randomness.
pub const SEED_VAR: &str = "PPML_TEST_SEED";

/// The seed of this run: `PPML_TEST_SEED` if set (a decimal number), else a fixed default, so
/// that rerunning a failed test replays it, and another draw is one variable away.
pub fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={v:?} is not a decimal number")),
        Err(_) => 0x5eed,
    }
}

/// The randomness of the test named `test` (key generation and encryption noise): a ChaCha20
/// stream from [`seed`] and the name, so each test draws its own stream whatever order the
/// tests run in. Says the seed on stderr, which the harness shows when the test fails.
pub fn rng(test: &str) -> ChaCha20Rng {
    let seed = seed();
    eprintln!("{test}: randomness from {SEED_VAR}={seed}");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    // FNV-1a of the name: distinct names give distinct streams.
    let name = test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    key[8..16].copy_from_slice(&name.to_le_bytes());
    ChaCha20Rng::from_seed(key)
}

/// Keys of one parameter set.
pub struct Keys {
    pub params: Arc<CkksParameters>,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub rlk: RelinearizationKey,
    pub gk: GaloisKeys,
}

/// Rotation steps every cached key set supports.
pub fn steps(slots: usize) -> Vec<i64> {
    let mut s: Vec<i64> = (0..slots.trailing_zeros()).map(|k| 1i64 << k).collect();
    s.extend([-1, -3, 3, 5, 7, 77, 1000 % slots as i64]);
    s
}

/// Keys for a preset, generated once per test binary from [`rng`].
pub fn keys(preset: Preset) -> Arc<Keys> {
    static CACHE: OnceLock<Mutex<HashMap<Preset, Arc<Keys>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap();
    guard
        .entry(preset)
        .or_insert_with(|| {
            let params = preset.build().unwrap();
            let mut rng = rng(&format!("keys of {preset:?}"));
            let sk = SecretKey::generate_with_rng(&params, &mut rng);
            let pk = sk.public_key_with_rng(&mut rng);
            let rlk = sk.relinearization_key_with_rng(&mut rng);
            let gk = sk.galois_keys_with_rng(&steps(params.slots()), true, &mut rng);
            Arc::new(Keys {
                params,
                sk,
                pk,
                rlk,
                gk,
            })
        })
        .clone()
}

/// Deterministic pseudo-random values in [-1, 1].
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Largest absolute difference.
pub fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
