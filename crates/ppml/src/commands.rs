//! The subcommands.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ppml_nn::idx::{self, Dataset, Split};
use ppml_nn::model::Normalization;
use ppml_nn::{engine, eval, io, zoo, Model, Tensor};
use ppml_train::{Progress, TrainConfig};

use crate::hybrid;
use ppml_bench::registry::BackendOptions;
use ppml_bench::{report, BackendKind, BenchConfig, DeployedConfig};
use ppml_link::LinkProfile;
use ppml_mpc::{Comparison, PartiesConfig, Protocol};
use ppml_tee::channel::DEFAULT_MAX_FRAME;
use ppml_tee::{Enclave, EnclaveOptions, Measurement, ModelSource, TeeClient, VerifyPolicy};

use crate::input::{image_tensor, load_model};

/// Privacy-preserving MNIST inference: HE, MPC and TEE backends measured against plain inference.
#[derive(Debug, Parser)]
#[command(name = "ppml", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options that only some backends take.
#[derive(Debug, clap::Args)]
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
    /// (default 4; 0: none; deployed parties take it from parties.toml).
    #[arg(long)]
    pool_depth: Option<usize>,
    /// mpc2/mpc3: be the client of parties started with `ppml party` (default: run the parties
    /// as threads in this process).
    #[arg(long)]
    parties: Option<PathBuf>,
    /// hybrid: address of a running `ppml hybrid-server` (default: run the server on a thread
    /// of this process).
    #[arg(long)]
    server: Option<String>,
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
            hybrid_server: self.server.clone(),
        })
    }
}

fn parse_comparison(name: &str) -> Result<Comparison, String> {
    Comparison::from_name(name)
        .ok_or_else(|| format!("{name:?}: expected fss or bit-decomposition"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the model zoo.
    Models {
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
    },
    /// Imports an ONNX model (opset 13+) as a ppml model file that `--model` accepts under every
    /// backend that supports its operators (see docs/onnx.md).
    Import {
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
    },
    /// Trains a zoo model on MNIST and writes its model file.
    Train {
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
    },
    /// Evaluates a model on the MNIST test set under a backend.
    Eval {
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
    },
    /// Runs the comparison: every model under every backend, against plain in the same run.
    Bench {
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
        /// Link profiles for the deployed MPC rows (parties as separate processes over TLS,
        /// links emulated in user space), comma separated: loopback, lan, wan; or `none`
        /// (default: all three; with --quick, loopback).
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
    },
    /// Runs the hybrid backend's server: holds the model, serves two-party inference (HE for
    /// linear layers, OT for ReLU and pooling) to clients over TCP, one thread per client.
    HybridServer(hybrid::ServerArgs),
    /// Runs the TEE enclave service: loads the model, attests, serves inference over the
    /// attested channel (simulated evidence outside SGX, clearly labelled).
    Enclave {
        /// Zoo name or model file (under Gramine: the file on the encrypted mount).
        #[arg(long)]
        model: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: String,
        /// Under Gramine: read the model from this trusted plaintext file the first time and
        /// write it to `--model` on the encrypted mount.
        #[arg(long)]
        provision_from: Option<PathBuf>,
        /// The model file is sealed with `ppml-tee`'s sealing; this is its 32-byte key file.
        #[arg(long)]
        sealing_key: Option<PathBuf>,
        /// Folder of the zoo's weights.
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Classifies one image through a running enclave after verifying its evidence.
    TeeClient {
        /// Address of the enclave.
        #[arg(long)]
        enclave: String,
        /// The enclave measurement (64 hex digits) to require.
        #[arg(long)]
        measurement: Measurement,
        /// Accept simulated evidence (no hardware isolation).
        #[arg(long)]
        allow_simulated: bool,
        /// The image (28x28 PNG or binary PGM).
        #[arg(long)]
        image: PathBuf,
        /// Seconds to wait for the enclave on any read or write before giving up.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Writes a CA, a certificate and key per MPC party and client and a `parties.toml` for a
    /// one-machine quick start, or adds a client identity to a deployment.
    MpcCerts(crate::mpc_cmd::MpcCertsArgs),
    /// Runs one MPC party as its own process: forms the mesh with the other two, shares the
    /// weights once (party 0 owns them), then serves client sessions until SIGTERM.
    Party(crate::mpc_cmd::PartyArgs),
    /// Serves encrypted inference over TLS 1.3: clients send CKKS evaluation keys and
    /// ciphertexts; the server never receives a secret key.
    HeServer(crate::he::ServerArgs),
    /// Classifies 28x28 images through an `he-server` (checking its certificate): encrypts
    /// them, sends the ciphertexts, decrypts the logits. One image uses latency mode, several
    /// throughput mode.
    HeClient(crate::he::ClientArgs),
    /// Quick start for `he-server`: writes a CA (`ca.pem`, `ca.key`) and a server certificate
    /// and key per name (or signs new ones with the CA already in the folder).
    HeCerts(crate::he::CertsArgs),
    /// Emulates a network link in user space: forwards connections to targets, delaying and
    /// rate-limiting each direction (loopback, lan or wan; see docs/links.md).
    Relay(crate::relay::RelayArgs),
    /// Classifies one 28x28 grayscale image (PNG or binary PGM, white digit on black).
    Predict {
        /// Zoo name or model file.
        #[arg(long)]
        model: String,
        /// The image.
        #[arg(long)]
        image: PathBuf,
        /// Folder of the zoo's weights.
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Models {
            models_dir,
            accuracy,
            data,
        } => {
            let test = if accuracy {
                Some(load_split(data, Split::Test, None)?)
            } else {
                None
            };
            models(
                &models_dir.unwrap_or_else(io::default_models_dir),
                test.as_ref(),
            )
        }
        Command::Import {
            onnx,
            out,
            name,
            input_shape,
            mean,
            std,
            force,
        } => import(&onnx, out, name, input_shape, (mean, std), force),
        Command::Train {
            model,
            epochs,
            seed,
            lr,
            data,
            out,
        } => train(&model, epochs, seed, lr, data, out),
        Command::Eval {
            model,
            backend,
            limit,
            batch,
            data,
            models_dir,
            json,
            backend_args,
        } => {
            let model = load_model(&model, models_dir)?;
            let test = load_split(data, Split::Test, limit)?;
            evaluate(
                &model,
                backend,
                &backend_args.options()?,
                &test,
                batch,
                json,
            )
        }
        Command::HybridServer(args) => hybrid::serve(&args),
        Command::Enclave {
            model,
            listen,
            provision_from,
            sealing_key,
            models_dir,
        } => enclave(&model, &listen, provision_from, sealing_key, models_dir),
        Command::MpcCerts(a) => crate::mpc_cmd::mpc_certs(a),
        Command::Party(a) => {
            let models_dir = a.models_dir.clone();
            crate::mpc_cmd::party(a, |name| load_model(name, models_dir.clone()))
        }
        Command::HeServer(args) => crate::he::server(args),
        Command::HeClient(args) => crate::he::client(args),
        Command::HeCerts(args) => crate::he::certs(args),
        Command::Relay(args) => crate::relay::run(&args),
        Command::TeeClient {
            enclave,
            measurement,
            allow_simulated,
            image,
            timeout,
        } => tee_client(
            &enclave,
            VerifyPolicy::new(measurement, allow_simulated),
            &image,
            Duration::from_secs(timeout),
        ),
        Command::Bench {
            models,
            backends,
            limit,
            latency_images,
            quick,
            network,
            deployed_models,
            out,
            data,
            models_dir,
        } => {
            let networks = network.unwrap_or_else(|| {
                let names: &[&str] = if quick {
                    &["loopback"]
                } else {
                    &LinkProfile::NAMES
                };
                names.iter().map(|n| n.to_string()).collect()
            });
            let networks = networks
                .iter()
                .filter(|n| n.as_str() != "none")
                .map(|n| LinkProfile::from_name(n))
                .collect::<Result<Vec<_>, _>>()?;
            let deployed = (!networks.is_empty()).then(|| -> Result<DeployedConfig> {
                Ok(DeployedConfig {
                    networks,
                    models: deployed_models,
                    protocols: vec![Protocol::Mpc2, Protocol::Mpc3],
                    party_exe: std::env::current_exe().context("locating the ppml executable")?,
                })
            });
            let cfg = BenchConfig {
                models,
                backends: backends.unwrap_or_else(|| BackendKind::BENCH_DEFAULT.to_vec()),
                limit: limit.unwrap_or(if quick { 100 } else { 1000 }),
                latency_images: latency_images.unwrap_or(if quick { 10 } else { 50 }),
                models_dir: models_dir.unwrap_or_else(io::default_models_dir),
                backend_options: BackendOptions {
                    allow_simulated: true,
                    ..BackendOptions::default()
                },
                deployed: deployed.transpose()?,
            };
            let test = load_split(data, Split::Test, Some(cfg.limit.max(cfg.latency_images)))?;
            let report = ppml_bench::run(&cfg, &test)?;
            report::write_all(&report, &out)?;
            print!("{}", report::markdown(&report));
            eprintln!(
                "wrote {}/{{results.json,results.csv,report.md,slowdown.svg,accuracy.svg}}",
                out.display()
            );
            Ok(())
        }
        Command::Predict {
            model,
            image,
            models_dir,
        } => predict(&load_model(&model, models_dir)?, &image),
    }
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

fn import(
    onnx: &Path,
    out: PathBuf,
    name: Option<String>,
    input: Option<[usize; 3]>,
    (mean, std): (Option<f32>, Option<f32>),
    force: bool,
) -> Result<()> {
    let out = if out.extension().is_some_and(|e| e == "safetensors") {
        out
    } else {
        let mut s = out.into_os_string();
        s.push(".safetensors");
        PathBuf::from(s)
    };
    if out.exists() && !force {
        bail!("{} exists; pass --force to replace it", out.display());
    }
    let normalization = match (mean, std) {
        (None, None) => None,
        (mean, std) => {
            let default = Normalization::default();
            let n = Normalization {
                mean: mean.unwrap_or(default.mean),
                std: std.unwrap_or(default.std),
            };
            if !(n.mean.is_finite() && n.std.is_finite() && n.std != 0.0) {
                bail!("--mean and --std must be finite, --std non-zero");
            }
            Some(n)
        }
    };
    let name = name.or_else(|| out.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let opts = ppml_onnx::ImportOptions {
        name,
        input,
        normalization,
    };
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

fn load_split(data: Option<PathBuf>, split: Split, limit: Option<usize>) -> Result<Dataset> {
    let dir = data.unwrap_or_else(idx::default_data_dir);
    let mut set = idx::load_mnist(&dir, split)?;
    if let Some(n) = limit {
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        set.truncate(n);
    }
    Ok(set)
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Prints a line above the progress bar, or to stderr when the bar is hidden (not a terminal).
fn log_line(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}

fn models(dir: &Path, test: Option<&Dataset>) -> Result<()> {
    let Some(test) = test else {
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
    };
    println!("| model | layers | parameters | plain test accuracy |");
    println!("| --- | --- | --- | --- |");
    for (name, what) in zoo::ZOO {
        let model = io::resolve(name, dir)?;
        let acc = ppml_train::accuracy(&model, test)?;
        println!(
            "| `{name}` | {what} | {} | {:.2}% ({} images) |",
            model.param_count(),
            acc * 100.0,
            test.len()
        );
    }
    Ok(())
}

fn train(
    name: &str,
    epochs: Option<usize>,
    seed: u64,
    lr: Option<f64>,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Result<()> {
    let mut model = zoo::architecture(name)
        .with_context(|| format!("`{name}` is not a zoo model ({})", zoo::names()))?;
    let mut cfg = TrainConfig::for_model(name);
    cfg.seed = seed;
    if let Some(e) = epochs {
        cfg.epochs = e;
    }
    if let Some(lr) = lr {
        cfg.lr = lr;
    }
    let out = out.unwrap_or_else(|| io::default_models_dir().join(format!("{name}.safetensors")));
    let train_set = load_split(data.clone(), Split::Train, None)?;
    let test_set = load_split(data, Split::Test, None)?;
    zoo::init_weights(&mut model, seed);
    eprintln!(
        "training {name}: {} parameters, {} epochs, batch {}, lr {}, seed {seed}",
        model.param_count(),
        cfg.epochs,
        cfg.batch_size,
        cfg.lr
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

fn evaluate(
    model: &Model,
    kind: BackendKind,
    opts: &BackendOptions,
    test: &Dataset,
    batch: usize,
    json: bool,
) -> Result<()> {
    let mut backend = kind.build(opts).map_err(anyhow::Error::msg)?;
    let pb = bar(
        test.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} images (ETA {eta})",
    );
    let report = eval::evaluate(backend.as_mut(), model, test, batch, &mut |done, _| {
        pb.set_position(done as u64)
    })
    .map_err(|e| anyhow::anyhow!(e))
    .with_context(|| format!("evaluating {} under {}", model.name, backend.name()))?;
    pb.finish_and_clear();
    // With --json, stdout carries the JSON alone; the summary goes to stderr.
    let mut human: Box<dyn std::io::Write> = if json {
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
    if let Some(o) = report.offline {
        writeln!(
            human,
            "of which offline (input-independent): {:.3} s, {} bytes, {} rounds",
            o.seconds, o.bytes_sent, o.rounds
        )?;
    }
    for note in &report.notes {
        writeln!(human, "note: {note}")?;
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn print_prediction(logits: &Tensor) {
    let label = logits.argmax_rows().first().copied().unwrap_or_default();
    println!("{label}");
    eprintln!("logits: {:?}", logits.data());
}

fn predict(model: &Model, image: &Path) -> Result<()> {
    let x = image_tensor(model.input, model.normalization, image)?;
    print_prediction(&engine::forward(model, &x)?);
    Ok(())
}

fn enclave(
    model: &str,
    listen: &str,
    provision_from: Option<PathBuf>,
    sealing_key: Option<PathBuf>,
    models_dir: Option<PathBuf>,
) -> Result<()> {
    let path = PathBuf::from(model);
    let source = match (provision_from, sealing_key) {
        (Some(plain), None) => ModelSource::Provisioned {
            sealed: path,
            plain,
        },
        (None, Some(key)) => ModelSource::Sealed { path, key },
        (None, None) => ModelSource::Model(load_model(model, models_dir)?),
        (Some(_), Some(_)) => bail!("--provision-from and --sealing-key exclude each other"),
    };
    let enclave = Enclave::bind(
        source,
        listen,
        EnclaveOptions {
            log: true,
            ..EnclaveOptions::default()
        },
    )?;
    eprintln!("enclave: {}", enclave.mode().label());
    if let Some(m) = enclave.measurement() {
        eprintln!("measurement: {m}");
    }
    eprintln!("listening on {}", enclave.local_addr()?);
    enclave.run()?;
    Ok(())
}

fn tee_client(addr: &str, policy: VerifyPolicy, image: &Path, timeout: Duration) -> Result<()> {
    let mut client = TeeClient::connect_with(addr, &policy, DEFAULT_MAX_FRAME, timeout)
        .with_context(|| format!("attesting the enclave at {addr}"))?;
    eprintln!("attested: {}", client.attestation().mode.label());
    let info = client.model_info()?;
    let input = info.input.map(|d| d as usize);
    // The enclave reports the input shape and normalisation of the model it holds.
    let logits = client.infer(&image_tensor(input, info.normalization, image)?)?;
    print_prediction(&logits);
    Ok(())
}
