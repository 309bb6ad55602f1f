//! Plain inference throughput per zoo model: one image and a batch of 100.
#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: criterion macros, fixed inputs"
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ppml_nn::{engine, zoo, Tensor};

fn plain(c: &mut Criterion) {
    let mut group = c.benchmark_group("plain");
    for (name, _) in zoo::ZOO {
        let mut model = zoo::architecture(name).expect("zoo name");
        zoo::init_weights(&mut model, 1);
        for batch in [1usize, 100] {
            let x: Vec<f32> = (0..batch * 784).map(|i| (i % 13) as f32 / 13.0).collect();
            let x = Tensor::new(vec![batch, 1, 28, 28], x).expect("shape");
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(*name, batch), &x, |b, x| {
                b.iter(|| engine::forward(&model, x).expect("forward"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, plain);
criterion_main!(benches);
