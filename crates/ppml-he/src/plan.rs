//! The compiler from a [`ppml_nn::Model`] to a CKKS evaluation plan: a short list of
//! [`Stage`]s where every run of consecutive linear layers (convolution, linear, flatten, and in
//! latency mode average pooling) is folded into one sparse affine map, so that each run costs
//! exactly one multiplicative level (lazy rescaling: one rescale per run).

use ppml_nn::model::{Conv2d, Linear, Pool2d};
use ppml_nn::{Layer, Model, Shape};

use crate::error::{HeError, Result};

/// A sparse affine map `y = M x + b`, `M` stored row by row as `(column, weight)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    /// Number of inputs (columns).
    pub inputs: usize,
    /// Row `r` of `M`: its non-zero entries.
    pub rows: Vec<Vec<(u32, f64)>>,
    /// The bias, one per row.
    pub bias: Vec<f64>,
}

impl Affine {
    /// Number of outputs (rows).
    pub fn outputs(&self) -> usize {
        self.rows.len()
    }

    /// Number of non-zero weights (the multiply-accumulates of throughput mode).
    pub fn nnz(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// `self ∘ inner`: the map `x -> self(inner(x))`.
    fn compose(&self, inner: &Affine) -> Affine {
        let mut acc = vec![0.0f64; inner.inputs];
        let mut touched = Vec::new();
        let rows = self
            .rows
            .iter()
            .map(|row| {
                for &(j, w) in row {
                    for &(k, v) in &inner.rows[j as usize] {
                        if acc[k as usize] == 0.0 {
                            touched.push(k);
                        }
                        acc[k as usize] += w * v;
                    }
                }
                touched.sort_unstable();
                touched.dedup();
                let out: Vec<(u32, f64)> = touched
                    .iter()
                    .map(|&k| (k, std::mem::take(&mut acc[k as usize])))
                    .filter(|&(_, w)| w != 0.0)
                    .collect();
                touched.clear();
                out
            })
            .collect();
        let bias = self
            .rows
            .iter()
            .zip(&self.bias)
            .map(|(row, b)| {
                b + row
                    .iter()
                    .map(|&(j, w)| w * inner.bias[j as usize])
                    .sum::<f64>()
            })
            .collect();
        Affine {
            inputs: inner.inputs,
            rows,
            bias,
        }
    }

    fn scale_weights(&mut self, factor: f64) {
        self.rows
            .iter_mut()
            .flatten()
            .for_each(|(_, w)| *w *= factor);
    }

    /// Applies the map to a plain vector.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().map(|&(j, w)| w * x[j as usize]).sum::<f64>())
            .collect()
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// An affine map evaluated with plaintext weights: consumes one level.
    Affine(Affine),
    /// A sum of inputs with unit weights and no bias (sum pooling, the average's `1/k^2` folded
    /// into the next affine stage): additions only, no level.
    Sum(Affine),
    /// Element-wise `x^2`: ciphertext multiply, relinearise, rescale; consumes one level.
    Square,
}

/// How the client lays out an image before encryption.
#[derive(Debug, Clone, PartialEq)]
pub enum InputLayout {
    /// The normalised pixels, channel-major.
    Pixels,
    /// The im2col patch matrix `[c*k*k, oh*ow]` of the first convolution (row-major), so that the
    /// convolution becomes a plaintext matrix-vector product on the client's vector.
    Im2col(Conv2d),
}

/// How the compiler treats average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolStrategy {
    /// A separate additions-only [`Stage::Sum`] (throughput mode: no level, few operations).
    SumStage,
    /// Folded into the neighbouring affine maps (latency mode: the matrix is applied anyway).
    Fold,
}

/// A compiled evaluation plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The model's name.
    pub model: String,
    /// `[c, h, w]` of the model input.
    pub image: [usize; 3],
    /// The client's input layout.
    pub layout: InputLayout,
    /// Length of the client's input vector (pixels or im2col entries).
    pub input_len: usize,
    /// Shape of the client's input vector: the image, or `[patch, oh, ow]` for im2col.
    pub input_shape: Shape,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// The shape of each stage's output.
    pub shapes: Vec<Shape>,
}

impl Plan {
    /// The input indices the first stage reads (the client encrypts only these).
    pub fn needed_inputs(&self) -> Vec<u32> {
        match self.stages.first() {
            Some(Stage::Affine(a) | Stage::Sum(a)) => {
                let mut used = vec![false; a.inputs];
                a.rows
                    .iter()
                    .flatten()
                    .for_each(|&(j, _)| used[j as usize] = true);
                (0..a.inputs as u32).filter(|&j| used[j as usize]).collect()
            }
            _ => (0..self.input_len as u32).collect(),
        }
    }

    /// Compiles `model`. `im2col` asks for an im2col input layout when the first layer is a
    /// convolution (latency mode).
    pub fn compile(model: &Model, pool: PoolStrategy, im2col: bool) -> Result<Self> {
        let shapes = model.shapes()?;
        let mut shape = model.input_shape();
        let mut stages = Vec::new();
        let mut stage_shapes = Vec::new();
        let mut input_shape = shape;
        let mut pending: Option<Affine> = None;
        let mut factor = 1.0f64; // pending scalar from sum pooling, absorbed by the next map
        let mut layout = InputLayout::Pixels;
        let mut input_len = shape.len();
        for (index, layer) in model.layers.iter().enumerate() {
            let out_shape = shapes[index];
            let map = match (layer, shape) {
                (Layer::Conv2d(c), Shape::Chw(_, h, w)) => {
                    if index == 0 && im2col {
                        layout = InputLayout::Im2col(c.clone());
                        let (oh, ow) = conv_hw(c, h, w)?;
                        input_len = c.patch_len() * oh * ow;
                        input_shape = Shape::Chw(c.patch_len(), oh, ow);
                        Some(conv_im2col_affine(c, oh * ow))
                    } else {
                        Some(conv_affine(c, h, w)?)
                    }
                }
                (Layer::Linear(l), _) => Some(linear_affine(l)),
                (Layer::AvgPool2d(p), Shape::Chw(c, h, w)) => {
                    let (oh, ow) = pool_hw(p, h, w)?;
                    let mut sum = sum_pool_affine(p, c, h, w, oh, ow);
                    match (pool, pending.is_some()) {
                        (PoolStrategy::Fold, _) | (PoolStrategy::SumStage, true) => {
                            sum.scale_weights(1.0 / (p.kernel * p.kernel) as f64);
                            Some(sum)
                        }
                        (PoolStrategy::SumStage, false) => {
                            factor /= (p.kernel * p.kernel) as f64;
                            stages.push(Stage::Sum(sum));
                            stage_shapes.push(out_shape);
                            None
                        }
                    }
                }
                (Layer::Flatten, _) => None,
                (Layer::Square, _) => {
                    if let Some(a) = pending.take() {
                        stages.push(Stage::Affine(a));
                        stage_shapes.push(shape);
                    } else {
                        factor *= factor;
                    }
                    stages.push(Stage::Square);
                    stage_shapes.push(shape);
                    None
                }
                (l, _) => {
                    return Err(HeError::NotPolynomial {
                        index,
                        op: l.op_name(),
                    });
                }
            };
            if let Some(mut map) = map {
                if factor != 1.0 {
                    map.scale_weights(factor);
                    factor = 1.0;
                }
                pending = Some(match pending.take() {
                    Some(inner) => map.compose(&inner),
                    None => map,
                });
            }
            shape = out_shape;
        }
        if factor != 1.0 && pending.is_none() {
            let n = shape.len();
            pending = Some(Affine {
                inputs: n,
                rows: (0..n).map(|r| vec![(r as u32, 1.0)]).collect(),
                bias: vec![0.0; n],
            });
        }
        if let Some(mut a) = pending {
            if factor != 1.0 {
                a.scale_weights(factor);
            }
            stages.push(Stage::Affine(a));
            stage_shapes.push(shape);
        }
        Ok(Plan {
            model: model.name.clone(),
            image: model.input,
            layout,
            input_len,
            input_shape,
            stages,
            shapes: stage_shapes,
        })
    }

    /// Folds the sum stage at `index` into the affine stage after it (`a ∘ sum`); returns
    /// whether it did (false when `index` is not a sum followed by an affine stage).
    pub fn fold_sum(&mut self, index: usize) -> bool {
        let folded = match (self.stages.get(index), self.stages.get(index + 1)) {
            (Some(Stage::Sum(s)), Some(Stage::Affine(a))) => a.compose(s),
            _ => return false,
        };
        self.stages[index + 1] = Stage::Affine(folded);
        self.stages.remove(index);
        self.shapes.remove(index);
        true
    }

    /// Multiplicative depth: levels the plan consumes.
    pub fn depth(&self) -> usize {
        self.stages
            .iter()
            .filter(|s| !matches!(s, Stage::Sum(_)))
            .count()
    }

    /// Number of outputs (logits).
    pub fn outputs(&self) -> usize {
        match self.stages.iter().rev().find_map(|s| match s {
            Stage::Affine(a) | Stage::Sum(a) => Some(a.outputs()),
            Stage::Square => None,
        }) {
            Some(n) => n,
            None => self.input_len,
        }
    }

    /// The client's input vector for one preprocessed image.
    pub fn layout_input(&self, image: &[f32]) -> Vec<f64> {
        match &self.layout {
            InputLayout::Pixels => image.iter().map(|&v| f64::from(v)).collect(),
            InputLayout::Im2col(c) => {
                let [_, h, w] = self.image;
                let (cols, _, _) = ppml_nn::engine::im2col(c, image, h, w);
                cols.into_iter().map(f64::from).collect()
            }
        }
    }

    /// Evaluates the plan in the clear in f64 (the compiler's own check).
    pub fn eval_plain(&self, input: &[f64]) -> Vec<f64> {
        let mut x = input.to_vec();
        for s in &self.stages {
            x = match s {
                Stage::Affine(a) | Stage::Sum(a) => a.apply(&x),
                Stage::Square => x.iter().map(|v| v * v).collect(),
            };
        }
        x
    }

    /// Total multiply-accumulates of the affine stages (throughput-mode cost).
    pub fn mac_count(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Affine(a) => a.nnz(),
                _ => 0,
            })
            .sum()
    }
}

fn conv_hw(c: &Conv2d, h: usize, w: usize) -> Result<(usize, usize)> {
    c.output_hw(h, w).ok_or_else(|| {
        HeError::Model(ppml_nn::NnError::InvalidModel(
            "convolution does not fit".into(),
        ))
    })
}

fn pool_hw(p: &Pool2d, h: usize, w: usize) -> Result<(usize, usize)> {
    p.output_hw(h, w).ok_or_else(|| {
        HeError::Model(ppml_nn::NnError::InvalidModel(
            "pooling does not fit".into(),
        ))
    })
}

fn conv_affine(c: &Conv2d, h: usize, w: usize) -> Result<Affine> {
    let (oh, ow) = conv_hw(c, h, w)?;
    let k = c.kernel;
    let pad = c.padding as isize;
    let mut rows = Vec::with_capacity(c.out_channels * oh * ow);
    let mut bias = Vec::with_capacity(rows.capacity());
    for co in 0..c.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut row = Vec::with_capacity(c.patch_len());
                for ci in 0..c.in_channels {
                    for ky in 0..k {
                        let iy = (oy * c.stride + ky) as isize - pad;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * c.stride + kx) as isize - pad;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let wv =
                                f64::from(c.weight[((co * c.in_channels + ci) * k + ky) * k + kx]);
                            if wv != 0.0 {
                                row.push((((ci * h + iy as usize) * w + ix as usize) as u32, wv));
                            }
                        }
                    }
                }
                row.sort_unstable_by_key(|e| e.0);
                rows.push(row);
                bias.push(f64::from(c.bias[co]));
            }
        }
    }
    Ok(Affine {
        inputs: c.in_channels * h * w,
        rows,
        bias,
    })
}

/// The convolution as a map on the im2col matrix `[patch_len, positions]` (row-major).
fn conv_im2col_affine(c: &Conv2d, positions: usize) -> Affine {
    let pl = c.patch_len();
    let mut rows = Vec::with_capacity(c.out_channels * positions);
    let mut bias = Vec::with_capacity(rows.capacity());
    for co in 0..c.out_channels {
        for p in 0..positions {
            let row = (0..pl)
                .map(|kk| {
                    (
                        (kk * positions + p) as u32,
                        f64::from(c.weight[co * pl + kk]),
                    )
                })
                .filter(|&(_, w)| w != 0.0)
                .collect();
            rows.push(row);
            bias.push(f64::from(c.bias[co]));
        }
    }
    Affine {
        inputs: pl * positions,
        rows,
        bias,
    }
}

fn linear_affine(l: &Linear) -> Affine {
    let rows = l
        .weight
        .chunks(l.in_features)
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(_, &w)| w != 0.0)
                .map(|(j, &w)| (j as u32, f64::from(w)))
                .collect()
        })
        .collect();
    Affine {
        inputs: l.in_features,
        rows,
        bias: l.bias.iter().map(|&b| f64::from(b)).collect(),
    }
}

fn sum_pool_affine(p: &Pool2d, c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Affine {
    let mut rows = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut row = Vec::with_capacity(p.kernel * p.kernel);
                for ky in 0..p.kernel {
                    for kx in 0..p.kernel {
                        let (iy, ix) = (oy * p.stride + ky, ox * p.stride + kx);
                        if iy < h && ix < w {
                            row.push((((ch * h + iy) * w + ix) as u32, 1.0));
                        }
                    }
                }
                rows.push(row);
            }
        }
    }
    Affine {
        inputs: c * h * w,
        bias: vec![0.0; rows.len()],
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_nn::{engine, zoo, Tensor};

    fn check(name: &str, pool: PoolStrategy, im2col: bool) {
        let mut m = zoo::architecture(name).expect("zoo model");
        zoo::init_weights(&mut m, 7);
        let plan = Plan::compile(&m, pool, im2col).expect("compile");
        let img: Vec<f32> = (0..784)
            .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.3)
            .collect();
        let want = engine::forward(
            &m,
            &Tensor::new(vec![1, 1, 28, 28], img.clone()).expect("tensor"),
        )
        .expect("forward");
        let got = plan.eval_plain(&plan.layout_input(&img));
        assert_eq!(got.len(), want.data().len());
        for (g, w) in got.iter().zip(want.data()) {
            assert!(
                (g - f64::from(*w)).abs() <= 1e-3 * (1.0 + w.abs() as f64),
                "{name}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn plans_match_the_reference_engine() {
        for name in ["cnn", "mlp-sq", "lenet-sq"] {
            check(name, PoolStrategy::SumStage, false);
        }
        check("cnn", PoolStrategy::Fold, true);
    }

    #[test]
    fn depths() {
        let depth = |name: &str| {
            let m = zoo::architecture(name).expect("zoo");
            Plan::compile(&m, PoolStrategy::SumStage, false)
                .expect("compile")
                .depth()
        };
        assert_eq!(depth("cnn"), 5);
        assert_eq!(depth("mlp-sq"), 5);
        assert_eq!(depth("lenet-sq"), 7);
    }

    #[test]
    fn relu_is_refused() {
        let m = zoo::architecture("mlp").expect("zoo");
        assert!(matches!(
            Plan::compile(&m, PoolStrategy::SumStage, false),
            Err(HeError::NotPolynomial { index: 2, .. })
        ));
    }
}
