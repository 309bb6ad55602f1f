//! Models: the zoo, model files, ONNX import, plain prediction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use numpy::PyArray2;
use ppml_nn::model::Normalization;
use ppml_nn::{engine, io, zoo as nn_zoo, Model};
use ppml_onnx::{ImportOptions, Imported};
use pyo3::prelude::*;

use crate::error::Failure;
use crate::images::{logits_array, Images};

/// A neural network with its weights: input shape, input normalisation and layers.
///
/// Immutable: every backend takes it as it is. Built by `load_model`, `import_onnx` or
/// `from_torch`.
#[pyclass(name = "Model", module = "ppml._ppml", frozen)]
pub struct PyModel {
    /// The model, shared with the calls that run it without the GIL.
    pub model: Arc<Model>,
    /// What an ONNX import did beyond one-to-one translation (empty for a model file).
    notes: Vec<String>,
}

impl PyModel {
    fn new(model: Model, notes: Vec<String>) -> Self {
        Self {
            model: Arc::new(model),
            notes,
        }
    }
}

#[pymethods]
impl PyModel {
    /// The model's name (a zoo name, or the file or ONNX graph it came from).
    #[getter]
    fn name(&self) -> &str {
        &self.model.name
    }

    /// One input image as `(channels, height, width)`.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let [c, h, w] = self.model.input;
        (c, h, w)
    }

    /// The pixel normalisation `(pixel / 255 - mean) / std` as `(mean, std)`.
    #[getter]
    fn normalization(&self) -> (f32, f32) {
        let Normalization { mean, std } = self.model.normalization;
        (mean, std)
    }

    /// Number of output classes (logits per image).
    #[getter]
    fn classes(&self) -> Result<usize, Failure> {
        Ok(self.model.classes()?)
    }

    /// Number of trainable parameters.
    #[getter]
    fn param_count(&self) -> usize {
        self.model.param_count()
    }

    /// True when every activation is a polynomial (x^2, average pooling): what `he` runs.
    #[getter]
    fn is_polynomial(&self) -> bool {
        self.model.is_polynomial()
    }

    /// The layers' operator names, in order.
    #[getter]
    fn layers(&self) -> Vec<&'static str> {
        self.model.layers.iter().map(|l| l.op_name()).collect()
    }

    /// What the ONNX import did beyond one-to-one translation (folds, removals, assumptions);
    /// empty for a model read from a model file.
    #[getter]
    fn import_notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// One line per layer with its output shape.
    fn summary(&self) -> Result<String, Failure> {
        Ok(self.model.summary()?)
    }

    /// Plain (f32, in the clear) logits `[n, classes]` of `images`: `uint8` pixels `[n, h, w]` or
    /// `[n, c, h, w]` (normalised as the model says), or float model inputs of those shapes.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
    ) -> Result<Bound<'py, PyArray2<f32>>, Failure> {
        let images = Images::extract(images)?;
        let model = Arc::clone(&self.model);
        let logits = py.detach(move || -> Result<_, Failure> {
            let x = images.into_tensor(&model)?;
            Ok(engine::forward(&model, &x)?)
        })?;
        logits_array(py, logits)
    }

    /// Writes the model file (safetensors, the architecture in its metadata) that
    /// `load_model` and `ppml eval --model` read; `.safetensors` is appended when `path` has no
    /// such extension. Returns the path written.
    fn save(&self, py: Python<'_>, path: PathBuf) -> Result<String, Failure> {
        let path = with_extension(path);
        let model = Arc::clone(&self.model);
        py.detach(|| io::save(&model, &path))?;
        Ok(path.display().to_string())
    }

    fn __repr__(&self) -> String {
        let [c, h, w] = self.model.input;
        format!(
            "<ppml.Model {} input ({c}, {h}, {w}), {} layers, {} parameters>",
            self.model.name,
            self.model.layers.len(),
            self.model.param_count()
        )
    }
}

/// `path`, with `.safetensors` appended unless it already ends so (as `ppml import --out`).
fn with_extension(path: PathBuf) -> PathBuf {
    if path.extension().is_some_and(|e| e == "safetensors") {
        path
    } else {
        let mut s = path.into_os_string();
        s.push(".safetensors");
        PathBuf::from(s)
    }
}

fn dir_or_default(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(io::default_models_dir)
}

/// The zoo: `(name, description, weights committed in models_dir)` for every model.
#[pyfunction]
#[pyo3(signature = (models_dir=None))]
pub fn zoo(models_dir: Option<PathBuf>) -> Vec<(&'static str, &'static str, bool)> {
    let dir = dir_or_default(models_dir);
    nn_zoo::ZOO
        .iter()
        .map(|&(name, what)| {
            let have = dir.join(format!("{name}.safetensors")).is_file();
            (name, what, have)
        })
        .collect()
}

/// Loads a zoo model (its committed weights, from `models_dir`, by default the repository's
/// `models/`) or a model file (`.safetensors` may be left out), as `ppml eval --model` does.
#[pyfunction]
#[pyo3(signature = (name_or_path, models_dir=None))]
pub fn load_model(
    py: Python<'_>,
    name_or_path: &str,
    models_dir: Option<PathBuf>,
) -> Result<PyModel, Failure> {
    let dir = dir_or_default(models_dir);
    let with_ext = format!("{name_or_path}.safetensors");
    let name = if !Path::new(name_or_path).is_file() && Path::new(&with_ext).is_file() {
        with_ext.as_str()
    } else {
        name_or_path
    };
    let model = py
        .detach(|| io::resolve(name, &dir))
        .map_err(|e| Failure::with_context(&e, &format!("loading model `{name}`")))?;
    Ok(PyModel::new(model, Vec::new()))
}

fn import_options(
    name: Option<String>,
    input_shape: Option<(usize, usize, usize)>,
    mean: Option<f32>,
    std: Option<f32>,
) -> Result<ImportOptions, Failure> {
    let normalization =
        Normalization::overridden(mean, std).map_err(|e| Failure::input(e.to_string()))?;
    let input = match input_shape {
        Some((c, h, w)) if c == 0 || h == 0 || w == 0 => {
            return Err(Failure::input(format!(
                "input_shape ({c}, {h}, {w}): every dimension must be positive"
            )))
        }
        Some((c, h, w)) => Some([c, h, w]),
        None => None,
    };
    Ok(ImportOptions {
        name,
        input,
        normalization,
    })
}

fn imported(result: ppml_onnx::Result<Imported>, what: &str) -> Result<PyModel, Failure> {
    let imported = result.map_err(|e| Failure::with_context(&e, &format!("importing {what}")))?;
    Ok(PyModel::new(imported.model, imported.notes))
}

/// Imports an ONNX file (opset 13+) as `ppml import` does (see docs/onnx.md): the input shape
/// comes from the graph unless `input_shape` says, the normalisation from `mean`/`std`, else the
/// model's metadata, else MNIST's.
#[pyfunction]
#[pyo3(signature = (path, *, name=None, input_shape=None, mean=None, std=None))]
pub fn import_onnx(
    py: Python<'_>,
    path: PathBuf,
    name: Option<String>,
    input_shape: Option<(usize, usize, usize)>,
    mean: Option<f32>,
    std: Option<f32>,
) -> Result<PyModel, Failure> {
    let opts = import_options(name, input_shape, mean, std)?;
    let result = py.detach(|| ppml_onnx::import_file(&path, &opts));
    imported(result, &path.display().to_string())
}

/// [`import_onnx`] from the bytes of an ONNX model (what `from_torch` exports in memory).
#[pyfunction]
#[pyo3(signature = (data, *, name=None, input_shape=None, mean=None, std=None))]
pub fn import_onnx_bytes(
    py: Python<'_>,
    data: &[u8],
    name: Option<String>,
    input_shape: Option<(usize, usize, usize)>,
    mean: Option<f32>,
    std: Option<f32>,
) -> Result<PyModel, Failure> {
    let opts = import_options(name, input_shape, mean, std)?;
    let result = py.detach(|| ppml_onnx::import_bytes(data, &opts));
    imported(result, "an ONNX model")
}
