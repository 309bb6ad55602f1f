//! Plain inference throughput: `mlp` and `lenet` (the committed weights) on one MNIST test image
//! and on a batch of 100, the cases `scripts/plain-vs-torch.sh` compares with PyTorch; then the
//! other zoo models with seeded random weights (speed does not depend on the values).
#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "benchmark harness: criterion macros, fixed inputs"
)]

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ppml_nn::idx::{load_mnist, Split};
use ppml_nn::{engine, eval, io, zoo, Model};

fn model(name: &str) -> Model {
    let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    if matches!(name, "mlp" | "lenet") {
        return io::resolve(name, &repo.join("models")).expect("committed weights");
    }
    let mut m = zoo::architecture(name).expect("zoo name");
    zoo::init_weights(&mut m, 1);
    m
}

fn plain(c: &mut Criterion) {
    let repo = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let test = load_mnist(&repo.join("data/mnist"), Split::Test).expect("MNIST test set");
    let mut group = c.benchmark_group("plain");
    let first = ["mlp", "lenet"];
    let rest = zoo::ZOO
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !first.contains(n));
    for name in first.into_iter().chain(rest) {
        let model = model(name);
        for batch in [1usize, 100] {
            let x = eval::batch_tensor(&model, &test, 0, batch);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(name, batch), &x, |b, x| {
                b.iter(|| engine::forward(&model, x).expect("forward"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, plain);
criterion_main!(benches);
