//! `ppml predict`: one image in the clear, and how every one-image command prints its answer.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ppml_nn::{engine, Tensor};

use crate::input::{image_tensor, load_model};

/// Arguments of `ppml predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Zoo name or model file.
    #[arg(long)]
    model: String,
    /// The image.
    #[arg(long)]
    image: PathBuf,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

/// Runs `ppml predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let model = load_model(&args.model, args.models_dir)?;
    let x = image_tensor(model.input, model.normalization, &args.image)?;
    print_prediction(&engine::forward(&model, &x)?);
    Ok(())
}

/// The predicted label on stdout (what scripts read), the logits on stderr.
pub fn print_prediction(logits: &Tensor) {
    let label = logits.argmax_rows().first().copied().unwrap_or_default();
    println!("{label}");
    eprintln!("logits: {:?}", logits.data());
}
