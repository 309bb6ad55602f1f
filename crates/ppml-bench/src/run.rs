//! The measurement loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ppml_nn::eval::{self, EvalReport};
use ppml_nn::idx::Dataset;
use ppml_nn::{io, Model};
use serde::{Deserialize, Serialize};

use crate::deployed::{DeployedConfig, DeployedResult};
use crate::error::BenchError;
use crate::registry::BackendOptions;
use crate::BackendKind;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Zoo names or model files.
    pub models: Vec<String>,
    /// Backends (plain is always measured as the baseline).
    pub backends: Vec<BackendKind>,
    /// Test images for accuracy, agreement and throughput.
    pub limit: usize,
    /// Test images timed one at a time for latency.
    pub latency_images: usize,
    /// Folder of the zoo's weights.
    pub models_dir: PathBuf,
    /// Options of the backends (the bench runs `tee` in-process, so it allows simulated
    /// evidence and labels it as such).
    pub backend_options: BackendOptions,
    /// The backends of `backends` that have a deployed form (`mpc2`, `mpc3`, `hybrid`) deployed
    /// as separate processes over emulated links (`None`: in-process rows only).
    pub deployed: Option<DeployedConfig>,
}

/// One model under one backend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PairResult {
    /// The model asked for.
    pub model: String,
    /// The model actually run (e.g. `lenet-sq` for `lenet` under HE).
    pub model_run: String,
    /// The backend.
    pub backend: String,
    /// Why the pair was not run, if it was not.
    pub skipped: Option<String>,
    /// Measurements at batch 1.
    pub latency: Option<EvalReport>,
    /// Why single-image latency was not measured although the pair ran (HE without a latency
    /// mode for the model).
    pub latency_skipped: Option<String>,
    /// Measurements at the backend's throughput batch.
    pub throughput: Option<EvalReport>,
    /// Median single-image latency divided by plain's on the same model.
    pub latency_slowdown: Option<f64>,
    /// Plain throughput divided by this backend's, same model and batch size class.
    pub throughput_slowdown: Option<f64>,
    /// Peak resident memory of the bench process during the pair, in MiB (all parties run in
    /// this process; memory the allocator kept from earlier pairs counts too).
    pub peak_rss_mib: Option<f64>,
}

impl PairResult {
    /// A pair with nothing measured yet: `skipped` says why it will not be, if it will not.
    pub fn unmeasured(
        model: &str,
        model_run: &str,
        backend: &str,
        skipped: Option<String>,
    ) -> Self {
        Self {
            model: model.into(),
            model_run: model_run.into(),
            backend: backend.into(),
            skipped,
            latency: None,
            latency_skipped: None,
            throughput: None,
            latency_slowdown: None,
            throughput_slowdown: None,
            peak_rss_mib: None,
        }
    }
}

/// A whole benchmark run (`results.json`; it loads again for [`crate::charts`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// CPU model and core count.
    pub machine: String,
    /// The commit of the code measured.
    pub commit: String,
    /// UTC time of the run.
    pub date: String,
    /// Test images for accuracy and throughput.
    pub limit: usize,
    /// Images timed one at a time.
    pub latency_images: usize,
    /// Every pair, plain first for each model.
    pub results: Vec<PairResult>,
    /// `mpc2`, `mpc3` and `hybrid` deployed as separate processes, per link profile.
    pub deployed: Vec<DeployedResult>,
}

/// The model to run under `backend` when `name` itself is not supported: the HE-friendly
/// variant of the zoo (`mlp` -> `mlp-sq`, `lenet` -> `lenet-sq`), if there is one.
fn substitute(name: &str) -> Option<String> {
    let sq = format!("{name}-sq");
    ppml_nn::zoo::architecture(&sq).map(|_| sq)
}

struct Runner<'a> {
    cfg: &'a BenchConfig,
    test: &'a Dataset,
    bars: MultiProgress,
    plain: BTreeMap<String, (EvalReport, EvalReport)>,
}

impl Runner<'_> {
    fn measure(
        &self,
        kind: BackendKind,
        model: &Model,
        images: usize,
        batch: usize,
    ) -> Result<EvalReport, BenchError> {
        let mut data = self.test.clone();
        data.truncate(images);
        let pb = self.bars.add(ProgressBar::new(data.len() as u64));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix:<28} [{bar:25}] {pos}/{len} images, {elapsed} (ETA {eta})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_prefix(format!("{} {} b={batch}", model.name, kind.name()));
        pb.enable_steady_tick(Duration::from_millis(250));
        // The run makes `images / batch` calls of `batch` images: pooled material for no more.
        let queries = data.len() / batch.max(1);
        let opts = BackendOptions {
            pool_queries: Some(queries),
            // hybrid makes the random OTs of that many calls at setup (as many as its pool bound
            // allows), so that its latency is online only, as the MPC rows' and the deployed rows'.
            pool_depth: self
                .cfg
                .backend_options
                .pool_depth
                .or((kind == BackendKind::Hybrid).then_some(queries)),
            ..self.cfg.backend_options.clone()
        };
        let mut backend = kind
            .build_for(&opts, Some(batch))
            .map_err(BenchError::Config)?;
        let r = eval::evaluate(backend.as_mut(), model, &data, batch, &mut |d, _| {
            pb.set_position(d as u64)
        })
        .map_err(|source| BenchError::Backend {
            model: model.name.clone(),
            backend: kind.name().into(),
            source,
        });
        pb.finish_and_clear();
        self.bars.remove(&pb);
        r
    }

    fn plain_baseline(&mut self, model: &Model) -> Result<(EvalReport, EvalReport), BenchError> {
        if let Some(b) = self.plain.get(&model.name) {
            return Ok(b.clone());
        }
        let lat = self.measure(BackendKind::Plain, model, self.cfg.latency_images, 1)?;
        let thr = self.measure(
            BackendKind::Plain,
            model,
            self.cfg.limit,
            BackendKind::Plain.throughput_batch(),
        )?;
        self.plain
            .insert(model.name.clone(), (lat.clone(), thr.clone()));
        Ok((lat, thr))
    }

    fn pair(&mut self, asked: &str, kind: BackendKind) -> Result<PairResult, BenchError> {
        let mut model = io::resolve(asked, &self.cfg.models_dir)?;
        let mut skipped = kind.unsupported(&model);
        if skipped.is_some() {
            if let Some(alt) = substitute(&model.name) {
                let alt_model = io::resolve(&alt, &self.cfg.models_dir)?;
                if kind.unsupported(&alt_model).is_none() {
                    model = alt_model;
                    skipped = None;
                }
            }
        }
        let mut result = PairResult::unmeasured(asked, &model.name, kind.name(), skipped);
        if result.skipped.is_some() {
            return Ok(result);
        }
        let (plain_lat, plain_thr) = self.plain_baseline(&model)?;
        let peak_resets = reset_peak_rss();
        let measured = if kind == BackendKind::Plain {
            Ok((Some(plain_lat.clone()), plain_thr.clone()))
        } else {
            let lat = match self.measure(kind, &model, self.cfg.latency_images, 1) {
                Ok(lat) => Ok(Some(lat)),
                // The model may still run in batches (HE throughput mode).
                Err(BenchError::Backend { source, .. })
                    if kind.unsupported_error(&source).is_some() =>
                {
                    result.latency_skipped = kind.unsupported_error(&source);
                    Ok(None)
                }
                Err(e) => Err(e),
            };
            lat.and_then(|lat| {
                let batch = kind.throughput_batch().min(self.cfg.limit);
                Ok((lat, self.measure(kind, &model, self.cfg.limit, batch)?))
            })
        };
        let (lat, thr) = match measured {
            Ok(m) => m,
            Err(BenchError::Backend { source, .. })
                if kind.unsupported_error(&source).is_some() =>
            {
                result.skipped = kind.unsupported_error(&source);
                return Ok(result);
            }
            Err(e) => return Err(e),
        };
        // Without a working reset the counter holds the whole run's peak: report nothing.
        result.peak_rss_mib = status_kib("VmHWM:")
            .filter(|_| peak_resets)
            .map(|kib| kib / 1024.0);
        result.latency_slowdown = lat
            .as_ref()
            .and_then(|l| ratio(l.latency_ms, plain_lat.latency_ms));
        result.throughput_slowdown =
            ratio(plain_thr.throughput_img_per_s, thr.throughput_img_per_s);
        result.latency = lat;
        result.throughput = Some(thr);
        Ok(result)
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Resets the kernel's peak-RSS counter of this process; true if the kernel honoured it (the
/// peak then equals the current resident size), so that the next peak is this pair's own.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
        && matches!((status_kib("VmHWM:"), status_kib("VmRSS:")), (Some(p), Some(r)) if p <= r + 1024.0)
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU model and core count of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// The commit being measured: `git rev-parse` of the working directory, marked dirty if the tree
/// has changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(h) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) if !s.is_empty() => format!("{h}-dirty"),
            _ => h,
        },
        None => "unknown (not a git checkout)".into(),
    }
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Runs every pair of `cfg` on `test` (plain first for each model, as the baseline).
pub fn run(cfg: &BenchConfig, test: &Dataset) -> Result<Report, BenchError> {
    if cfg.limit == 0 || cfg.latency_images == 0 || cfg.models.is_empty() {
        return Err(BenchError::Config(
            "need at least one model and one image".into(),
        ));
    }
    // Plain first (the baseline), then the others in the registry's order.
    let kinds: Vec<BackendKind> = BackendKind::ALL
        .iter()
        .copied()
        .filter(|k| *k == BackendKind::Plain || cfg.backends.contains(k))
        .collect();
    let mut runner = Runner {
        cfg,
        test,
        bars: MultiProgress::new(),
        plain: BTreeMap::new(),
    };
    let overall = runner
        .bars
        .add(ProgressBar::new((cfg.models.len() * kinds.len()) as u64));
    if let Ok(style) =
        ProgressStyle::with_template("bench {pos}/{len} pairs, {elapsed} (ETA {eta}) {msg}")
    {
        overall.set_style(style);
    }
    let mut results = Vec::new();
    for model in &cfg.models {
        for &kind in &kinds {
            overall.set_message(format!("{model} under {kind}"));
            results.push(runner.pair(model, kind)?);
            overall.inc(1);
        }
    }
    overall.finish_and_clear();
    let mut deployed = Vec::new();
    if let Some(d) = &cfg.deployed {
        for name in &d.models {
            let model = io::resolve(name, &cfg.models_dir)?;
            for kind in kinds
                .iter()
                .copied()
                .filter(|k| crate::deployed::deploys(*k))
            {
                for profile in &d.networks {
                    let pb = runner.bars.add(ProgressBar::new_spinner());
                    pb.set_message(format!(
                        "{name} under {kind} deployed over {}",
                        profile.name
                    ));
                    pb.enable_steady_tick(Duration::from_millis(250));
                    deployed.push(crate::deployed::measure(
                        d,
                        (&model, &cfg.models_dir),
                        (kind, profile),
                        test,
                        (cfg.latency_images, cfg.limit),
                    )?);
                    pb.finish_and_clear();
                }
            }
        }
    }
    Ok(Report {
        machine: machine(),
        commit: commit(),
        date: utc_now(),
        limit: cfg.limit.min(test.len()),
        latency_images: cfg.latency_images.min(test.len()),
        results,
        deployed,
    })
}
