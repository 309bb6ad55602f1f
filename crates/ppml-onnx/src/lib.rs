//! `ppml-onnx`: bring your own model. Imports an ONNX model (opset 13 and later) into ppml's
//! model description ([`ppml_nn::Model`]) with its weights, so that every backend can run it.
//!
//! The protobuf is read with `tract-onnx`'s prost-generated `ModelProto` (no `protoc` at build
//! time). The graph is walked in topological order and must be a chain from its one input to its
//! one output, as ppml's models are:
//!
//! | ONNX | ppml |
//! | --- | --- |
//! | `Conv` (square kernel, equal strides, the same padding on all sides, group 1, dilation 1) | `conv2d` |
//! | `Gemm` (`alpha`, `beta`, `transB`; `transA = 0`), `MatMul` with a constant right side | `linear` |
//! | `Add`/`Sub`/`Mul`/`Div` by a per-channel constant right after an affine layer | folded into its bias/weights |
//! | `Add`/`Sub`/`Mul`/`Div` by a scalar on the graph input | folded into the normalisation |
//! | `BatchNormalization` right after `Conv`/`Gemm`/`MatMul` | folded into that layer |
//! | `Relu` | `relu` |
//! | `Pow(x, 2)`, `Mul(x, x)` | `square` |
//! | `MaxPool`, `AveragePool` (square window, no padding) | `max_pool2d`, `avg_pool2d` |
//! | `GlobalAveragePool` (square map) | `avg_pool2d` over the whole map |
//! | `Flatten` (axis 1), `Reshape` to `[batch, -1]` (constant shape) | `flatten` |
//! | `Identity`, `Dropout`, a `Reshape` that changes nothing | removed |
//!
//! Anything else is an [`OnnxError::Unsupported`] naming the operator, the node, the reason and
//! the backends that cannot run it. The input shape comes from the graph input (`[N, C, H, W]`,
//! or `[N, F]` with a flatten in front) or from [`ImportOptions::input`]; the pixel normalisation
//! from [`ImportOptions::normalization`], else the metadata properties `ppml.mean`/`ppml.std`,
//! else `[0, 1]` pixels for a model that normalises its own input, else the MNIST statistics of
//! the zoo; the model's own scalar operations on its input are folded in. Reading is bounded ([`MAX_ONNX_BYTES`]) and total: a
//! malformed file is an error, never a panic.
//!
//! # Example
//!
//! ```no_run
//! use ppml_onnx::{import_file, ImportOptions};
//!
//! let imported = import_file("model.onnx".as_ref(), &ImportOptions::default())?;
//! ppml_nn::io::save(&imported.model, "models/mine.safetensors".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod convert;
mod error;
mod proto;

use std::path::Path;

use ppml_nn::model::Normalization;
use ppml_nn::{Layer, Model, Shape};
use tract_onnx::pb::{tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto};
use tract_onnx::prelude::Framework;

pub use error::{OnnxError, Result};

/// The largest ONNX file accepted (as ppml's own model files).
pub const MAX_ONNX_BYTES: u64 = ppml_nn::io::MAX_MODEL_BYTES;
/// The most elements one input image may have.
pub const MAX_IMAGE_ELEMENTS: usize = 1 << 24;
/// The oldest default-domain opset read.
pub const MIN_OPSET: i64 = 13;

/// Choices the ONNX file may not make itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportOptions {
    /// The model's name (default: the file stem, else the graph name).
    pub name: Option<String>,
    /// One input image `[channels, height, width]`; required when the graph input does not say
    /// (symbolic dimensions, or a flat `[N, F]` input with `F` other than 784).
    pub input: Option<[usize; 3]>,
    /// How raw pixels become inputs: `(pixel / 255 - mean) / std`.
    pub normalization: Option<Normalization>,
}

/// An imported model, with where each layer came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The model, weights included.
    pub model: Model,
    /// `origins[i]`: the ONNX node that became layer `i`.
    pub origins: Vec<String>,
    /// What the import did beyond one-to-one translation (folds, removals, assumptions).
    pub notes: Vec<String>,
}

/// The backends of this workspace, by CLI name.
pub const BACKENDS: [&str; 5] = ["plain", "he", "mpc2", "mpc3", "tee"];

impl Imported {
    /// For each backend, `None` if it can run the model, or why not. (The `he` backend may
    /// still refuse a polynomial model at setup when its ciphertexts would not fit the memory
    /// or slot budgets.)
    pub fn backend_support(&self) -> Vec<(&'static str, Option<String>)> {
        let he = self
            .model
            .layers
            .iter()
            .zip(&self.origins)
            .find(|(l, _)| matches!(l, Layer::Relu | Layer::MaxPool2d(_)))
            .map(|(l, origin)| {
                format!(
                    "node `{origin}` ({}) is not a polynomial: CKKS evaluates x^2 activations \
                     and average pooling only",
                    l.op_name()
                )
            });
        BACKENDS
            .iter()
            .map(|&b| (b, if b == "he" { he.clone() } else { None }))
            .collect()
    }
}

/// Imports the ONNX file at `path` (the model is named after the file stem unless
/// `opts.name` says otherwise).
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Imported> {
    let io = |source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_ONNX_BYTES {
        return Err(OnnxError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_ONNX_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let mut opts = opts.clone();
    if opts.name.is_none() {
        opts.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    }
    import_bytes(&bytes, &opts)
}

/// Imports an ONNX model from its bytes.
pub fn import_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<Imported> {
    if bytes.len() as u64 > MAX_ONNX_BYTES {
        return Err(OnnxError::Decode {
            reason: format!("{} bytes, more than {MAX_ONNX_BYTES}", bytes.len()),
        });
    }
    if bytes.is_empty() {
        return Err(OnnxError::Decode {
            reason: "empty input".into(),
        });
    }
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| OnnxError::Decode {
            reason: format!("{e:#}"),
        })?;
    import_proto(&proto, opts)
}

/// Imports a decoded `ModelProto`.
pub fn import_proto(proto: &ModelProto, opts: &ImportOptions) -> Result<Imported> {
    let opset = proto
        .opset_import
        .iter()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .max()
        .unwrap_or(0);
    if opset < MIN_OPSET {
        return Err(OnnxError::Opset {
            found: opset,
            min: MIN_OPSET,
        });
    }
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Graph("the model has no graph".into()))?;
    let consts = convert::initializers(graph)?;
    let inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !consts.contains_key(&i.name))
        .collect();
    let [input] = inputs[..] else {
        return Err(OnnxError::Graph(format!(
            "{} inputs; ppml models take one image tensor",
            inputs.len()
        )));
    };
    let [output] = &graph.output[..] else {
        return Err(OnnxError::Graph(format!(
            "{} outputs; ppml models give one logits tensor",
            graph.output.len()
        )));
    };
    let dims = input_dims(input)?;
    let (image, batch, flat_input) = input_shape(&input.name, &dims, opts.input)?;
    let elements = image
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n > 0 && n <= MAX_IMAGE_ELEMENTS);
    if elements.is_none() {
        return Err(OnnxError::Graph(format!(
            "input image {image:?}: between 1 and {MAX_IMAGE_ELEMENTS} elements accepted"
        )));
    }
    let [c, h, w] = image;
    let mut walker = convert::Walker::new(input.name.clone(), Shape::Chw(c, h, w), batch, consts);
    if flat_input {
        walker
            .push(Layer::Flatten, "(input)")
            .map_err(OnnxError::Graph)?;
        if opts.input.is_none() {
            walker.note(format!(
                "the input `{}` is flat; read as {c}x{h}x{w} images (override with an input \
                 shape)",
                input.name
            ));
        }
    }
    for i in convert::topological(graph)? {
        walker.node(&graph.node[i], i)?;
    }
    let walk = walker.finish(&output.name)?;
    let (normalization, note) = normalization(proto, opts, walk.input_affine)?;
    let mut notes = walk.notes;
    notes.push(note);
    let name = opts
        .name
        .clone()
        .or_else(|| Some(graph.name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "onnx".into());
    let model = Model {
        name,
        input: image,
        normalization,
        layers: walk.layers,
    };
    model.shapes()?;
    Ok(Imported {
        model,
        origins: walk.origins,
        notes,
    })
}

/// The graph input's dimensions (`None` for a symbolic or unknown one); it must be a float
/// tensor.
fn input_dims(input: &ValueInfoProto) -> Result<Vec<Option<usize>>> {
    let err = |why: &str| OnnxError::Graph(format!("input `{}`: {why}", input.name));
    let Some(type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(err("not a tensor"));
    };
    if t.elem_type != 1 {
        return Err(err(&format!(
            "element type {} (ONNX data type), ppml models take float images",
            t.elem_type
        )));
    }
    let shape = t.shape.as_ref().ok_or_else(|| err("no shape"))?;
    Ok(shape
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) if v > 0 => usize::try_from(v).ok(),
            _ => None,
        })
        .collect())
}

/// `([c, h, w], fixed batch, input is flat)` from the graph input and the user's shape.
fn input_shape(
    name: &str,
    dims: &[Option<usize>],
    given: Option<[usize; 3]>,
) -> Result<([usize; 3], Option<usize>, bool)> {
    let err = |why: String| OnnxError::Graph(format!("input `{name}` {dims:?}: {why}"));
    match dims {
        [batch, c, h, w] => {
            let from_graph = match (c, h, w) {
                (Some(c), Some(h), Some(w)) => Some([*c, *h, *w]),
                _ => None,
            };
            let image = match (from_graph, given) {
                (Some(g), Some(u)) if g != u => {
                    return Err(err(format!(
                        "the graph says {g:?}, the input shape given {u:?}"
                    )))
                }
                (_, Some(u)) => u,
                (Some(g), None) => g,
                (None, None) => {
                    return Err(err(
                        "symbolic image dimensions: give the input shape (C,H,W)".into(),
                    ))
                }
            };
            Ok((image, *batch, false))
        }
        [batch, f] => {
            let image = match (given, f) {
                (Some(u), _) => u,
                (None, Some(784)) => [1, 28, 28],
                (None, _) => {
                    return Err(err(
                        "a flat input: give the image shape (C,H,W) it flattens".into(),
                    ))
                }
            };
            if let Some(f) = f {
                let n = image.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
                if n != Some(*f) {
                    return Err(err(format!("{image:?} is not {f} features")));
                }
            }
            Ok((image, *batch, true))
        }
        _ => Err(err(
            "ppml models take [N, C, H, W] images or flat [N, F] vectors".into(),
        )),
    }
}

/// The normalisation and a note on where it came from: the options, else the metadata, else
/// `[0, 1]` pixels for a model that normalises its input itself, else MNIST's statistics; then
/// the model's own scalar `a x + b` on its input, folded in.
fn normalization(
    proto: &ModelProto,
    opts: &ImportOptions,
    (a, b): (f64, f64),
) -> Result<(Normalization, String)> {
    let (base, source) = base_normalization(proto, opts, (a, b) != (1.0, 0.0))?;
    if (a, b) == (1.0, 0.0) {
        return Ok((
            base,
            format!(
                "normalisation mean {} std {} ({source})",
                base.mean, base.std
            ),
        ));
    }
    // a ((p - mean) / std) + b = (p - (mean - b std / a)) / (std / a)
    let (mean, std) = (f64::from(base.mean), f64::from(base.std));
    let n = Normalization {
        mean: (mean - b * std / a) as f32,
        std: (std / a) as f32,
    };
    if !(n.mean.is_finite() && n.std.is_finite() && n.std != 0.0) {
        return Err(OnnxError::Graph(format!(
            "the model computes {a} x + {b} on its input, which no normalisation expresses"
        )));
    }
    Ok((
        n,
        format!(
            "normalisation mean {} std {} ({source}, then the model's own {a} x + {b} on its \
             input)",
            n.mean, n.std
        ),
    ))
}

/// The client's normalisation before the model's own input operations, and its source.
fn base_normalization(
    proto: &ModelProto,
    opts: &ImportOptions,
    self_normalising: bool,
) -> Result<(Normalization, &'static str)> {
    if let Some(n) = opts.normalization {
        return Ok((n, "given"));
    }
    let meta = |key: &str| -> Result<Option<f32>> {
        match proto.metadata_props.iter().find(|p| p.key == key) {
            None => Ok(None),
            Some(p) => p
                .value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    OnnxError::Graph(format!("metadata {key}={:?} is not a number", p.value))
                }),
        }
    };
    let default = Normalization::default();
    match (meta("ppml.mean")?, meta("ppml.std")?) {
        (None, None) if self_normalising => Ok((
            Normalization {
                mean: 0.0,
                std: 1.0,
            },
            "[0, 1] pixels: the model normalises its input itself",
        )),
        (None, None) => Ok((default, "MNIST's; the model does not say")),
        (mean, std) => {
            let n = Normalization {
                mean: mean.unwrap_or(default.mean),
                std: std.unwrap_or(default.std),
            };
            if n.std == 0.0 {
                return Err(OnnxError::Graph("metadata ppml.std is 0".into()));
            }
            Ok((n, "model metadata"))
        }
    }
}
