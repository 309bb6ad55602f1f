//! Criterion benchmarks: encode, encrypt, multiply+relinearise+rescale and one rotation, at
//! N = 8192 with 7 + 1 primes (TenSEAL's MNIST tutorial chain [31, 26 x 6] + 31, scale 2^26)
//! and at N = 16384 ([50, 40 x 8] + 50, scale 2^40).
//!
//! `cargo bench -p ppml-ckks --bench ckks`, then, for the side-by-side reference with Microsoft
//! SEAL through TenSEAL on the same machine, `python3 crates/ppml-ckks/benches/tenseal_compare.py`
//! (`pip install tenseal`). The `calibration` entry times one tfhe-ntt forward + inverse NTT
//! (about 27 us on an idle machine here) so that results taken on a loaded machine can be scaled.

#![allow(clippy::expect_used, reason = "a benchmark aborts on setup failure")]

use criterion::{criterion_main, Criterion};
use ppml_ckks::{Encoder, Evaluator, Preset, SecretKey};

/// Benchmarks one preset.
fn bench_preset(c: &mut Criterion, preset: Preset, name: &str) {
    let params = preset.build().expect("params");
    let sk = SecretKey::generate(&params).expect("sk");
    let pk = sk.public_key().expect("pk");
    let rlk = sk.relinearization_key().expect("rlk");
    let gk = sk.galois_keys(&[1, 3], false).expect("gk");
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let level = params.max_level();
    let scale = params.scale();
    let values: Vec<f64> = (0..params.slots())
        .map(|i| ((i % 100) as f64) / 100.0)
        .collect();
    let pt = enc.encode(&values, level, scale).expect("encode");
    let ct = pk.encrypt(&pt).expect("encrypt");
    let ct2 = pk.encrypt(&pt).expect("encrypt");
    let hoisted = ev.hoist(&ct).expect("hoist");

    let mut g = c.benchmark_group(name);
    g.sample_size(20);
    g.bench_function("encode", |b| {
        b.iter(|| enc.encode(&values, level, scale).expect("encode"))
    });
    g.bench_function("encrypt_pk", |b| {
        b.iter(|| pk.encrypt(&pt).expect("encrypt"))
    });
    g.bench_function("encrypt_sk", |b| {
        b.iter(|| sk.encrypt(&pt).expect("encrypt"))
    });
    g.bench_function("encode_encrypt_sk_fused", |b| {
        b.iter(|| {
            sk.encrypt_values(&enc, &values, level, scale)
                .expect("encrypt")
        })
    });
    g.bench_function("decrypt_decode", |b| {
        b.iter(|| {
            enc.decode(&sk.decrypt(&ct).expect("decrypt"))
                .expect("decode")
        })
    });
    g.bench_function("mul_relin_rescale", |b| {
        b.iter(|| ev.mul_relin_rescale(&ct, &ct2, &rlk).expect("mul"))
    });
    g.bench_function("rotate", |b| {
        b.iter(|| ev.rotate(&ct, 1, &gk).expect("rotate"))
    });
    g.bench_function("rotate_hoisted_extra", |b| {
        b.iter(|| ev.rotate_hoisted_one(&hoisted, 3, &gk).expect("rotate"))
    });
    g.bench_function("rescale", |b| b.iter(|| ev.rescale(&ct).expect("rescale")));
    g.finish();
}

/// Calibration: one forward + inverse tfhe-ntt NTT at N = 8192 with a 50-bit prime (the issue
/// measured ~27 us on an idle machine), to tell machine load apart from our own costs.
fn bench_ntt(c: &mut Criterion) {
    let p = ppml_ckks::generate_primes(8192, &[50]).expect("prime")[0];
    let plan = tfhe_ntt::prime64::Plan::try_new(8192, p).expect("plan");
    let mut buf: Vec<u64> = (0..8192u64).map(|i| i * 7919 % p).collect();
    c.bench_function("calibration/tfhe_ntt_fwd_inv_8192_50bit", |b| {
        b.iter(|| {
            plan.fwd(&mut buf);
            plan.inv(&mut buf);
        })
    });
}

/// [`Evaluator::weighted_sums`] as in a throughput-mode dense layer: 16 rows of 256 terms over
/// 4 limbs at N = 8192 (chain [39, 27 x 3]: one wide and three narrow primes), 2^25 terms.
fn bench_weighted_sums(c: &mut Criterion) {
    let params = ppml_ckks::CkksParameters::builder()
        .degree(8192)
        .chain_bits(&[39, 27, 27, 27])
        .special_bits(&[39])
        .scale_bits(27)
        .build_arc()
        .expect("params");
    let sk = SecretKey::generate(&params).expect("sk");
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let pt = enc
        .encode(&[0.5; 16], params.max_level(), params.scale())
        .expect("encode");
    let inputs: Vec<_> = (0..256)
        .map(|_| sk.encrypt(&pt).expect("encrypt"))
        .collect();
    let rows: Vec<Vec<(u32, f64)>> = (0..16)
        .map(|r| {
            (0..256u32)
                .map(|j| (j, f64::from((j + r) % 7) - 3.0))
                .collect()
        })
        .collect();
    let bias = vec![0.25; 16];
    let q = params.chain()[params.max_level()] as f64;
    let mut g = c.benchmark_group("weighted_sums");
    g.sample_size(10);
    g.bench_function("16x256_n8192_4limbs", |b| {
        b.iter(|| ev.weighted_sums(&inputs, &rows, q, &bias).expect("sums"))
    });
    g.finish();
}

/// All benchmarks.
fn benches(c: &mut Criterion) {
    bench_ntt(c);
    bench_weighted_sums(c);
    bench_preset(c, Preset::N8192Depth6, "n8192_7primes");
    bench_preset(c, Preset::N16384Depth8, "n16384_9primes");
}

/// The criterion group (in a private module: the macro's function has no doc comment).
mod group {
    criterion::criterion_group!(ckks, super::benches);
}

criterion_main!(group::ckks);
