//! Encrypted `cnn` inference end to end (client encryption, server evaluation, client
//! decryption): latency mode on one image, throughput mode on a full batch (two images per slot,
//! in the real and imaginary parts).
//! Uses `models/cnn.safetensors` when present, random weights otherwise (same cost).
//! `cargo bench -p ppml-he`
#![allow(clippy::expect_used, reason = "benchmark setup")]
#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ppml_he::HeBackend;
use ppml_nn::backend::Backend;
use ppml_nn::{zoo, Model, Tensor};

fn cnn() -> Model {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/cnn.safetensors");
    ppml_nn::io::load(&path).unwrap_or_else(|_| {
        let mut m = zoo::architecture("cnn").expect("zoo");
        zoo::init_weights(&mut m, 1);
        m
    })
}

fn batch(m: &Model, n: usize) -> Tensor {
    let px: Vec<u8> = (0..n * 784).map(|i| ((i * 7919) % 256) as u8).collect();
    let mut data = Vec::with_capacity(px.len());
    m.preprocess_into(&px, &mut data);
    Tensor::new(vec![n, 1, 28, 28], data).expect("tensor")
}

fn bench(c: &mut Criterion) {
    let m = cnn();
    let mut g = c.benchmark_group("he_cnn");
    g.sample_size(10).measurement_time(Duration::from_secs(5));

    let mut lat = HeBackend::latency();
    lat.setup(&m).expect("setup");
    let one = batch(&m, 1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("latency_1_image", |b| {
        b.iter(|| lat.infer(&one).expect("infer"))
    });

    let mut tp = HeBackend::throughput();
    tp.setup(&m).expect("setup");
    let n = tp.slots().expect("slots");
    let full = batch(&m, n);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("throughput_{n}_images"), |b| {
        b.iter(|| tp.infer(&full).expect("infer"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
