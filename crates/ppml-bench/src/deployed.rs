//! Deployed rows: `mpc2`/`mpc3` with the three parties as separate `ppml party` processes over
//! TLS, the client in this process, and every connection (party to party, client to party)
//! through a user-space link emulator ([`ppml_link`]) shaped to a profile.
//!
//! Each row starts a fresh deployment on 127.0.0.1 (certificates, `parties.toml`, relay,
//! parties), measures latency at batch 1 and throughput at batch 100 as the in-process rows do,
//! and stops it with SIGTERM. The comparison is chosen per measurement, as measured: FSS for
//! single images on the `lan` and `wan` profiles (one round per comparison instead of eight; its
//! keys are made in the offline phase), bit decomposition on `loopback`, where rounds cost
//! microseconds and it computes less, and for batches (FSS keys for a batch of 100 `lenet` images
//! are about 4 GB).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ppml_link::{LinkProfile, Relay, RelayHandle};
use ppml_mpc::{Comparison, MpcBackend, PartiesConfig, Protocol};
use ppml_nn::eval::{self, EvalReport};
use ppml_nn::idx::Dataset;
use ppml_nn::Model;
use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// What to run deployed.
#[derive(Clone, Debug)]
pub struct DeployedConfig {
    /// Link profiles (`loopback`, `lan`, `wan`).
    pub networks: Vec<LinkProfile>,
    /// Zoo names or model files to run deployed.
    pub models: Vec<String>,
    /// Protocols to run deployed.
    pub protocols: Vec<Protocol>,
    /// The `ppml` executable that runs `ppml party`.
    pub party_exe: PathBuf,
}

/// One model under one protocol over one link profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeployedResult {
    /// The model.
    pub model: String,
    /// `mpc2` or `mpc3`.
    pub backend: String,
    /// The link profile's name.
    pub network: String,
    /// One-way delay of the profile, in milliseconds.
    pub one_way_delay_ms: f64,
    /// Rate of the profile in Mbit/s (`None`: unshaped).
    pub rate_mbit_s: Option<f64>,
    /// The comparison used for the latency measurement.
    pub latency_comparison: String,
    /// The comparison used for the throughput measurement.
    pub throughput_comparison: String,
    /// Measurements at batch 1.
    pub latency: EvalReport,
    /// Measurements at batch 100.
    pub throughput: EvalReport,
}

fn err(what: impl std::fmt::Display) -> BenchError {
    BenchError::Config(format!("deployed run: {what}"))
}

fn free_port() -> Result<SocketAddr, BenchError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    l.local_addr().map_err(err)
}

/// A running deployment: the relay, the party processes and their folder.
struct Deployment {
    dir: PathBuf,
    config: PartiesConfig,
    parties: Vec<Child>,
    _relay: Option<RelayHandle>,
}

impl Deployment {
    fn start(
        exe: &Path,
        model: &str,
        models_dir: &Path,
        (protocol, comparison, profile): (Protocol, Comparison, &LinkProfile),
        pool_depth: usize,
    ) -> Result<Self, BenchError> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ppml-bench-deploy-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        ppml_mpc::generate_certs(&dir, 3).map_err(err)?;
        let listen: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
        // Unshaped (loopback): the parties connect directly, with no relay in between.
        let (relay, reach) = if profile.is_shaped() {
            let routes: Vec<(SocketAddr, SocketAddr)> = listen
                .iter()
                .map(|&to| Ok((free_port()?, to)))
                .collect::<Result<_, BenchError>>()?;
            let relay = Relay::start(profile.clone(), &routes).map_err(err)?;
            let reach = relay.listen_addrs();
            (Some(relay), reach)
        } else {
            (None, listen.clone())
        };
        let mut toml = format!(
            "protocol = \"{}\"\ncomparison = \"{}\"\ntimeout_ms = 120000\nconnect_timeout_ms = 60000\npool_depth = {pool_depth}\nca = \"ca.pem\"\n",
            match protocol {
                Protocol::Mpc2 => "mpc2",
                Protocol::Mpc3 => "mpc3",
            },
            comparison.name()
        );
        for i in 0..3 {
            toml += &format!(
                "\n[[party]]\naddress = \"{}\"\nlisten = \"{}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n",
                reach[i], listen[i]
            );
        }
        toml += "\n[client]\ncert = \"client.pem\"\nkey = \"client.key\"\n";
        let path = dir.join("parties.toml");
        std::fs::write(&path, toml).map_err(err)?;
        let config = PartiesConfig::load(&path).map_err(err)?;
        let mut parties = Vec::with_capacity(3);
        for i in 0..3 {
            let log = std::fs::File::create(dir.join(format!("party-{i}.log"))).map_err(err)?;
            let child = Command::new(exe)
                .args(["party", "--id", &i.to_string(), "--config"])
                .arg(&path)
                .args(["--model", model, "--models-dir"])
                .arg(models_dir)
                .arg("--ready-file")
                .arg(dir.join(format!("ready-{i}")))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| err(format!("starting {}: {e}", exe.display())))?;
            parties.push(child);
        }
        let mut d = Self {
            dir,
            config,
            parties,
            _relay: relay,
        };
        let t = Instant::now();
        while !(0..3).all(|i| d.dir.join(format!("ready-{i}")).exists()) {
            for p in &mut d.parties {
                if let Ok(Some(s)) = p.try_wait() {
                    return Err(err(format!(
                        "a party exited before it was ready ({s}); see {}",
                        d.dir.display()
                    )));
                }
            }
            if t.elapsed() > Duration::from_secs(120) {
                return Err(err("parties not ready within 120 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(d)
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        // SIGTERM: the parties finish what is in flight and exit.
        for p in &self.parties {
            let _ = Command::new("kill")
                .args(["-TERM", &p.id().to_string()])
                .status();
        }
        for p in &mut self.parties {
            let t = Instant::now();
            while matches!(p.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The comparison for a measurement at `batch` over `profile` (see the module docs).
pub fn comparison_for(profile: &LinkProfile, batch: usize) -> Comparison {
    if batch == 1 && profile.one_way_delay > Duration::ZERO {
        Comparison::Fss
    } else {
        Comparison::BitDecomposition
    }
}

/// Measures `model` under `protocol` deployed over `profile`: latency on `latency_images` at
/// batch 1, throughput on `limit` images at batch 100.
pub(crate) fn measure(
    cfg: &DeployedConfig,
    (model, models_dir): (&Model, &Path),
    (protocol, profile): (Protocol, &LinkProfile),
    test: &Dataset,
    (latency_images, limit): (usize, usize),
) -> Result<DeployedResult, BenchError> {
    let run = |batch: usize, images: usize| -> Result<(EvalReport, Comparison), BenchError> {
        let comparison = comparison_for(profile, batch);
        // Online figures are measured with the offline phase done: the pool holds every
        // one-image query of the latency run (the standard offline/online split); batches of
        // 100 keep the default depth (their material is large), refilled in the background.
        let depth = if batch == 1 {
            images.clamp(1, 64)
        } else {
            ppml_mpc::DEFAULT_POOL_DEPTH
        };
        let d = Deployment::start(
            &cfg.party_exe,
            &model.name,
            models_dir,
            (protocol, comparison, profile),
            depth,
        )?;
        let mut client = MpcBackend::remote(d.config.clone())
            .map_err(err)?
            .with_pool_batch(batch)
            .with_pool_queries(images / batch);
        let mut data = test.clone();
        data.truncate(images);
        let r = eval::evaluate(&mut client, model, &data, batch, &mut |_, _| {}).map_err(|e| {
            err(format!(
                "{} {} over {}: {e}",
                model.name,
                name(protocol),
                profile.name
            ))
        })?;
        drop(client);
        drop(d);
        Ok((r, comparison))
    };
    let (latency, lc) = run(1, latency_images)?;
    let (throughput, tc) = run(100.min(limit.max(1)), limit)?;
    Ok(DeployedResult {
        model: model.name.clone(),
        backend: name(protocol).into(),
        network: profile.name.clone(),
        one_way_delay_ms: profile.one_way_delay.as_secs_f64() * 1e3,
        rate_mbit_s: profile.rate_bits_per_s.map(|r| r as f64 / 1e6),
        latency_comparison: lc.name().into(),
        throughput_comparison: tc.name().into(),
        latency,
        throughput,
    })
}

fn name(p: Protocol) -> &'static str {
    match p {
        Protocol::Mpc2 => "mpc2",
        Protocol::Mpc3 => "mpc3",
    }
}
