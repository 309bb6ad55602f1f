//! `ppml._ppml`: the compiled half of the Python package `ppml`.
//!
//! A thin layer over ppml's crates, which know nothing of Python (as tokenizers' Python bindings
//! over the `tokenizers` crate): one module per concept, Rust errors sorted into the exception
//! classes of `ppml/errors.py` ([`error`]), NumPy arrays in and out ([`images`]), the GIL released
//! during every computation. Backends come from the registry the CLI uses
//! (`ppml_bench::registry`), except the client of a running `he-server`, which the registry does
//! not offer ([`he_remote`]); each lives on its own thread ([`worker`]); evaluation is
//! `ppml_nn::eval`, the loop behind `ppml eval`. The pure-Python package (`python/ppml/`) shapes
//! this into the public API; its stubs are `python/ppml/_ppml.pyi`.

mod backend;
mod bench;
mod data;
mod error;
mod he_remote;
mod images;
mod model;
mod worker;

use pyo3::prelude::*;

/// The compiled module.
#[pymodule]
fn _ppml(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_class::<backend::PyBackend>()?;
    m.add_function(wrap_pyfunction!(model::zoo, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_model, m)?)?;
    m.add_function(wrap_pyfunction!(model::import_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(model::import_onnx_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(data::mnist, m)?)?;
    m.add_function(wrap_pyfunction!(data::load_idx, m)?)?;
    m.add_function(wrap_pyfunction!(data::default_data_dir, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
