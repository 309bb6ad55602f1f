//! `ppml mpc-certs` and `ppml party`: setting up and running an MPC deployment.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ppml_mpc::{PartiesConfig, PartyOptions, Protocol};

/// `ppml mpc-certs`.
#[derive(Debug, Args)]
pub struct MpcCertsArgs {
    /// Output folder (a new deployment: CA, parties, default client, `parties.toml`).
    #[arg(long, required_unless_present = "add_client")]
    out: Option<PathBuf>,
    /// Protocol the parties will run.
    #[arg(long, default_value = "mpc3")]
    protocol: String,
    /// Host the parties listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of party 0; parties 1 and 2 take the next two.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Instead: add a client identity NAME to the deployment of `--config` (its CA key
    /// `ca.key` must be beside `ca.pem`); writes NAME.pem, NAME.key and NAME.toml. Running
    /// parties accept it at once.
    #[arg(long, value_name = "NAME", requires = "config")]
    add_client: Option<String>,
    /// The deployment's `parties.toml` (with `--add-client`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `ppml party`.
#[derive(Debug, Args)]
pub struct PartyArgs {
    /// Party number: 0, 1 or 2 (under mpc2, party 2 is the dealer).
    #[arg(long)]
    id: usize,
    /// The `parties.toml` written by `ppml mpc-certs`.
    #[arg(long)]
    config: PathBuf,
    /// Zoo name or model file (only party 0, the model owner, uses its weights).
    #[arg(long)]
    model: String,
    /// Exit after this many client sessions have ended (default: serve until SIGTERM/SIGINT).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    sessions: Option<u64>,
    /// Client sessions served at once; a client beyond it is told the parties are busy.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    max_sessions: u64,
    /// Seconds a session may wait for its client's next query.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Written once the party is ready (mesh formed, weights shared), removed on exit.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Folder of the zoo's weights.
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
}

/// Writes a deployment's certificates and `parties.toml`, or adds a client to one.
pub fn mpc_certs(a: MpcCertsArgs) -> Result<()> {
    if let (Some(name), Some(config)) = (&a.add_client, &a.config) {
        let path = ppml_mpc::add_client(config, name)?;
        println!(
            "wrote {name}.pem, {name}.key and {} (use it as --parties)",
            path.display()
        );
        return Ok(());
    }
    let Some(out) = a.out else {
        bail!("--out is required")
    };
    let protocol = match a.protocol.as_str() {
        "mpc2" => Protocol::Mpc2,
        "mpc3" => Protocol::Mpc3,
        other => bail!("unknown protocol `{other}` (mpc2 or mpc3)"),
    };
    ppml_mpc::quick_start(&out, protocol, &a.host, a.base_port)?;
    println!(
        "wrote {}/parties.toml with certificates and keys (keep ca.key offline)",
        out.display()
    );
    Ok(())
}

/// Runs one party until SIGTERM/SIGINT (finishing the sessions in flight) or `--sessions`.
pub fn party(a: PartyArgs, load_model: impl Fn(&str) -> Result<ppml_nn::Model>) -> Result<()> {
    let cfg = PartiesConfig::load(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    let mut model = load_model(&a.model)?;
    if a.id != 0 {
        // Only the model owner needs the weights; the others learn only the architecture.
        for layer in &mut model.layers {
            layer.params_mut().into_iter().for_each(|p| p.fill(0.0));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let options = PartyOptions {
        max_sessions: usize::try_from(a.max_sessions)?,
        sessions: a.sessions.map(usize::try_from).transpose()?,
        idle_timeout: Duration::from_secs(a.idle_timeout),
        stop,
        ready_file: a.ready_file,
    };
    eprintln!("party {}: {:?} on {}", a.id, cfg.protocol, model.name);
    // Structured logs of the party's sessions on stderr (never shares or keys).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let report = ppml_mpc::run_party(a.id, &cfg, &model, &options)
        .with_context(|| format!("party {}", a.id))?;
    eprintln!(
        "party {}: stopped after {} sessions ({} failed), {} queries; start-up sent {} bytes",
        a.id, report.sessions, report.failed_sessions, report.queries, report.startup_bytes
    );
    Ok(())
}
