//! The model description: an ordered list of layers with shapes and weights.
//!
//! This is the one representation every backend consumes. Tensors are laid out as in PyTorch:
//! activations `[channels, height, width]` per image, convolution weights
//! `[out_channels, in_channels, kernel, kernel]`, linear weights `[out_features, in_features]`,
//! and [`Layer::Flatten`] reads channels-major (`c, h, w`).

use serde::{Deserialize, Serialize};

use crate::{NnError, Result};

/// The shape of one image's activations between two layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Feature maps: channels, height, width.
    Chw(usize, usize, usize),
    /// A flat vector of features.
    Flat(usize),
}

impl Shape {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Chw(c, h, w) => c * h * w,
            Shape::Flat(n) => n,
        }
    }

    /// True for a shape with no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dimensions as a slice-friendly vector.
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Chw(c, h, w) => vec![c, h, w],
            Shape::Flat(n) => vec![n],
        }
    }
}

/// A 2-D convolution with square kernels, equal stride and zero padding on every side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// `[out_channels, in_channels, kernel, kernel]`.
    #[serde(skip)]
    pub weight: Vec<f32>,
    /// `[out_channels]`.
    #[serde(skip)]
    pub bias: Vec<f32>,
}

impl Conv2d {
    /// Output height and width for an input of `h x w`, or `None` if the kernel does not fit.
    pub fn output_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (hp, wp) = (h + 2 * self.padding, w + 2 * self.padding);
        if self.stride == 0 || self.kernel == 0 || hp < self.kernel || wp < self.kernel {
            return None;
        }
        Some((
            (hp - self.kernel) / self.stride + 1,
            (wp - self.kernel) / self.stride + 1,
        ))
    }

    /// Elements in one output channel's filter (`in_channels * kernel^2`).
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }
}

/// A fully connected layer `y = W x + b`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// `[out_features, in_features]`.
    #[serde(skip)]
    pub weight: Vec<f32>,
    /// `[out_features]`.
    #[serde(skip)]
    pub bias: Vec<f32>,
}

/// A pooling window (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    /// Window height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
}

impl Pool2d {
    /// Output height and width for an input of `h x w`, or `None` if the window does not fit.
    pub fn output_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        if self.stride == 0 || self.kernel == 0 || h < self.kernel || w < self.kernel {
            return None;
        }
        Some((
            (h - self.kernel) / self.stride + 1,
            (w - self.kernel) / self.stride + 1,
        ))
    }
}

/// One layer of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Layer {
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// Fully connected layer.
    Linear(Linear),
    /// `max(x, 0)`.
    Relu,
    /// `x * x`, the HE-friendly activation.
    Square,
    /// Max pooling.
    MaxPool2d(Pool2d),
    /// Average pooling.
    AvgPool2d(Pool2d),
    /// `[c, h, w]` to `[c * h * w]`, channels-major.
    Flatten,
}

impl Layer {
    /// A short human name, e.g. `conv2d`.
    pub fn op_name(&self) -> &'static str {
        match self {
            Layer::Conv2d(_) => "conv2d",
            Layer::Linear(_) => "linear",
            Layer::Relu => "relu",
            Layer::Square => "square",
            Layer::MaxPool2d(_) => "max_pool2d",
            Layer::AvgPool2d(_) => "avg_pool2d",
            Layer::Flatten => "flatten",
        }
    }

    /// The shape this layer produces from `input`, or why it cannot take it.
    pub fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match (self, input) {
            (Layer::Conv2d(c), Shape::Chw(ch, h, w)) => {
                if ch != c.in_channels {
                    return Err(format!("expects {} channels, gets {ch}", c.in_channels));
                }
                let (oh, ow) = c
                    .output_hw(h, w)
                    .ok_or_else(|| format!("kernel {} does not fit {h}x{w}", c.kernel))?;
                Ok(Shape::Chw(c.out_channels, oh, ow))
            }
            (Layer::Linear(l), Shape::Flat(n)) => {
                if n != l.in_features {
                    return Err(format!("expects {} features, gets {n}", l.in_features));
                }
                Ok(Shape::Flat(l.out_features))
            }
            (Layer::MaxPool2d(p) | Layer::AvgPool2d(p), Shape::Chw(c, h, w)) => {
                let (oh, ow) = p
                    .output_hw(h, w)
                    .ok_or_else(|| format!("window {} does not fit {h}x{w}", p.kernel))?;
                Ok(Shape::Chw(c, oh, ow))
            }
            (Layer::Relu | Layer::Square, s) => Ok(s),
            (Layer::Flatten, s) => Ok(Shape::Flat(s.len())),
            (_, s) => Err(format!("cannot take an input of shape {s:?}")),
        }
    }

    /// The named parameter tensors of this layer with their shapes: `(suffix, shape, data)`.
    pub fn params(&self) -> Vec<(&'static str, Vec<usize>, &[f32])> {
        match self {
            Layer::Conv2d(c) => vec![
                (
                    "weight",
                    vec![c.out_channels, c.in_channels, c.kernel, c.kernel],
                    &c.weight,
                ),
                ("bias", vec![c.out_channels], &c.bias),
            ],
            Layer::Linear(l) => vec![
                ("weight", vec![l.out_features, l.in_features], &l.weight),
                ("bias", vec![l.out_features], &l.bias),
            ],
            _ => vec![],
        }
    }

    /// Mutable access to the parameter tensors, in the order of [`Layer::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Vec<f32>> {
        match self {
            Layer::Conv2d(c) => vec![&mut c.weight, &mut c.bias],
            Layer::Linear(l) => vec![&mut l.weight, &mut l.bias],
            _ => vec![],
        }
    }
}

/// How raw pixels become model inputs: `((pixel / 255) - mean) / std`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Subtracted after scaling to `[0, 1]`.
    pub mean: f32,
    /// Divisor after subtracting the mean.
    pub std: f32,
}

impl Default for Normalization {
    /// The usual MNIST statistics.
    fn default() -> Self {
        Self {
            mean: 0.1307,
            std: 0.3081,
        }
    }
}

impl Normalization {
    /// A user's override of the normalisation: `None` when neither part is given (the model's
    /// own stands), else MNIST's statistics with the given parts replaced.
    ///
    /// # Errors
    /// [`NnError::InvalidModel`] unless both parts are finite and `std` is non-zero.
    pub fn overridden(mean: Option<f32>, std: Option<f32>) -> Result<Option<Self>> {
        if mean.is_none() && std.is_none() {
            return Ok(None);
        }
        let default = Self::default();
        let n = Self {
            mean: mean.unwrap_or(default.mean),
            std: std.unwrap_or(default.std),
        };
        if !(n.mean.is_finite() && n.std.is_finite() && n.std != 0.0) {
            return Err(NnError::InvalidModel(
                "the normalisation's mean and std must be finite, std non-zero".into(),
            ));
        }
        Ok(Some(n))
    }
}

/// A neural network: its input shape, input normalisation and layers (with weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The model's name (a zoo name or the file stem).
    pub name: String,
    /// Shape of one input image, `[channels, height, width]`.
    pub input: [usize; 3],
    /// Pixel normalisation applied by the client before inference.
    pub normalization: Normalization,
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

impl Model {
    /// The input shape.
    pub fn input_shape(&self) -> Shape {
        let [c, h, w] = self.input;
        Shape::Chw(c, h, w)
    }

    /// The shape after every layer (`shapes[i]` is layer `i`'s output), checking that the layers
    /// chain, that weights have the sizes their layers declare and that the output is flat.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let mut shape = self.input_shape();
        if shape.is_empty() {
            return Err(NnError::InvalidModel("empty input shape".into()));
        }
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            shape = layer.output_shape(shape).map_err(|e| {
                NnError::InvalidModel(format!("layer {i} ({}): {e}", layer.op_name()))
            })?;
            for (name, dims, data) in layer.params() {
                let want: usize = dims.iter().product();
                if data.len() != want {
                    return Err(NnError::InvalidModel(format!(
                        "layer {i} ({}): {name} has {} values, shape {dims:?} needs {want}",
                        layer.op_name(),
                        data.len()
                    )));
                }
            }
            out.push(shape);
        }
        match out.last() {
            Some(Shape::Flat(_)) => Ok(out),
            Some(s) => Err(NnError::InvalidModel(format!(
                "output must be a flat vector of logits, is {s:?}"
            ))),
            None => Err(NnError::InvalidModel(
                "a model needs at least one layer".into(),
            )),
        }
    }

    /// Number of output classes (logits).
    pub fn classes(&self) -> Result<usize> {
        Ok(self.shapes()?.last().map_or(0, Shape::len))
    }

    /// Number of trainable parameters.
    pub fn param_count(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.params())
            .map(|(_, _, d)| d.len())
            .sum()
    }

    /// True when every activation is a polynomial (no ReLU or max pooling), as HE requires.
    pub fn is_polynomial(&self) -> bool {
        !self
            .layers
            .iter()
            .any(|l| matches!(l, Layer::Relu | Layer::MaxPool2d(_)))
    }

    /// Normalises raw `u8` pixels of one image into model inputs.
    pub fn preprocess_into(&self, pixels: &[u8], out: &mut Vec<f32>) {
        let Normalization { mean, std } = self.normalization;
        out.extend(pixels.iter().map(|&p| (f32::from(p) / 255.0 - mean) / std));
    }

    /// One line per layer with its output shape, for `--help`-style summaries.
    pub fn summary(&self) -> Result<String> {
        let shapes = self.shapes()?;
        let mut s = format!(
            "{} (input {:?}, {} parameters)\n",
            self.name,
            self.input,
            self.param_count()
        );
        for (layer, shape) in self.layers.iter().zip(&shapes) {
            let detail = match layer {
                Layer::Conv2d(c) => format!(
                    "{}->{} {k}x{k} stride {} pad {}",
                    c.in_channels,
                    c.out_channels,
                    c.stride,
                    c.padding,
                    k = c.kernel
                ),
                Layer::Linear(l) => format!("{}->{}", l.in_features, l.out_features),
                Layer::MaxPool2d(p) | Layer::AvgPool2d(p) => {
                    format!("{k}x{k} stride {}", p.stride, k = p.kernel)
                }
                _ => String::new(),
            };
            s.push_str(&format!(
                "  {:<11} {:<26} -> {:?}\n",
                layer.op_name(),
                detail,
                shape.dims()
            ));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normalisation_override_replaces_only_the_parts_given() {
        assert_eq!(Normalization::overridden(None, None).ok(), Some(None));
        let mnist = Normalization::default();
        let n = Normalization::overridden(Some(0.5), None).ok().flatten();
        assert_eq!(
            n,
            Some(Normalization {
                mean: 0.5,
                std: mnist.std
            })
        );
        for (mean, std) in [
            (Some(f32::NAN), None),
            (None, Some(0.0)),
            (None, Some(f32::INFINITY)),
        ] {
            assert!(matches!(
                Normalization::overridden(mean, std),
                Err(NnError::InvalidModel(_))
            ));
        }
    }
}
