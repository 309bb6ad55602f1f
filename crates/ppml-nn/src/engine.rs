//! The f32 reference engine: plain inference over a batch.
//!
//! Every convolution and every dense layer is one matrix product over many images, computed by
//! the `gemm` crate's kernels through [`ppml_gemm`] ([`ops`] has the layer computations). The
//! batch goes through the model in two stages, each split across the cores (rayon):
//! - the feature-map layers (up to the last convolution or pooling) run in passes of a few
//!   images, as many as keep one pass's im2col patches within `PASS_FLOATS`, so that the
//!   patches a product reads are still in cache (laid out for a whole batch of 100 `lenet`
//!   images, the second convolution's patches alone are 12.8 MB); feature maps inside a pass are
//!   kept channel-major, `[c, n, h, w]`, so that a convolution is
//!   `W [out, c*k*k] x im2col [c*k*k, n*oh*ow]`, whose result is already `[out, n, oh, ow]`;
//!   a ReLU followed by a max-pool runs as one pass, the pool flooring its maxima at zero;
//! - the dense layers run over each core's share of the batch at once (their weights are read once
//!   per share), and keep their outputs channel-major too, `[features, n]`, the layout in which
//!   gemm reads the row-major weights without repacking them.
//!
//! With one pass or one share, the stage runs on the calling thread and gemm may split its larger
//! products across the pool. A stage with less work than `PARALLEL_MACS` (one image; `mlp` at
//! batch 100) runs wholly on the calling thread: waking and joining another core costs more than
//! it saves there (measured with `scripts/plain-vs-torch.sh`: `mlp` at batch 100 and `lenet` on
//! one image ran slower on two threads than on one). The results equal a layer-by-layer
//! evaluation within f32 rounding (summation order).

mod ops;

use std::borrow::Cow;

use ppml_gemm::Threads;
use rayon::prelude::*;

pub use ops::im2col;
use ops::{conv2d, linear, max_pool, pool, Order};

use crate::model::{Layer, Shape};
use crate::{Model, NnError, Result, Tensor};

/// At most this many floats (2 MiB) of im2col patches per pass of the feature-map layers: what
/// stays in one core's L2 cache on the development machine, with room for the feature maps.
const PASS_FLOATS: usize = 1 << 19;

/// Multiply-adds below which a stage runs on the calling thread alone (about half a millisecond
/// of one core's gemm): between `mlp` at batch 100 (12 million, faster on one thread) and `lenet`
/// at batch 100 (230 million, 1.9x faster on two).
const PARALLEL_MACS: usize = 1 << 25;

/// Runs `model` on a batch of preprocessed images `[n, c, h, w]`, returning logits `[n, classes]`.
pub fn forward(model: &Model, images: &Tensor) -> Result<Tensor> {
    forward_splitting_above(model, images, PARALLEL_MACS)
}

/// [`forward`], splitting a stage across the cores when its multiply-adds reach `parallel_macs`
/// (tests force the parallel path on small batches with 0).
fn forward_splitting_above(model: &Model, images: &Tensor, parallel_macs: usize) -> Result<Tensor> {
    let shapes = model.shapes()?;
    let input = model.input_shape();
    if images.shape().len() != 4 || images.shape()[1..] != input.dims()[..] {
        return Err(NnError::InputShape {
            got: images.shape().to_vec(),
            expected: input.dims(),
        });
    }
    let n = images.batch();
    let cores = rayon::current_num_threads().max(1);
    let maps_end = model
        .layers
        .iter()
        .rposition(|l| {
            matches!(
                l,
                Layer::Conv2d(_) | Layer::MaxPool2d(_) | Layer::AvgPool2d(_)
            )
        })
        .map_or(0, |i| i + 1);
    let (map_layers, dense_layers) = model.layers.split_at(maps_end);
    let (map_shapes, dense_shapes) = shapes.split_at(maps_end);
    let maps_out = map_shapes.last().copied().unwrap_or(input);
    let out_shape = shapes.last().copied().unwrap_or(input);

    let features = if map_layers.is_empty() {
        Cow::Borrowed(images.data())
    } else {
        let per_pass = images_per_pass(map_layers, input, map_shapes);
        Cow::Owned(in_parts(
            images.data(),
            n,
            input,
            maps_out,
            per_pass,
            cores_for(map_layers, input, map_shapes, n, cores, parallel_macs),
            |x, m, threads| run(map_layers, input, map_shapes, x, m, threads),
        )?)
    };
    let out = in_parts(
        &features,
        n,
        maps_out,
        out_shape,
        n,
        cores_for(
            dense_layers,
            maps_out,
            dense_shapes,
            n,
            cores,
            parallel_macs,
        ),
        |x, m, threads| run(dense_layers, maps_out, dense_shapes, x, m, threads),
    )?;
    Tensor::new(vec![n, out_shape.len()], out)
}

/// The cores a stage of `layers` (input `input`, output shapes `shapes`) on `n` images uses:
/// `cores`, or none besides the calling thread (0) if its multiply-adds are below
/// `parallel_macs`.
fn cores_for(
    layers: &[Layer],
    input: Shape,
    shapes: &[Shape],
    n: usize,
    cores: usize,
    parallel_macs: usize,
) -> usize {
    let inputs = std::iter::once(&input).chain(shapes);
    let per_image: usize = layers
        .iter()
        .zip(inputs.zip(shapes))
        .map(|(layer, (&shape, &next))| match layer {
            Layer::Conv2d(c) => c.patch_len() * next.len(),
            Layer::Linear(l) => l.in_features * l.out_features,
            _ => shape.len(),
        })
        .sum();
    if per_image.saturating_mul(n) < parallel_macs {
        0
    } else {
        cores
    }
}

/// How many images one pass of the feature-map `layers` takes so that the patches of each of its
/// convolutions fit in `PASS_FLOATS` (at least one).
fn images_per_pass(layers: &[Layer], input: Shape, shapes: &[Shape]) -> usize {
    let inputs = std::iter::once(&input).chain(shapes);
    let most = layers
        .iter()
        .zip(inputs.zip(shapes))
        .map(|(layer, (&shape, &next))| match (layer, next) {
            (Layer::Conv2d(c), Shape::Chw(_, oh, ow)) => c.patch_len() * oh * ow,
            _ => shape.len().max(next.len()),
        })
        .max()
        .unwrap_or(1);
    (PASS_FLOATS / most.max(1)).max(1)
}

/// Runs `f` on the `n` item-major items of shape `from` in `x`, in parts of at most `at_most`
/// items, as many parts as keep the `cores` equally busy (a multiple of `cores`, or all items at
/// once on this thread if that is one part), and gathers its item-major results of shape `to`.
/// With `cores == 0`, all items at once on this thread alone (gemm included).
fn in_parts(
    x: &[f32],
    n: usize,
    from: Shape,
    to: Shape,
    at_most: usize,
    cores: usize,
    f: impl Fn(&[f32], usize, Threads) -> Result<Vec<f32>> + Sync,
) -> Result<Vec<f32>> {
    let (in_len, out_len) = (from.len(), to.len());
    if cores == 0 {
        return f(x, n, Threads::Current);
    }
    let parts = n.div_ceil(at_most.max(1)).div_ceil(cores) * cores;
    let per_part = n.div_ceil(parts.max(1)).max(1);
    if per_part >= n || in_len == 0 || out_len == 0 {
        return f(x, n, Threads::Pool);
    }
    let mut out = vec![0.0f32; n * out_len];
    x.par_chunks(per_part * in_len)
        .zip(out.par_chunks_mut(per_part * out_len))
        .try_for_each(|(x, y)| {
            y.copy_from_slice(&f(x, x.len() / in_len, Threads::Current)?);
            Ok::<_, NnError>(())
        })?;
    Ok(out)
}

/// Runs `layers` (whose output shapes are `shapes`) on `n` items of shape `shape` stored
/// item-major in `x`; returns them item-major.
fn run(
    layers: &[Layer],
    mut shape: Shape,
    shapes: &[Shape],
    x: &[f32],
    n: usize,
    threads: Threads,
) -> Result<Vec<f32>> {
    let mut act = Activations {
        data: Cow::Borrowed(x),
        order: Order::ItemMajor,
    };
    let mut steps = layers.iter().zip(shapes).peekable();
    while let Some((layer, &next)) = steps.next() {
        // A ReLU followed by a max-pool runs as one max-pool that floors its maxima at zero.
        let pooled = match (layer, steps.peek(), shape) {
            (Layer::Relu, Some(&(Layer::MaxPool2d(p), &after)), Shape::Chw(c, h, w)) => {
                Some((max_pool(p, &act.data, c * n, h, w, 0.0), after))
            }
            _ => None,
        };
        if let Some((data, after)) = pooled {
            steps.next();
            act.data = Cow::Owned(data);
            shape = after;
            continue;
        }
        act = step(layer, shape, act, n, threads)?;
        shape = next;
    }
    Ok(act.into_item_major(shape, n).into_owned())
}

/// Applies one layer to `n` items of shape `shape`, stored item-major; returns them item-major.
pub fn apply(layer: &Layer, shape: Shape, x: &[f32], n: usize) -> Result<Vec<f32>> {
    if Some(x.len()) != n.checked_mul(shape.len()) {
        return Err(NnError::InputShape {
            got: vec![x.len()],
            expected: vec![n, shape.len()],
        });
    }
    for (name, dims, data) in layer.params() {
        let want: usize = dims.iter().product();
        if data.len() != want {
            return Err(NnError::InvalidModel(format!(
                "{}: {name} has {} values, shape {dims:?} needs {want}",
                layer.op_name(),
                data.len()
            )));
        }
    }
    let out_shape = layer
        .output_shape(shape)
        .map_err(|e| NnError::InvalidModel(format!("{}: {e}", layer.op_name())))?;
    run(
        std::slice::from_ref(layer),
        shape,
        &[out_shape],
        x,
        n,
        Threads::Current,
    )
}

/// The activations of `n` items, in either [`Order`] (the same when the channels or `n` are 1).
struct Activations<'a> {
    data: Cow<'a, [f32]>,
    order: Order,
}

impl<'a> Activations<'a> {
    /// The data channel-major, for items of shape `shape`.
    fn into_channel_major(self, shape: Shape, n: usize) -> Cow<'a, [f32]> {
        let (channels, inner) = channels_and_inner(shape);
        match self.order {
            Order::ItemMajor => swap_outer(self.data, n, channels, inner),
            Order::ChannelMajor => self.data,
        }
    }

    /// The data item-major, for items of shape `shape`.
    fn into_item_major(self, shape: Shape, n: usize) -> Cow<'a, [f32]> {
        let (channels, inner) = channels_and_inner(shape);
        match self.order {
            Order::ChannelMajor => swap_outer(self.data, channels, n, inner),
            Order::ItemMajor => self.data,
        }
    }
}

/// `(channels, values per channel)`: a flat item's features are channels of one value each.
fn channels_and_inner(shape: Shape) -> (usize, usize) {
    match shape {
        Shape::Chw(c, h, w) => (c, h * w),
        Shape::Flat(f) => (f, 1),
    }
}

/// `[a, b, inner]` to `[b, a, inner]`.
fn swap_outer(x: Cow<'_, [f32]>, a: usize, b: usize, inner: usize) -> Cow<'_, [f32]> {
    if a <= 1 || b <= 1 {
        return x;
    }
    let mut out = vec![0.0f32; x.len()];
    for (i, block) in x.chunks_exact(b * inner).enumerate() {
        for (j, run) in block.chunks_exact(inner).enumerate() {
            out[(j * a + i) * inner..][..inner].copy_from_slice(run);
        }
    }
    Cow::Owned(out)
}

/// Applies one layer to the activations of `n` items of shape `shape`.
fn step<'a>(
    layer: &Layer,
    shape: Shape,
    mut act: Activations<'a>,
    n: usize,
    threads: Threads,
) -> Result<Activations<'a>> {
    match (layer, shape) {
        (Layer::Conv2d(c), Shape::Chw(_, h, w)) => {
            let x = act.into_channel_major(shape, n);
            Ok(Activations {
                data: Cow::Owned(conv2d(c, &x, n, h, w, threads)?),
                order: Order::ChannelMajor,
            })
        }
        (Layer::Linear(l), _) => Ok(Activations {
            data: Cow::Owned(linear(l, &act.data, n, act.order, threads)?),
            order: Order::ChannelMajor,
        }),
        (Layer::Relu, _) => {
            act.data.to_mut().iter_mut().for_each(|v| *v = v.max(0.0));
            Ok(act)
        }
        (Layer::Square, _) => {
            act.data.to_mut().iter_mut().for_each(|v| *v *= *v);
            Ok(act)
        }
        (Layer::MaxPool2d(p), Shape::Chw(c, h, w)) => Ok(Activations {
            data: Cow::Owned(max_pool(p, &act.data, c * n, h, w, f32::NEG_INFINITY)),
            order: act.order,
        }),
        (Layer::AvgPool2d(p), Shape::Chw(c, h, w)) => {
            let area = (p.kernel * p.kernel) as f32;
            Ok(Activations {
                data: Cow::Owned(pool(
                    p,
                    &act.data,
                    c * n,
                    h,
                    w,
                    0.0,
                    |s, v| s + v,
                    |s| s / area,
                )),
                order: act.order,
            })
        }
        (Layer::Flatten, _) => Ok(Activations {
            data: act.into_item_major(shape, n),
            order: Order::ItemMajor,
        }),
        // `Model::shapes` rejects every other combination before we get here.
        (layer, shape) => Err(NnError::InvalidModel(format!(
            "{} cannot take an input of shape {shape:?}",
            layer.op_name()
        ))),
    }
}

#[cfg(test)]
mod tests;
