//! `ppml bench`: the comparison, every model under every backend against plain in one run, and
//! the deployed rows (mpc2, mpc3, hybrid) over emulated links.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ppml_bench::registry::BackendOptions;
use ppml_bench::{report, BackendKind, BenchConfig, DeployedConfig};
use ppml_link::LinkProfile;
use ppml_nn::idx::Split;
use ppml_nn::io;

use crate::input::load_split;

/// Arguments of `ppml bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models, comma separated (zoo names or model files).
    #[arg(long, value_delimiter = ',', default_value = "mlp,cnn,lenet")]
    models: Vec<String>,
    /// Backends, comma separated (default: all of this build).
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<BackendKind>>,
    /// Test images for accuracy, agreement and throughput (default 1000, quick 100).
    #[arg(long)]
    limit: Option<usize>,
    /// Images timed one at a time for latency (default 50, quick 10).
    #[arg(long)]
    latency_images: Option<usize>,
    /// Fewer images: a smoke run of a few minutes.
    #[arg(long)]
    quick: bool,
    /// Link profiles for the deployed rows, comma separated: loopback, lan, wan; or `none`
    /// (default: all three; with --quick, loopback). Each of mpc2, mpc3 and hybrid named in
    /// --backends runs deployed: its other parties as separate processes (`ppml party`,
    /// `ppml hybrid-server`) over TLS, links emulated in user space.
    #[arg(long, value_delimiter = ',')]
    network: Option<Vec<String>>,
    /// Models of the deployed rows, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "lenet")]
    deployed_models: Vec<String>,
    /// Folder for results.json, results.csv, report.md and the SVG charts.
    #[arg(long, default_value = "out/bench")]
    out: PathBuf,
    /// MNIST folder (IDX files, raw or .gz).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

/// The link profiles of the deployed rows: those named (`none`: no deployed rows), by default
/// all of them, or loopback alone for a quick run.
fn networks(named: Option<Vec<String>>, quick: bool) -> Result<Vec<LinkProfile>> {
    let named = named.unwrap_or_else(|| {
        let names: &[&str] = if quick {
            &["loopback"]
        } else {
            &LinkProfile::NAMES
        };
        names.iter().map(|n| n.to_string()).collect()
    });
    Ok(named
        .iter()
        .filter(|n| n.as_str() != "none")
        .map(|n| LinkProfile::from_name(n))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Runs `ppml bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let networks = networks(args.network, args.quick)?;
    let deployed = if networks.is_empty() {
        None
    } else {
        Some(DeployedConfig {
            networks,
            models: args.deployed_models,
            ppml_exe: std::env::current_exe().context("locating the ppml executable")?,
        })
    };
    let quick = args.quick;
    let cfg = BenchConfig {
        models: args.models,
        backends: args
            .backends
            .unwrap_or_else(|| BackendKind::BENCH_DEFAULT.to_vec()),
        limit: args.limit.unwrap_or(if quick { 100 } else { 1000 }),
        latency_images: args.latency_images.unwrap_or(if quick { 10 } else { 50 }),
        models_dir: args.models_dir.unwrap_or_else(io::default_models_dir),
        backend_options: BackendOptions {
            allow_simulated: true,
            ..BackendOptions::default()
        },
        deployed,
    };
    let test = load_split(
        args.data,
        Split::Test,
        Some(cfg.limit.max(cfg.latency_images)),
    )?;
    let report = ppml_bench::run(&cfg, &test)?;
    report::write_all(&report, &args.out)?;
    print!("{}", report::markdown(&report));
    eprintln!(
        "wrote {}/{{results.json,results.csv,report.md,slowdown.svg,accuracy.svg,throughput.svg,communication.svg}}",
        args.out.display()
    );
    Ok(())
}
