//! Model files: safetensors with the architecture as JSON in the header's metadata.
//!
//! One file holds everything: the metadata key `ppml.model` carries the [`Model`] without its
//! weights, and tensors `layers.{i}.weight` / `layers.{i}.bias` (f32, little-endian) carry the
//! weights of layer `i`. Loading is total: a bounded size, a checked architecture, and every
//! tensor's presence, dtype, shape and finiteness checked, with errors naming the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::{zoo, Model, NnError, Result};

/// Metadata key holding the architecture.
const META_MODEL: &str = "ppml.model";
/// Metadata key holding the format version.
const META_FORMAT: &str = "ppml.format";
/// The format version this code writes and reads.
const FORMAT: &str = "1";
/// The largest model file accepted.
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// Serialises `model` (architecture and weights) to safetensors bytes.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>> {
    model.shapes()?;
    let arch = serde_json::to_string(model)
        .map_err(|e| NnError::InvalidModel(format!("cannot describe model: {e}")))?;
    let mut buffers = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for (suffix, shape, data) in layer.params() {
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            buffers.push((format!("layers.{i}.{suffix}"), shape, bytes));
        }
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NnError::InvalidModel(format!("safetensors: {e}")))?;
    let meta = HashMap::from([
        (META_MODEL.to_string(), arch),
        (META_FORMAT.to_string(), FORMAT.to_string()),
    ]);
    safetensors::serialize(views, Some(meta))
        .map_err(|e| NnError::InvalidModel(format!("safetensors: {e}")))
}

/// Writes `model` to `path`.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let bytes = to_bytes(model)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| NnError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a model file.
pub fn load(path: &Path) -> Result<Model> {
    let io = |source| NnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_MODEL_BYTES {
        return Err(NnError::ModelFile {
            path: path.to_path_buf(),
            reason: format!("{len} bytes, more than the {MAX_MODEL_BYTES} accepted"),
        });
    }
    from_bytes(&std::fs::read(path).map_err(io)?, path)
}

/// Parses model file bytes; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
    let file_err = |reason: String| NnError::ModelFile {
        path: path.to_path_buf(),
        reason,
    };
    let st = SafeTensors::deserialize(bytes).map_err(|e| file_err(format!("safetensors: {e}")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| file_err(format!("safetensors: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    match meta.get(META_FORMAT).map(String::as_str) {
        Some(FORMAT) => {}
        Some(v) => {
            return Err(file_err(format!(
                "format version {v}, this build reads {FORMAT}"
            )))
        }
        None => {
            return Err(file_err(format!(
                "no `{META_FORMAT}` metadata: not a ppml model"
            )))
        }
    }
    let arch = meta
        .get(META_MODEL)
        .ok_or_else(|| file_err(format!("no `{META_MODEL}` metadata")))?;
    let mut model: Model =
        serde_json::from_str(arch).map_err(|e| file_err(format!("architecture metadata: {e}")))?;

    let mut expected = Vec::new();
    for (i, layer) in model.layers.iter_mut().enumerate() {
        let shapes: Vec<_> = layer
            .params()
            .into_iter()
            .map(|(suffix, shape, _)| (suffix, shape))
            .collect();
        for ((suffix, shape), slot) in shapes.into_iter().zip(layer.params_mut()) {
            let name = format!("layers.{i}.{suffix}");
            *slot = read_tensor(&st, &name, &shape, path)?;
            expected.push(name);
        }
    }
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|n| !expected.iter().any(|e| e == n))
    {
        return Err(NnError::Tensor {
            path: path.to_path_buf(),
            tensor: extra.to_string(),
            reason: "not a parameter of the architecture".into(),
        });
    }
    model.shapes().map_err(|e| file_err(e.to_string()))?;
    Ok(model)
}

fn read_tensor(st: &SafeTensors, name: &str, shape: &[usize], path: &Path) -> Result<Vec<f32>> {
    let err = |reason: String| NnError::Tensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        reason,
    };
    let view = st.tensor(name).map_err(|_| err("missing".into()))?;
    if view.dtype() != Dtype::F32 {
        return Err(err(format!("dtype {:?}, expected F32", view.dtype())));
    }
    if view.shape() != shape {
        return Err(err(format!(
            "shape {:?}, the architecture needs {shape:?}",
            view.shape()
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(err("holds a NaN or infinite value".into()));
    }
    Ok(values)
}

/// Where the committed zoo weights live: `models/` under the current directory if it exists,
/// else the repository's `models/` this binary was built from.
pub fn default_models_dir() -> PathBuf {
    let local = PathBuf::from("models");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }
}

/// Resolves `--model`: an existing file path, or a zoo name whose weights are in `models_dir`.
pub fn resolve(name_or_path: &str, models_dir: &Path) -> Result<Model> {
    let as_path = Path::new(name_or_path);
    if as_path.is_file() {
        return load(as_path);
    }
    if zoo::architecture(name_or_path).is_some() {
        return load(&models_dir.join(format!("{name_or_path}.safetensors")));
    }
    Err(NnError::UnknownModel {
        name: name_or_path.to_string(),
        known: zoo::names(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lenet() -> Model {
        let mut m = zoo::architecture("lenet").expect("zoo");
        zoo::init_weights(&mut m, 1);
        m
    }

    #[test]
    fn round_trip_keeps_architecture_and_weights() {
        let m = lenet();
        let back = from_bytes(&to_bytes(&m).expect("save"), Path::new("x")).expect("load");
        assert_eq!(back, m);
    }

    #[test]
    fn a_tensor_that_does_not_match_is_named() {
        let m = lenet();
        let mut other = zoo::architecture("minionn").expect("zoo");
        zoo::init_weights(&mut other, 1);
        // minionn's weights under lenet's architecture: shapes differ at layer 0.
        let mut bytes_model = other.clone();
        bytes_model.layers = other.layers.clone();
        let mut frankenstein = to_bytes(&bytes_model).expect("save");
        // Swap in lenet's architecture metadata by re-serialising with its JSON.
        let arch = serde_json::to_string(&m).expect("json");
        let (_, meta) = SafeTensors::read_metadata(&frankenstein).expect("meta");
        let st = SafeTensors::deserialize(&frankenstein).expect("st");
        let mut md = meta.metadata().clone().expect("md");
        md.insert(META_MODEL.into(), arch);
        frankenstein = safetensors::serialize(st.tensors(), Some(md)).expect("ser");
        let err = from_bytes(&frankenstein, Path::new("f")).unwrap_err();
        match err {
            NnError::Tensor { tensor, reason, .. } => {
                assert_eq!(tensor, "layers.0.weight");
                assert!(reason.contains("shape"), "{reason}");
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn garbage_and_foreign_files_are_refused() {
        assert!(from_bytes(b"", Path::new("e")).is_err());
        assert!(from_bytes(&[0xff; 64], Path::new("g")).is_err());
        let plain = safetensors::serialize(Vec::<(String, TensorView)>::new(), None).expect("st");
        let err = from_bytes(&plain, Path::new("p")).unwrap_err().to_string();
        assert!(err.contains("not a ppml model"), "{err}");
        let mut bytes = to_bytes(&lenet()).expect("save");
        let n = bytes.len();
        bytes.truncate(n - 3);
        assert!(from_bytes(&bytes, Path::new("t")).is_err());
    }

    #[test]
    fn unknown_names_list_the_zoo() {
        let err = resolve("resnet", Path::new("models"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lenet"), "{err}");
    }
}
