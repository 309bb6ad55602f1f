//! The evaluation loop of `ppml eval --backend hybrid` without the CLI: `cargo run --release
//! -p ppml-hybrid --example eval -- MODEL LIMIT BATCH` prints the same report as JSON.

use ppml_hybrid::HybridBackend;
use ppml_nn::idx::{default_data_dir, load_mnist, Split};
use ppml_nn::{eval, io};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("lenet", String::as_str);
    let limit: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(1), |s| s.parse())?;
    let model = io::resolve(name, &io::default_models_dir())?;
    let mut test = load_mnist(&default_data_dir(), Split::Test)?;
    test.truncate(limit);
    let mut backend = HybridBackend::new();
    let report = eval::evaluate(&mut backend, &model, &test, batch, &mut |_, _| {})?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
