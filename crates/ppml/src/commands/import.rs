//! `ppml import`: an ONNX model as a ppml model file.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use ppml_nn::io;
use ppml_nn::model::Normalization;

/// Arguments of `ppml import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The ONNX file.
    onnx: PathBuf,
    /// Output model file; `.safetensors` is appended when missing (`--out models/NAME`
    /// writes `models/NAME.safetensors`).
    #[arg(long)]
    out: PathBuf,
    /// Model name (default: the output file's stem).
    #[arg(long)]
    name: Option<String>,
    /// One input image as C,H,W (default: from the ONNX graph input).
    #[arg(long, value_parser = parse_shape)]
    input_shape: Option<[usize; 3]>,
    /// Pixel normalisation `(pixel/255 - mean) / std`: the mean (default: the model's
    /// `ppml.mean` metadata, else MNIST's 0.1307).
    #[arg(long)]
    mean: Option<f32>,
    /// The std (default: the model's `ppml.std` metadata, else MNIST's 0.3081).
    #[arg(long)]
    std: Option<f32>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

/// Parses `C,H,W` (or `CxHxW`).
fn parse_shape(s: &str) -> Result<[usize; 3], String> {
    let dims = s
        .split([',', 'x'])
        .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<Vec<_>>>();
    match dims.as_deref() {
        Some(&[c, h, w]) => Ok([c, h, w]),
        _ => Err(format!(
            "`{s}`: expected three positive numbers C,H,W, e.g. 1,28,28"
        )),
    }
}

/// Runs `ppml import`.
pub fn run(args: ImportArgs) -> Result<()> {
    let out = if args.out.extension().is_some_and(|e| e == "safetensors") {
        args.out
    } else {
        let mut s = args.out.into_os_string();
        s.push(".safetensors");
        PathBuf::from(s)
    };
    if out.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", out.display());
    }
    let normalization = Normalization::overridden(args.mean, args.std)
        .map_err(|_| anyhow!("--mean and --std must be finite, --std non-zero"))?;
    let name = args
        .name
        .or_else(|| out.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let opts = ppml_onnx::ImportOptions {
        name,
        input: args.input_shape,
        normalization,
    };
    let onnx = &args.onnx;
    let imported = ppml_onnx::import_file(onnx, &opts)
        .with_context(|| format!("importing {}", onnx.display()))?;
    io::save(&imported.model, &out)?;
    println!("wrote {}", out.display());
    print!("{}", imported.model.summary()?);
    for note in &imported.notes {
        println!("note: {note}");
    }
    for (backend, why) in imported.backend_support() {
        match why {
            None => println!("backend {backend}: supported"),
            Some(why) => println!("backend {backend}: not supported: {why}"),
        }
    }
    println!(
        "run it with: ppml eval --model {} --backend mpc3",
        out.display()
    );
    Ok(())
}
