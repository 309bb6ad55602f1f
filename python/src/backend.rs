//! Private inference: a backend from the registry the CLI uses, its setup, inference and the
//! evaluation loop.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use numpy::{PyArray2, PyReadonlyArray1, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use ppml_bench::registry::BackendOptions;
use ppml_bench::BackendKind;
use ppml_hybrid::backend::SERVER_NAME as HYBRID_SERVER_NAME;
use ppml_hybrid::RemoteServer;
use ppml_mpc::{Comparison, PartiesConfig};
use ppml_nn::backend::CallStats;
use ppml_nn::eval;
use ppml_nn::idx::Dataset;
use ppml_nn::Model;
use ppml_tee::Measurement;
use ppml_tls::{Connector, Trust};
use pyo3::prelude::*;

use crate::error::{Failure, Kind};
use crate::he_remote::HeRemote;
use crate::images::{logits_array, Images};
use crate::model::PyModel;
use crate::worker::Worker;

/// A private-inference backend (`plain`, `he`, `mpc2`, `mpc3`, `tee`) built by the same registry
/// as `ppml eval --backend`. Its calls release the GIL; one backend runs one call at a time.
#[pyclass(name = "Backend", module = "ppml._ppml", frozen)]
pub struct PyBackend {
    kind: BackendKind,
    worker: Worker,
    /// The model of the last successful setup (it says how to normalise pixels).
    model: Mutex<Option<Arc<Model>>>,
}

/// The registry's options from Python keyword arguments.
fn options(
    allow_simulated: bool,
    enclave: Option<String>,
    measurement: Option<&str>,
    frac_bits: Option<u32>,
    comparison: Option<&str>,
    parties: Option<PathBuf>,
) -> Result<BackendOptions, Failure> {
    let measurement = measurement
        .map(|m| m.parse::<Measurement>())
        .transpose()
        .map_err(|e| Failure::input(format!("measurement: {e}")))?;
    let comparison = comparison
        .map(|c| {
            Comparison::from_name(c).ok_or_else(|| {
                Failure::input(format!(
                    "comparison {c:?}: expected \"fss\" or \"bit-decomposition\""
                ))
            })
        })
        .transpose()?;
    let parties = parties
        .map(|p| {
            PartiesConfig::load(&p)
                .map_err(|e| Failure::with_context(&e, &format!("reading {}", p.display())))
        })
        .transpose()?;
    Ok(BackendOptions {
        allow_simulated,
        enclave,
        measurement,
        frac_bits,
        comparison,
        parties,
        ..BackendOptions::default()
    })
}

impl PyBackend {
    fn set_model(&self, model: &Arc<Model>) -> Result<(), Failure> {
        *self
            .model
            .lock()
            .map_err(|_| Failure::new(Kind::Backend, "backend state poisoned"))? =
            Some(Arc::clone(model));
        Ok(())
    }

    fn model(&self) -> Result<Arc<Model>, Failure> {
        self.model
            .lock()
            .map_err(|_| Failure::new(Kind::Backend, "backend state poisoned"))?
            .clone()
            .ok_or_else(|| {
                Failure::new(
                    Kind::Backend,
                    format!("{} backend used before setup(model)", self.kind),
                )
            })
    }
}

#[pymethods]
impl PyBackend {
    /// Builds a backend by name. Options (each only for the backends named):
    /// `allow_simulated` (tee: accept simulated evidence, required without `enclave`),
    /// `enclave` and `measurement` (tee: attest a running `ppml enclave`), `frac_bits` and
    /// `comparison` (mpc2/mpc3), `parties` (mpc2/mpc3: the `parties.toml` of parties started with
    /// `ppml party`), `server`, `ca` and `timeout` (he: the client of a running `ppml he-server`,
    /// whose certificate must chain to the CA certificate file `ca`, waiting at most `timeout`
    /// seconds on any read or write; hybrid: the client of a running `ppml hybrid-server`, same
    /// `ca`, the protocol's own timeout), `batch` (the batch size calls will use,
    /// when known: he then prepares only the mode made for it).
    #[new]
    #[pyo3(signature = (name, *, allow_simulated=false, enclave=None, measurement=None,
                        frac_bits=None, comparison=None, parties=None, server=None,
                        ca=None, timeout=300.0, batch=None))]
    #[expect(clippy::too_many_arguments, reason = "one per option of the CLI")]
    fn new(
        py: Python<'_>,
        name: &str,
        allow_simulated: bool,
        enclave: Option<String>,
        measurement: Option<&str>,
        frac_bits: Option<u32>,
        comparison: Option<&str>,
        parties: Option<PathBuf>,
        server: Option<String>,
        ca: Option<PathBuf>,
        timeout: f64,
        batch: Option<usize>,
    ) -> Result<Self, Failure> {
        let kind: BackendKind = name.parse().map_err(Failure::input)?;
        if batch == Some(0) {
            return Err(Failure::input("batch must be at least 1"));
        }
        let opts = options(
            allow_simulated,
            enclave,
            measurement,
            frac_bits,
            comparison,
            parties,
        )?;
        let worker = match server {
            Some(addr) if kind == BackendKind::He => {
                let timeout = Duration::try_from_secs_f64(timeout)
                    .ok()
                    .filter(|t| !t.is_zero())
                    .ok_or_else(|| {
                        Failure::input("timeout must be a positive number of seconds")
                    })?;
                let ca = ca.ok_or_else(|| {
                    Failure::input(
                        "server= needs ca=: the CA certificate the he-server's chains to",
                    )
                })?;
                Worker::start(name, move || Ok(Box::new(HeRemote::new(addr, ca, timeout))))?
            }
            Some(addr) if kind == BackendKind::Hybrid => {
                let ca = ca.ok_or_else(|| {
                    Failure::input(
                        "server= needs ca=: the CA certificate the hybrid-server's chains to",
                    )
                })?;
                let roots = ppml_tls::read_certs(&ca)
                    .map_err(|e| Failure::with_context(&e, &format!("reading {}", ca.display())))?;
                let tls = Connector::new(&Trust::Roots(roots), None, HYBRID_SERVER_NAME)
                    .map_err(|e| Failure::from_error(&e))?;
                let opts = BackendOptions {
                    hybrid_server: Some(RemoteServer { addr, tls }),
                    ..opts
                };
                py.detach(move || {
                    Worker::start(name, move || {
                        kind.build_for(&opts, batch).map_err(Failure::input)
                    })
                })?
            }
            Some(_) => {
                return Err(Failure::input(format!(
                    "server= is the address of a ppml he-server or hybrid-server: backend he or \
                     hybrid, not {kind}"
                )))
            }
            None => py.detach(move || {
                Worker::start(name, move || {
                    kind.build_for(&opts, batch).map_err(Failure::input)
                })
            })?,
        };
        Ok(Self {
            kind,
            worker,
            model: Mutex::new(None),
        })
    }

    /// The backend's name.
    #[getter]
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// One-time work for `model` (keys, dealer material, attestation), reported apart from
    /// inference: `(seconds, bytes_sent, facts as a JSON object, notes)`.
    fn setup(&self, py: Python<'_>, model: &PyModel) -> PyResult<(f64, u64, String, Vec<String>)> {
        let m = Arc::clone(&model.model);
        let report = self.worker.run(py, None, move |backend, _| {
            let t = Instant::now();
            backend
                .setup(&m)
                .map(|r| (t.elapsed().as_secs_f64(), r))
                .map_err(|e| Failure::from_error(e.as_ref()))
        })??;
        self.set_model(&model.model)?;
        let (seconds, r) = report;
        let facts = serde_json::to_string(&r.facts)
            .map_err(|e| Failure::new(Kind::Backend, format!("setup facts: {e}")))?;
        Ok((seconds, r.bytes_sent, facts, r.notes))
    }

    /// Classifies `images` end to end (the client's encryption or sharing and decryption
    /// included): `uint8` pixels `[n, h, w]`/`[n, c, h, w]`, normalised as the set-up model says,
    /// or float model inputs. Returns `(logits [n, classes], bytes_sent, rounds)`.
    fn infer<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyArray2<f32>>, u64, u64)> {
        let model = self.model()?;
        let images = Images::extract(images)?;
        let (logits, stats) = self.worker.run(py, None, move |backend, _| {
            let x = images.into_tensor(&model)?;
            let n = x.batch();
            let (logits, stats): (_, CallStats) = backend
                .infer(&x)
                .map_err(|e| Failure::from_error(e.as_ref()))?;
            if logits.batch() != n {
                return Err(Failure::new(
                    Kind::Backend,
                    format!(
                        "{} returned {} rows for {n} images",
                        backend.name(),
                        logits.batch()
                    ),
                ));
            }
            Ok((logits, stats))
        })??;
        Ok((logits_array(py, logits)?, stats.bytes_sent, stats.rounds))
    }

    /// Runs ppml's evaluation loop (the one behind `ppml eval`) on `images` (`uint8` pixels
    /// `[n, h, w]` or `[n, 1, h, w]`) and `labels` (`uint8 [n]`) in calls of `batch` images, after
    /// this backend's setup for `model`; `progress(done, total)` is called after each call.
    /// Returns the report of `ppml eval --json` as a JSON string.
    #[pyo3(signature = (model, images, labels, batch, progress=None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        model: &PyModel,
        images: PyReadonlyArrayDyn<'_, u8>,
        labels: PyReadonlyArray1<'_, u8>,
        batch: usize,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let data = dataset(&images, &labels, &model.model)?;
        let m = Arc::clone(&model.model);
        let report = self.worker.run(py, progress, move |backend, progress| {
            eval::evaluate(backend, &m, &data, batch, progress)
                .map_err(|e| Failure::from_error(e.as_ref()))
        })??;
        self.set_model(&model.model)?;
        serde_json::to_string(&report)
            .map_err(|e| Failure::new(Kind::Backend, format!("report: {e}")).into())
    }

    fn __repr__(&self) -> String {
        format!("<ppml.Backend {}>", self.kind)
    }
}

/// A dataset from NumPy pixels and labels, checked against the model's input.
fn dataset(
    images: &PyReadonlyArrayDyn<'_, u8>,
    labels: &PyReadonlyArray1<'_, u8>,
    model: &Model,
) -> Result<Dataset, Failure> {
    let [c, h, w] = model.input;
    let shape = images.shape();
    let n = match *shape {
        [n, hh, ww] if c == 1 && [hh, ww] == [h, w] => n,
        [n, 1, hh, ww] if c == 1 && [hh, ww] == [h, w] => n,
        _ => {
            return Err(Failure::input(format!(
                "images of shape {shape:?}: evaluation takes uint8 pixels [n, {h}, {w}] of \
                 one-channel images for model {} (input [{c}, {h}, {w}])",
                model.name
            )))
        }
    };
    if labels.len() != n {
        return Err(Failure::input(format!(
            "{n} images but {} labels",
            labels.len()
        )));
    }
    if n == 0 {
        return Err(Failure::input("no images to evaluate"));
    }
    Ok(Dataset {
        rows: h,
        cols: w,
        pixels: images.as_array().iter().copied().collect(),
        labels: labels.as_array().to_vec(),
    })
}
