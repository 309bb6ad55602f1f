//! `ppml eval`: a model on the MNIST test set under one backend, with the options only some
//! backends take.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ppml_bench::registry::BackendOptions;
use ppml_bench::BackendKind;
use ppml_mpc::{Comparison, PartiesConfig};
use ppml_nn::eval;
use ppml_nn::idx::Split;
use ppml_tee::Measurement;

use super::hybrid;
use crate::input::{load_model, load_split};
use crate::progress::bar;

/// Arguments of `ppml eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Zoo name (committed weights) or model file.
    #[arg(long)]
    model: String,
    /// Backend.
    #[arg(long, default_value = "plain")]
    backend: BackendKind,
    /// Evaluate only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Images per inference call.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// MNIST folder (IDX files, raw or .gz).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend_args: BackendArgs,
}

/// Options that only some backends take.
#[derive(Debug, Args)]
struct BackendArgs {
    /// tee: accept simulated evidence (no hardware isolation).
    #[arg(long)]
    allow_simulated: bool,
    /// tee: address of a running `ppml enclave` (default: start one in this process).
    #[arg(long)]
    enclave: Option<String>,
    /// tee: the enclave measurement (64 hex digits) the client requires.
    #[arg(long)]
    measurement: Option<Measurement>,
    /// mpc2/mpc3: fractional bits of the fixed-point encoding (default 16).
    #[arg(long)]
    frac_bits: Option<u32>,
    /// mpc2/mpc3: the comparison protocol for ReLU and max-pooling: `bit-decomposition` (the
    /// default: eight rounds, the least computation and traffic) or `fss` (AriaNN's function
    /// secret sharing: one round, for slow links).
    #[arg(long, value_parser = parse_comparison)]
    comparison: Option<Comparison>,
    /// mpc2/mpc3 in-process: queries of correlated randomness party 2 makes ahead per session
    /// (default 4; 0: none; deployed parties take it from parties.toml). hybrid: queries of
    /// `--batch` images whose random OTs are made at setup (default 1; 0: none).
    #[arg(long)]
    pool_depth: Option<usize>,
    /// mpc2/mpc3: be the client of parties started with `ppml party` (default: run the parties
    /// as threads in this process).
    #[arg(long)]
    parties: Option<PathBuf>,
    /// hybrid: address of a running `ppml hybrid-server` (default: run the server on threads
    /// of this process); needs --ca.
    #[arg(long, requires = "ca")]
    server: Option<String>,
    /// hybrid: the CA certificate (PEM) the server's certificate must chain to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// hybrid: the name the server's certificate must carry (default: hybrid-server).
    #[arg(long)]
    server_name: Option<String>,
}

impl BackendArgs {
    fn options(&self) -> Result<BackendOptions> {
        let parties = match &self.parties {
            Some(path) => Some(
                PartiesConfig::load(path).with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        Ok(BackendOptions {
            parties,
            allow_simulated: self.allow_simulated,
            enclave: self.enclave.clone(),
            measurement: self.measurement,
            frac_bits: self.frac_bits,
            comparison: self.comparison,
            pool_depth: self.pool_depth,
            pool_queries: None,
            hybrid_server: self
                .server
                .as_deref()
                .map(|a| hybrid::remote(a, self.ca.as_deref(), self.server_name.as_deref()))
                .transpose()?,
        })
    }
}

fn parse_comparison(name: &str) -> Result<Comparison, String> {
    Comparison::from_name(name)
        .ok_or_else(|| format!("{name:?}: expected fss or bit-decomposition"))
}

/// Runs `ppml eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let model = load_model(&args.model, args.models_dir)?;
    let test = load_split(args.data, Split::Test, args.limit)?;
    let (kind, batch) = (args.backend, args.batch);
    // hybrid makes the random OTs of its first queries of `batch` images ahead, at setup.
    let pool_batch = (kind == BackendKind::Hybrid).then_some(batch);
    let mut opts = args.backend_args.options()?;
    // mpc2/mpc3 pool material for one-image calls: a run of them says how many it makes, so the
    // parties make no material past the last one.
    if batch == 1 {
        opts.pool_queries = Some(test.len());
    }
    let mut backend = kind
        .build_for(&opts, pool_batch)
        .map_err(anyhow::Error::msg)?;
    let pb = bar(
        test.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} images (ETA {eta})",
    );
    let report = eval::evaluate(backend.as_mut(), &model, &test, batch, &mut |done, _| {
        pb.set_position(done as u64)
    })
    .map_err(|e| anyhow::anyhow!(e))
    .with_context(|| format!("evaluating {} under {}", model.name, backend.name()))?;
    pb.finish_and_clear();
    // With --json, stdout carries the JSON alone; the summary goes to stderr.
    let mut human: Box<dyn std::io::Write> = if args.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    writeln!(
        human,
        "{} under {}: accuracy {:.2}% on {} images{}",
        report.model,
        report.backend,
        report.accuracy * 100.0,
        report.n,
        report
            .agreement
            .map(|a| format!(", agreement with plain {:.2}%", a * 100.0))
            .unwrap_or_default()
    )?;
    writeln!(
        human,
        "latency {:.3} ms median ({:.3} ms p95) per call of {} image(s); throughput {:.0} images/s",
        report.latency_ms, report.latency_p95_ms, report.batch, report.throughput_img_per_s
    )?;
    writeln!(
        human,
        "setup {:.3} s; {} bytes sent in {} rounds",
        report.setup_seconds, report.bytes_sent, report.rounds
    )?;
    if report.offline_bytes > 0 || report.on_demand_calls > 0 {
        writeln!(
            human,
            "offline (made ahead, not in the figures above): {:.3} s, {} bytes; {} call(s) made theirs while they ran",
            report.offline_seconds, report.offline_bytes, report.on_demand_calls
        )?;
    }
    for note in &report.notes {
        writeln!(human, "note: {note}")?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
