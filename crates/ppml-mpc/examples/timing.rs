//! Quick latency/communication table: `cargo run --release -p ppml-mpc --example timing [models..]`.

use std::time::Instant;

use ppml_mpc::{MpcBackend, MpcConfig, Protocol};
use ppml_nn::backend::{Backend, PlainBackend};
use ppml_nn::{engine, zoo, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if args.is_empty() {
        vec!["mlp", "lenet"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    println!("model      backend batch  ms/call   img/s   ratio    MB/img  rounds  max|err|");
    for name in names {
        let mut model = zoo::architecture(name).ok_or("unknown model")?;
        zoo::init_weights(&mut model, 1);
        let batches: Vec<usize> = match std::env::var("BATCH") {
            Ok(b) => vec![b.parse()?],
            Err(_) => vec![1, 100],
        };
        for n in batches {
            let data = (0..n * 784)
                .map(|i| ((i * 7919) % 255) as f32 / 255.0 * 2.8 - 0.42)
                .collect();
            let x = Tensor::new(vec![n, 1, 28, 28], data)?;
            let want = engine::forward(&model, &x)?;
            let reps = if n == 1 { 20 } else { 3 };
            let mut plain_ms = 0.0;
            let backends: Vec<Box<dyn Backend>> = vec![
                Box::new(PlainBackend::default()),
                Box::new(MpcBackend::in_process(
                    Protocol::Mpc3,
                    MpcConfig::default(),
                )?),
                Box::new(MpcBackend::in_process(
                    Protocol::Mpc2,
                    MpcConfig::default(),
                )?),
            ];
            for mut b in backends {
                if std::env::var("ONLY").is_ok_and(|o| o != b.name()) {
                    continue;
                }
                b.setup(&model)?;
                let (y, stats) = b.infer(&x)?;
                let t = Instant::now();
                for _ in 0..reps {
                    b.infer(&x)?;
                }
                let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
                if b.is_plain() {
                    plain_ms = ms;
                }
                let err = y
                    .data()
                    .iter()
                    .zip(want.data())
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                println!(
                    "{name:<10} {:<7} {n:>5} {ms:>8.2} {:>7.0} {:>7.1} {:>9.3} {:>7} {err:>9.2e}",
                    b.name(),
                    n as f64 * 1e3 / ms,
                    ms / plain_ms,
                    stats.bytes_sent as f64 / 1e6 / n as f64,
                    stats.rounds
                );
            }
        }
    }
    Ok(())
}
