//! `ppml models`: the zoo, and optionally each committed model's plain test accuracy.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ppml_nn::idx::Split;
use ppml_nn::{io, zoo};

use crate::input::load_split;

/// Arguments of `ppml models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Also measure each committed model's plain accuracy on the MNIST test set, as a
    /// Markdown table.
    #[arg(long)]
    accuracy: bool,
    /// MNIST folder (IDX files, raw or .gz).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Runs `ppml models`.
pub fn run(args: ModelsArgs) -> Result<()> {
    let dir = args.models_dir.unwrap_or_else(io::default_models_dir);
    if !args.accuracy {
        println!(
            "{:<10} {:>10}  {:<9} description",
            "name", "params", "weights"
        );
        for (name, what) in zoo::ZOO {
            let arch = zoo::architecture(name).context("zoo entry without architecture")?;
            let file = dir.join(format!("{name}.safetensors"));
            let have = if file.is_file() {
                "committed"
            } else {
                "missing"
            };
            println!("{name:<10} {:>10}  {have:<9} {what}", arch.param_count());
        }
        return Ok(());
    }
    let test = load_split(args.data, Split::Test, None)?;
    println!("| model | layers | parameters | plain test accuracy |");
    println!("| --- | --- | --- | --- |");
    for (name, what) in zoo::ZOO {
        let model = io::resolve(name, &dir)?;
        let acc = ppml_train::accuracy(&model, &test)?;
        println!(
            "| `{name}` | {what} | {} | {:.2}% ({} images) |",
            model.param_count(),
            acc * 100.0,
            test.len()
        );
    }
    Ok(())
}
