//! Benchmarks of the MPC backends on `lenet` and `mlp` (random weights), one image and batch 100,
//! next to plain inference.
#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: criterion macros, fixed inputs"
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ppml_mpc::{MpcBackend, MpcConfig, Protocol};
use ppml_nn::backend::{Backend, PlainBackend};
use ppml_nn::Tensor;

fn images(n: usize) -> Tensor {
    let data = (0..n * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.4)
        .collect();
    Tensor::new(vec![n, 1, 28, 28], data).expect("shape")
}

fn bench(c: &mut Criterion) {
    for name in ["mlp", "lenet"] {
        let mut model = ppml_nn::zoo::architecture(name).expect("zoo");
        ppml_nn::zoo::init_weights(&mut model, 1);
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        let backends: Vec<Box<dyn Backend>> = vec![
            Box::new(PlainBackend::default()),
            Box::new(MpcBackend::in_process(Protocol::Mpc3, MpcConfig::default()).expect("config")),
            Box::new(MpcBackend::in_process(Protocol::Mpc2, MpcConfig::default()).expect("config")),
        ];
        for mut b in backends {
            b.setup(&model).expect("setup");
            for n in [1usize, 100] {
                let x = images(n);
                let (_, stats) = b.infer(&x).expect("infer");
                eprintln!(
                    "{name} {} batch {n}: {} bytes, {} rounds",
                    b.name(),
                    stats.bytes_sent,
                    stats.rounds
                );
                group.throughput(Throughput::Elements(n as u64));
                group.bench_function(format!("{}/batch{n}", b.name()), |bch| {
                    bch.iter(|| b.infer(&x).expect("infer"))
                });
            }
        }
        group.finish();
    }
}

/// DCF key generation and one party's evaluation for a batch of 4096 comparisons on 39 bits
/// (`mpc2`'s comparison width at 16 fractional bits).
fn dcf(c: &mut Criterion) {
    use ppml_mpc::comparison::dcf;
    let n = 4096;
    let bits = 39;
    let mut prg = ppml_mpc::prg::Prg::from_os();
    let words = prg.u64s(6 * n);
    let alphas: Vec<u64> = words[..n].iter().map(|a| a & ((1 << bits) - 1)).collect();
    let betas: Vec<dcf::Pair> = words[n..3 * n]
        .chunks_exact(2)
        .map(|p| [p[0], p[1]])
        .collect();
    let roots: Vec<u128> = words[3 * n..5 * n]
        .chunks_exact(2)
        .map(|p| u128::from(p[0]) | (u128::from(p[1]) << 64))
        .collect();
    let xs = &words[5 * n..];
    let mut group = c.benchmark_group("dcf");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("generate/4096x39", |b| {
        b.iter(|| dcf::generate(bits, &alphas, &betas, (&roots, &roots)))
    });
    let cw = dcf::generate(bits, &alphas, &betas, (&roots, &roots));
    group.bench_function("evaluate/4096x39", |b| {
        b.iter(|| dcf::evaluate(0, &roots, &cw, xs).expect("sizes"))
    });
    group.finish();
}

criterion_group!(benches, bench, dcf);
criterion_main!(benches);
