//! The comparison harness behind `ppml bench`.

use std::path::PathBuf;

use ppml_bench::registry::BackendOptions;
use ppml_bench::{BackendKind, BenchConfig};
use ppml_nn::idx::{self, Split};
use ppml_nn::io;
use pyo3::prelude::*;

use crate::error::{Failure, Kind};

/// Runs `models` under `backends` (default: all) against plain in the same run, as `ppml bench`
/// does (the in-process enclave with simulated evidence, labelled so), on the first `limit` test
/// images and `latency_images` images one at a time. Returns the bench's `results.json` as a
/// JSON string. The bench draws its progress bars on standard error when that is a terminal.
#[pyfunction]
#[pyo3(signature = (models, backends=None, limit=1000, latency_images=50, models_dir=None, data=None))]
pub fn bench(
    py: Python<'_>,
    models: Vec<String>,
    backends: Option<Vec<String>>,
    limit: usize,
    latency_images: usize,
    models_dir: Option<PathBuf>,
    data: Option<PathBuf>,
) -> Result<String, Failure> {
    let backends = match backends {
        Some(names) => names
            .iter()
            .map(|n| n.parse::<BackendKind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::input)?,
        None => BackendKind::ALL.to_vec(),
    };
    if limit == 0 || latency_images == 0 || models.is_empty() {
        return Err(Failure::input(
            "bench needs at least one model, limit >= 1 and latency_images >= 1",
        ));
    }
    let cfg = BenchConfig {
        models,
        backends,
        limit,
        latency_images,
        models_dir: models_dir.unwrap_or_else(io::default_models_dir),
        backend_options: BackendOptions {
            allow_simulated: true,
            ..BackendOptions::default()
        },
        deployed: None,
    };
    let dir = data.unwrap_or_else(idx::default_data_dir);
    let report = py.detach(move || -> Result<_, Failure> {
        let mut test = idx::load_mnist(&dir, Split::Test)?;
        test.truncate(cfg.limit.max(cfg.latency_images));
        ppml_bench::run(&cfg, &test).map_err(|e| Failure::from_error(&e))
    })?;
    serde_json::to_string(&report).map_err(|e| Failure::new(Kind::Backend, format!("report: {e}")))
}
