//! Shared test helpers: cached keys per preset.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "test helpers shared by several test binaries"
)]

pub mod noise;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ppml_ckks::Preset;
use ppml_ckks::{CkksParameters, GaloisKeys, PublicKey, RelinearizationKey, SecretKey};

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

/// Keys for a preset, generated once per test binary.
pub fn keys(preset: Preset) -> Arc<Keys> {
    static CACHE: OnceLock<Mutex<HashMap<Preset, Arc<Keys>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap();
    guard
        .entry(preset)
        .or_insert_with(|| {
            let params = preset.build().unwrap();
            let sk = SecretKey::generate(&params).unwrap();
            let pk = sk.public_key().unwrap();
            let rlk = sk.relinearization_key().unwrap();
            let gk = sk.galois_keys(&steps(params.slots()), true).unwrap();
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
