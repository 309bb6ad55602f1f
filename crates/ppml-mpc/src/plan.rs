//! The public evaluation plan of a model: its layers with their geometry, as every party sees
//! them (architecture and shapes are public; weights are not).

use ppml_nn::model::{Layer, Shape};
use ppml_nn::{Model, Tensor};

use crate::error::{MpcError, Result};
use crate::linalg::{ConvGeom, PoolGeom};
use crate::ring::FixedPoint;

/// One step of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Convolution (weights index into the model's layers).
    Conv { layer: usize, g: ConvGeom },
    /// Fully connected layer.
    Linear {
        layer: usize,
        inp: usize,
        out: usize,
    },
    /// `max(x, 0)` on `len` values per image.
    Relu { len: usize },
    /// `x^2` on `len` values per image.
    Square { len: usize },
    /// Max pooling.
    MaxPool(PoolGeom),
    /// Average pooling.
    AvgPool(PoolGeom),
}

/// The steps of `model`, with `relu` moved after a directly following max-pool (the two
/// commute, and pooling first compares four times fewer values).
pub(crate) fn plan(model: &Model) -> Result<(Vec<Step>, usize, usize)> {
    let shapes = model.shapes()?;
    let mut shape = model.input_shape();
    let mut steps = Vec::with_capacity(model.layers.len());
    for (i, (layer, &next)) in model.layers.iter().zip(&shapes).enumerate() {
        let step = match (layer, shape, next) {
            (Layer::Conv2d(c), Shape::Chw(cin, h, w), Shape::Chw(cout, oh, ow)) => {
                Some(Step::Conv {
                    layer: i,
                    g: ConvGeom {
                        cin,
                        cout,
                        k: c.kernel,
                        stride: c.stride,
                        pad: c.padding,
                        h,
                        w,
                        oh,
                        ow,
                    },
                })
            }
            (Layer::Linear(l), _, _) => Some(Step::Linear {
                layer: i,
                inp: l.in_features,
                out: l.out_features,
            }),
            (Layer::Relu, s, _) => Some(Step::Relu { len: s.len() }),
            (Layer::Square, s, _) => Some(Step::Square { len: s.len() }),
            (
                Layer::MaxPool2d(p) | Layer::AvgPool2d(p),
                Shape::Chw(c, h, w),
                Shape::Chw(_, oh, ow),
            ) => {
                let g = PoolGeom {
                    c,
                    h,
                    w,
                    k: p.kernel,
                    stride: p.stride,
                    oh,
                    ow,
                };
                Some(if matches!(layer, Layer::MaxPool2d(_)) {
                    Step::MaxPool(g)
                } else {
                    Step::AvgPool(g)
                })
            }
            _ => None, // Flatten: the layout is already channels-major.
        };
        if let Some(step) = step {
            match (steps.last().copied(), step) {
                (Some(Step::Relu { .. }), Step::MaxPool(g)) => {
                    steps.pop();
                    steps.push(Step::MaxPool(g));
                    steps.push(Step::Relu { len: g.out_len() });
                }
                _ => steps.push(step),
            }
        }
        shape = next;
    }
    let classes = shapes.last().map_or(0, Shape::len);
    Ok((steps, model.input_shape().len(), classes))
}

/// The weights of a linear step, encoded: `(weight, bias)` with the weight transposed to
/// `[in, out]` at `f` fractional bits and the bias at `2f`.
pub(crate) fn encode_linear(model: &Model, layer: usize, fp: &FixedPoint) -> (Vec<u64>, Vec<u64>) {
    match model.layers.get(layer) {
        Some(Layer::Linear(l)) => {
            let mut wt = vec![0u64; l.in_features * l.out_features];
            for o in 0..l.out_features {
                for i in 0..l.in_features {
                    wt[i * l.out_features + o] = fp.encode(l.weight[o * l.in_features + i]);
                }
            }
            (wt, l.bias.iter().map(|&b| fp.encode_double(b)).collect())
        }
        _ => (Vec::new(), Vec::new()),
    }
}

/// The weights of a convolution step, encoded: `([out, patch] at f bits, bias at 2f bits)`.
pub(crate) fn encode_conv(model: &Model, layer: usize, fp: &FixedPoint) -> (Vec<u64>, Vec<u64>) {
    match model.layers.get(layer) {
        Some(Layer::Conv2d(c)) => (
            c.weight.iter().map(|&w| fp.encode(w)).collect(),
            c.bias.iter().map(|&b| fp.encode_double(b)).collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    }
}

/// The client's last step: adds up the parties' output shares (each of `n * classes` words) and
/// decodes the logits `[n, classes]`.
pub(crate) fn decode_output(
    shares: &[Vec<u64>],
    n: usize,
    classes: usize,
    fp: &FixedPoint,
) -> Result<Tensor> {
    let mut y = vec![0u64; n * classes];
    for share in shares {
        if share.len() != y.len() {
            return Err(MpcError::Malformed {
                party: crate::topology::CLIENT_ID,
                peer: 0,
                expected: y.len(),
                got: share.len(),
            });
        }
        crate::ring::add_assign(&mut y, share);
    }
    Ok(Tensor::new(
        vec![n, classes],
        y.iter().map(|&v| fp.decode(v)).collect(),
    )?)
}

/// Checks a batch against the model input and encodes it.
pub(crate) fn encode_input(
    images: &Tensor,
    in_len: usize,
    input: &[usize],
    fp: &FixedPoint,
) -> Result<Vec<u64>> {
    if images.shape().len() != 4 || images.shape()[1..] != *input || images.item_len() != in_len {
        return Err(MpcError::InputShape {
            got: images.shape().to_vec(),
            expected: input.to_vec(),
        });
    }
    Ok(images.data().iter().map(|&v| fp.encode(v)).collect())
}

/// Adds a per-channel bias to `[n, channels, positions]` data.
pub(crate) fn add_bias_channels(z: &mut [u64], bias: &[u64], positions: usize) {
    let per = bias.len() * positions;
    if per == 0 {
        return;
    }
    for img in z.chunks_mut(per) {
        for (plane, b) in img.chunks_mut(positions).zip(bias) {
            plane.iter_mut().for_each(|v| *v = v.wrapping_add(*b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet_plan_pools_before_relu() {
        let m = ppml_nn::zoo::architecture("lenet").expect("zoo");
        let (steps, inl, classes) = plan(&m).expect("plan");
        assert_eq!((inl, classes), (784, 10));
        assert!(matches!(steps[1], Step::MaxPool(_)));
        assert_eq!(steps[2], Step::Relu { len: 20 * 12 * 12 });
        assert_eq!(steps.len(), 9);
    }
}
