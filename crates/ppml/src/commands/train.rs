//! `ppml train`: a zoo model trained on MNIST in Rust, written as a model file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ppml_nn::idx::Split;
use ppml_nn::{io, zoo};
use ppml_train::{Progress, TrainConfig};

use crate::input::load_split;
use crate::progress::{bar, log_line};

/// Arguments of `ppml train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Zoo model name.
    #[arg(long)]
    model: String,
    /// Passes over the training set (default: per model).
    #[arg(long)]
    epochs: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Peak learning rate (default: per model).
    #[arg(long)]
    lr: Option<f64>,
    /// MNIST folder (IDX files, raw or .gz).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output model file (default: models/NAME.safetensors).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `ppml train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let name = args.model.as_str();
    let mut model = zoo::architecture(name)
        .with_context(|| format!("`{name}` is not a zoo model ({})", zoo::names()))?;
    let mut cfg = TrainConfig::for_model(name);
    cfg.seed = args.seed;
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(lr) = args.lr {
        cfg.lr = lr;
    }
    let out = args
        .out
        .unwrap_or_else(|| io::default_models_dir().join(format!("{name}.safetensors")));
    let train_set = load_split(args.data.clone(), Split::Train, None)?;
    let test_set = load_split(args.data, Split::Test, None)?;
    zoo::init_weights(&mut model, cfg.seed);
    eprintln!(
        "training {name}: {} parameters, {} epochs, batch {}, lr {}, seed {}",
        model.param_count(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.seed
    );
    let total = (cfg.epochs * train_set.len()) as u64;
    let pb = bar(
        total,
        "{elapsed_precise} [{bar:30}] {percent:>3}% {msg} (ETA {eta})",
    );
    let n = train_set.len() as u64;
    let reports = ppml_train::train(&mut model, &train_set, &test_set, &cfg, &mut |p| match p {
        Progress::Step {
            epoch, done, loss, ..
        } => {
            pb.set_position((epoch as u64 - 1) * n + done as u64);
            pb.set_message(format!("epoch {epoch}/{} loss {loss:.4}", cfg.epochs));
        }
        Progress::Epoch(r) => log_line(
            &pb,
            format!(
                "epoch {}/{}: loss {:.4}, test accuracy {:.2}%, {:.1} s",
                r.epoch,
                r.epochs,
                r.loss,
                r.test_accuracy * 100.0,
                r.seconds
            ),
        ),
    })?;
    pb.finish_and_clear();
    io::save(&model, &out)?;
    let acc = reports.last().map_or(0.0, |r| r.test_accuracy);
    println!(
        "{name}: test accuracy {:.2}% on {} images; wrote {}",
        acc * 100.0,
        test_set.len(),
        out.display()
    );
    Ok(())
}
