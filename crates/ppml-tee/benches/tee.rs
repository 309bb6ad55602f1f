//! TEE benchmarks against plain inference in the same run: the attested handshake, and lenet at
//! batch 1 and batch 100 through the channel (simulated evidence, in-process enclave thread on
//! loopback) versus `engine::forward`. Goals (issue 6): batch 100 within 1.3x plain, handshake
//! within 20 ms.
#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: criterion macros, fixed inputs"
)]

use std::net::TcpListener;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ppml_nn::{engine, zoo, Model, Tensor};
use ppml_tee::channel::{Role, SessionKeys};
use ppml_tee::evidence::SimulatedProvider;
use ppml_tee::wire::{Request, Response};
use ppml_tee::{Enclave, EnclaveHandle, EnclaveOptions, Measurement, TeeClient, VerifyPolicy};

const M: Measurement = Measurement([0x42; 32]);

fn lenet() -> Model {
    let mut m = zoo::architecture("lenet").expect("zoo");
    zoo::init_weights(&mut m, 1);
    m
}

fn images(n: usize) -> Tensor {
    let data = (0..n * 784)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    Tensor::new(vec![n, 1, 28, 28], data).expect("shape")
}

fn start(model: &Model) -> EnclaveHandle {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = SimulatedProvider::with_measurement(M).expect("provider");
    Enclave::new(l, model.clone(), Box::new(p), EnclaveOptions::default())
        .expect("enclave")
        .spawn()
        .expect("spawn")
}

fn bench(c: &mut Criterion) {
    let model = lenet();
    let enclave = start(&model);
    let policy = VerifyPolicy::new(M, true);

    let mut g = c.benchmark_group("tee_handshake");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("connect_attest_derive", |b| {
        b.iter(|| TeeClient::connect(enclave.addr(), &policy).expect("connect"))
    });
    g.finish();

    let mut client = TeeClient::connect(enclave.addr(), &policy).expect("connect");
    for n in [1usize, 100] {
        let x = images(n);
        let mut g = c.benchmark_group(format!("lenet_b{n}"));
        g.sample_size(10).measurement_time(Duration::from_secs(4));
        g.bench_with_input(BenchmarkId::new("plain", n), &x, |b, x| {
            b.iter(|| engine::forward(&model, x).expect("forward"))
        });
        g.bench_with_input(BenchmarkId::new("tee", n), &x, |b, x| {
            b.iter(|| client.infer(x).expect("infer"))
        });
        g.finish();
    }

    // The channel alone, in memory: encode, seal and open a batch-100 request and its reply.
    let keys = SessionKeys::derive(&[1; 32], &[2; 32]);
    let (mut cs, mut co) = keys.split(Role::Client, 64 << 20);
    let (mut es, mut eo) = keys.split(Role::Enclave, 64 << 20);
    let x = images(100);
    let logits = engine::forward(&model, &x).expect("forward");
    let mut g = c.benchmark_group("channel_b100");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("encode_seal_open_decode", |b| {
        b.iter(|| {
            let req = eo
                .open(
                    &cs.seal(&Request::encode_infer(&x).expect("encode"))
                        .expect("seal"),
                )
                .expect("open");
            let _ = Request::decode(&req).expect("decode");
            let resp = Response::Logits(logits.clone()).encode().expect("encode");
            let back = co.open(&es.seal(&resp).expect("seal")).expect("open");
            Response::decode(&back).expect("decode")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
