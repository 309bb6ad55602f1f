//! Accuracy and agreement with plain on the MNIST test set through ppml-nn's evaluation loop:
//! `cargo run --release -p ppml-mpc --example agreement -- MODEL [N]`
//! (`MODEL` a zoo name resolved in `models/`, `N` images, default all).

use ppml_mpc::{MpcBackend, MpcConfig, Protocol};
use ppml_nn::backend::Backend;
use ppml_nn::idx::{default_data_dir, load_mnist, Split};
use ppml_nn::io::{default_models_dir, resolve};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("mlp", String::as_str);
    let model = resolve(name, &default_models_dir())?;
    let mut data = load_mnist(&default_data_dir(), Split::Test)?;
    if let Some(n) = args.get(1) {
        data.truncate(n.parse()?);
    }
    let backends: Vec<Box<dyn Backend>> = vec![
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
        let r = ppml_nn::eval::evaluate(b.as_mut(), &model, &data, 100, &mut |_, _| {})?;
        println!(
            "{} {}: n={} accuracy={:.4} agreement={:.4} {:.0} img/s, {:.2} MB/img",
            r.model,
            r.backend,
            r.n,
            r.accuracy,
            r.agreement.unwrap_or(f64::NAN),
            r.throughput_img_per_s,
            r.bytes_sent as f64 / 1e6 / r.n as f64
        );
    }
    Ok(())
}
