//! MNIST: the repository's IDX files, or any pair of IDX files.

use std::path::{Path, PathBuf};

use numpy::ndarray::{Array1, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray3};
use ppml_nn::idx::{self, Dataset, Split};
use pyo3::prelude::*;

use crate::error::{Failure, Kind};

/// Pixels `uint8 [n, rows, cols]` and labels `uint8 [n]`.
type Arrays<'py> = (Bound<'py, PyArray3<u8>>, Bound<'py, PyArray1<u8>>);

fn arrays(py: Python<'_>, data: Dataset) -> Result<Arrays<'_>, Failure> {
    let n = data.len();
    let pixels = Array3::from_shape_vec((n, data.rows, data.cols), data.pixels)
        .map_err(|e| Failure::new(Kind::Data, format!("images: {e}")))?;
    Ok((
        pixels.into_pyarray(py),
        Array1::from_vec(data.labels).into_pyarray(py),
    ))
}

/// The folder `mnist` reads by default: `data/mnist` under the current directory if it exists,
/// else the repository's that this package was built from.
#[pyfunction]
pub fn default_data_dir() -> String {
    idx::default_data_dir().display().to_string()
}

/// The MNIST `split` (`"train"` or `"test"`) from `path` (a folder with the four IDX files, raw
/// or `.gz`; by default the repository's), the first `limit` images when given.
#[pyfunction]
#[pyo3(signature = (split="test", path=None, limit=None))]
pub fn mnist<'py>(
    py: Python<'py>,
    split: &str,
    path: Option<PathBuf>,
    limit: Option<usize>,
) -> Result<Arrays<'py>, Failure> {
    let split = match split {
        "train" => Split::Train,
        "test" => Split::Test,
        other => {
            return Err(Failure::input(format!(
                "split {other:?}: expected \"train\" or \"test\""
            )))
        }
    };
    if limit == Some(0) {
        return Err(Failure::input("limit must be at least 1"));
    }
    let dir = path.unwrap_or_else(idx::default_data_dir);
    let mut data = py.detach(|| idx::load_mnist(&dir, split))?;
    if let Some(n) = limit {
        data.truncate(n);
    }
    arrays(py, data)
}

/// An images file and a labels file in the IDX format (raw or `.gz`), of the same count.
#[pyfunction]
pub fn load_idx<'py>(
    py: Python<'py>,
    images: PathBuf,
    labels: PathBuf,
) -> Result<Arrays<'py>, Failure> {
    let data = py.detach(|| idx::load_pair(Path::new(&images), Path::new(&labels)))?;
    arrays(py, data)
}
