//! Deployed rows: a backend's other parties as separate `ppml` processes on this machine, the
//! client in this process, and every connection through a user-space link emulator
//! ([`ppml_link`]) shaped to a profile (`loopback`: direct, unshaped).
//!
//! - `mpc2`/`mpc3` ([`mpc`]): three `ppml party` processes, TLS 1.3 between every pair and to
//!   the client.
//! - `hybrid` ([`hybrid`]): one `ppml hybrid-server` process, TLS 1.3 to the client; nobody
//!   else takes part.
//!
//! Each measurement starts a fresh deployment on 127.0.0.1 (certificates in a folder of its
//! own, relay, processes), measures latency at batch 1 and throughput at batch 100 as the
//! in-process rows do, through the same [`BackendKind::build_for`] as they, and stops it:
//! SIGTERM, then kill, then wait, and the folder removed, also when the measurement failed.

mod hybrid;
mod mpc;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ppml_link::{LinkProfile, Relay, RelayHandle};
use ppml_mpc::Protocol;
use ppml_nn::eval::{self, EvalReport};
use ppml_nn::idx::Dataset;
use ppml_nn::Model;
use serde::{Deserialize, Serialize};

pub use mpc::comparison_for;

use crate::error::BenchError;
use crate::registry::BackendOptions;
use crate::BackendKind;

/// What to run deployed.
#[derive(Clone, Debug)]
pub struct DeployedConfig {
    /// Link profiles (`loopback`, `lan`, `wan`).
    pub networks: Vec<LinkProfile>,
    /// Zoo names or model files to run deployed.
    pub models: Vec<String>,
    /// The `ppml` executable that runs `ppml party` and `ppml hybrid-server`.
    pub ppml_exe: PathBuf,
}

/// One model under one backend over one link profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeployedResult {
    /// The model.
    pub model: String,
    /// `mpc2`, `mpc3` or `hybrid`.
    pub backend: String,
    /// The link profile's name.
    pub network: String,
    /// One-way delay of the profile, in milliseconds.
    pub one_way_delay_ms: f64,
    /// Rate of the profile in Mbit/s (`None`: unshaped).
    pub rate_mbit_s: Option<f64>,
    /// The comparison used for the latency measurement (`hybrid`: `ot`, its one).
    pub latency_comparison: String,
    /// The comparison used for the throughput measurement.
    pub throughput_comparison: String,
    /// Measurements at batch 1.
    pub latency: EvalReport,
    /// Measurements at batch 100.
    pub throughput: EvalReport,
}

/// Whether `kind` has deployed rows (`mpc2`, `mpc3`, `hybrid`): the bench runs them for the
/// backends named in `--backends` that have.
pub fn deploys(kind: BackendKind) -> bool {
    matches!(
        kind,
        BackendKind::Mpc2 | BackendKind::Mpc3 | BackendKind::Hybrid
    )
}

fn err(what: impl std::fmt::Display) -> BenchError {
    BenchError::Config(format!("deployed run: {what}"))
}

fn free_port() -> Result<SocketAddr, BenchError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    l.local_addr().map_err(err)
}

/// One measurement to deploy for: the model, where its weights are, the link, and the calls
/// (`images` images in calls of `batch`).
struct Measurement<'a> {
    exe: &'a Path,
    model: &'a Model,
    models_dir: &'a Path,
    profile: &'a LinkProfile,
    batch: usize,
    images: usize,
}

/// The processes of a deployment, its relay and its folder: stopped, and removed, on drop.
struct Processes {
    dir: PathBuf,
    children: Vec<Child>,
    relay: Option<RelayHandle>,
}

impl Processes {
    /// An empty deployment with a fresh folder of its own.
    fn new() -> Result<Self, BenchError> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ppml-bench-deploy-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(err)?;
        Ok(Self {
            dir,
            children: Vec::new(),
            relay: None,
        })
    }

    /// The addresses that reach `targets` over `profile`: a relay route to each if the profile
    /// is shaped, the targets themselves if not (loopback).
    fn route(
        &mut self,
        profile: &LinkProfile,
        targets: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, BenchError> {
        if !profile.is_shaped() {
            return Ok(targets.to_vec());
        }
        let routes: Vec<(SocketAddr, SocketAddr)> = targets
            .iter()
            .map(|&to| Ok((free_port()?, to)))
            .collect::<Result<_, BenchError>>()?;
        let relay = Relay::start(profile.clone(), &routes).map_err(err)?;
        let reach = relay.listen_addrs();
        self.relay = Some(relay);
        Ok(reach)
    }

    /// Starts `command` with its standard error in `LOG.log` of the folder.
    fn spawn(&mut self, mut command: Command, log: &str) -> Result<(), BenchError> {
        let file = std::fs::File::create(self.dir.join(format!("{log}.log"))).map_err(err)?;
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| err(format!("starting {command:?}: {e}")))?;
        self.children.push(child);
        Ok(())
    }

    /// Waits until `ready` returns a value, failing if a process exits first or 120 s pass.
    fn wait_until<T>(&mut self, ready: impl Fn(&Path) -> Option<T>) -> Result<T, BenchError> {
        let t = Instant::now();
        loop {
            if let Some(v) = ready(&self.dir) {
                return Ok(v);
            }
            let exited = self
                .children
                .iter_mut()
                .find_map(|p| p.try_wait().ok().flatten());
            if let Some(s) = exited {
                return Err(err(format!(
                    "a process exited before it was ready ({s}){}",
                    self.logs()
                )));
            }
            if t.elapsed() > Duration::from_secs(120) {
                return Err(err(format!(
                    "processes not ready within 120 s{}",
                    self.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of every process's log, for an error message (the folder is removed
    /// with the deployment).
    fn logs(&self) -> String {
        let mut said = String::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return said;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join("\n  ");
                said += &format!("\n{}:\n  {tail}", path.display());
            }
        }
        said
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // SIGTERM: a party finishes what is in flight and exits.
        for p in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &p.id().to_string()])
                .status();
        }
        for p in &mut self.children {
            let t = Instant::now();
            while matches!(p.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
        // The relay stops after the processes that used it.
        self.relay.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A started deployment: the options that make the client of it, the comparison it runs, and
/// its processes.
struct Deployment {
    options: BackendOptions,
    comparison: String,
    processes: Processes,
}

/// Measures `model` under `kind` deployed over `profile`: latency on `latency_images` at
/// batch 1, throughput on `limit` images at batch 100.
pub(crate) fn measure(
    cfg: &DeployedConfig,
    (model, models_dir): (&Model, &Path),
    (kind, profile): (BackendKind, &LinkProfile),
    test: &Dataset,
    (latency_images, limit): (usize, usize),
) -> Result<DeployedResult, BenchError> {
    let run = |batch: usize, images: usize| -> Result<(EvalReport, String), BenchError> {
        let at = Measurement {
            exe: &cfg.ppml_exe,
            model,
            models_dir,
            profile,
            batch,
            images,
        };
        let d = match kind {
            BackendKind::Mpc2 => mpc::start(Protocol::Mpc2, &at)?,
            BackendKind::Mpc3 => mpc::start(Protocol::Mpc3, &at)?,
            BackendKind::Hybrid => hybrid::start(&at)?,
            other => return Err(err(format!("{other} has no deployed form"))),
        };
        let mut client = kind
            .build_for(&d.options, Some(batch))
            .map_err(BenchError::Config)?;
        let mut data = test.clone();
        data.truncate(images);
        let r = eval::evaluate(client.as_mut(), model, &data, batch, &mut |_, _| {}).map_err(|e| {
            err(format!(
                "{} {kind} over {}: {e}{}",
                model.name,
                profile.name,
                d.processes.logs()
            ))
        });
        // The client ends its session before the processes are stopped.
        drop(client);
        drop(d.processes);
        Ok((r?, d.comparison))
    };
    let (latency, latency_comparison) = run(1, latency_images)?;
    let (throughput, throughput_comparison) = run(100.min(limit.max(1)), limit)?;
    Ok(DeployedResult {
        model: model.name.clone(),
        backend: kind.name().into(),
        network: profile.name.clone(),
        one_way_delay_ms: profile.one_way_delay.as_secs_f64() * 1e3,
        rate_mbit_s: profile.rate_bits_per_s.map(|r| r as f64 / 1e6),
        latency_comparison,
        throughput_comparison,
        latency,
        throughput,
    })
}
