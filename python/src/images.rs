//! NumPy arrays in and out: images become the `[n, c, h, w]` tensor a model takes, logits go back
//! as a `float32` array.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use ppml_nn::{Model, Tensor};
use pyo3::prelude::*;

use crate::error::Failure;

/// Images as the caller gave them, copied out of NumPy so they can cross to a thread without
/// the GIL: raw `uint8` pixels, or model inputs already normalised.
#[derive(Clone, Debug)]
pub enum Images {
    /// Pixels 0..=255, normalised with the model's own normalisation.
    Pixels {
        /// The array's shape.
        shape: Vec<usize>,
        /// Its values, row-major.
        data: Vec<u8>,
    },
    /// Model inputs (`float32` or `float64`, cast to `f32`).
    Inputs {
        /// The array's shape.
        shape: Vec<usize>,
        /// Its values, row-major.
        data: Vec<f32>,
    },
}

impl Images {
    /// Copies a NumPy array of `uint8`, `float32` or `float64`; anything else is an input error.
    pub fn extract(obj: &Bound<'_, PyAny>) -> Result<Self, Failure> {
        if let Ok(a) = obj.cast::<PyArrayDyn<u8>>() {
            let a = a.readonly();
            return Ok(Images::Pixels {
                shape: a.shape().to_vec(),
                data: a.as_array().iter().copied().collect(),
            });
        }
        if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
            let a = a.readonly();
            return Ok(Images::Inputs {
                shape: a.shape().to_vec(),
                data: a.as_array().iter().copied().collect(),
            });
        }
        if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
            let a = a.readonly();
            return Ok(Images::Inputs {
                shape: a.shape().to_vec(),
                // f32: the precision every backend computes in.
                data: a.as_array().iter().map(|&v| v as f32).collect(),
            });
        }
        let what = match obj.cast::<numpy::PyUntypedArray>() {
            Ok(a) => format!("a NumPy array of dtype {}", a.dtype()),
            Err(_) => format!(
                "a {}",
                obj.get_type()
                    .name()
                    .map_or_else(|_| "?".to_string(), |n| n.to_string())
            ),
        };
        Err(Failure::input(format!(
            "images must be a NumPy array of uint8 pixels (0-255) or float32/float64 model \
             inputs, got {what}"
        )))
    }

    /// The `[n, c, h, w]` tensor for `model`: `uint8` pixels are normalised as the model says,
    /// float inputs are taken as they are (and must be finite). A single image may leave out
    /// `n`, and a one-channel image `c`.
    pub fn into_tensor(self, model: &Model) -> Result<Tensor, Failure> {
        let [c, h, w] = model.input;
        let shape = match &self {
            Images::Pixels { shape, .. } | Images::Inputs { shape, .. } => shape,
        };
        let n = match *shape.as_slice() {
            [n, cc, hh, ww] if [cc, hh, ww] == [c, h, w] => n,
            [n, hh, ww] if c == 1 && [hh, ww] == [h, w] => n,
            [hh, ww] if c == 1 && [hh, ww] == [h, w] => 1,
            _ => {
                return Err(Failure::input(format!(
                    "images of shape {shape:?}: model {} takes [n, {c}, {h}, {w}]{}",
                    model.name,
                    if c == 1 {
                        format!(" or [n, {h}, {w}]")
                    } else {
                        String::new()
                    }
                )))
            }
        };
        if n == 0 {
            return Err(Failure::input("no images: the batch is empty"));
        }
        let data = match self {
            Images::Pixels { data, .. } => {
                let mut x = Vec::with_capacity(data.len());
                for image in data.chunks_exact(c * h * w) {
                    model.preprocess_into(image, &mut x);
                }
                x
            }
            Images::Inputs { data, .. } => {
                if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                    return Err(Failure::input(format!(
                        "images hold a NaN or infinite value (element {i} of the flattened \
                         array)"
                    )));
                }
                data
            }
        };
        Tensor::new(vec![n, c, h, w], data).map_err(Failure::from)
    }
}

/// Logits `[n, classes]` as a `float32` NumPy array.
pub fn logits_array<'py>(
    py: Python<'py>,
    logits: Tensor,
) -> Result<Bound<'py, PyArray2<f32>>, Failure> {
    let rows = logits.batch();
    let cols = if rows == 0 { 0 } else { logits.item_len() };
    Array2::from_shape_vec((rows, cols), logits.into_data())
        .map(|a| a.into_pyarray(py))
        .map_err(|e| Failure::new(crate::error::Kind::Backend, format!("logits: {e}")))
}
