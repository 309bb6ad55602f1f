//! Throughput of the ring matrix product: `cargo run --release -p ppml-mpc --example gemm [m k n reps]`
//! (single-threaded; compare user CPU time on a busy machine).

use std::time::Instant;

use ppml_mpc::linalg::matmul_serial;
use ppml_mpc::prg::Prg;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, k, n, reps) = match args[..] {
        [m, k, n, r] => (m, k, n, r),
        _ => (50, 1000, 64, 50),
    };
    let mut prg = Prg::from_os();
    let a = prg.u64s(m * k);
    let b = prg.u64s(k * n);
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(matmul_serial(&a, &b, m, k, n));
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{m}x{k}x{n}: {:.2} GMAC/s wall",
        (m * k * n) as f64 / s / 1e9
    );
}
