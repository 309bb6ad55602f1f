//! One handler per ONNX operator that takes the activation: checks its attributes and inputs,
//! then adds a layer, folds into the layer before, or changes nothing.

use ppml_nn::model::{Conv2d, Layer, Linear, Pool2d};
use ppml_nn::Shape;

use super::{Ctx, Walker};
use crate::error::Result;
use crate::proto::{Attrs, Const};

/// `[c, 1, 1]`-style per-channel (or per-feature) values broadcast from `c`, if `c` has that
/// form for an activation of `shape`: a scalar, or one value per channel.
fn per_channel(c: &Const, shape: Shape) -> Option<Vec<f64>> {
    let channels = match shape {
        Shape::Chw(ch, _, _) => ch,
        Shape::Flat(n) => n,
    };
    let dims = c.squeezed_dims();
    if dims.is_empty() {
        return c.scalar().map(|v| vec![v; channels]);
    }
    let fits = match shape {
        Shape::Chw(ch, _, _) => dims == [ch, 1, 1],
        Shape::Flat(n) => dims == [n],
    };
    fits.then(|| c.data.clone())
}

/// Two equal values from an optional pair (`default` when absent), as `usize`.
fn square_pair(v: Option<&[i64]>, default: usize) -> Option<usize> {
    match v {
        None => Some(default),
        Some([a, b]) if a == b => usize::try_from(*a).ok(),
        Some(_) => None,
    }
}

impl Walker {
    pub(super) fn flatten(&mut self, origin: &str) -> std::result::Result<(), String> {
        match self.shape {
            Shape::Flat(_) => Ok(()),
            Shape::Chw(..) => self.push(Layer::Flatten, origin),
        }
    }

    pub(super) fn conv(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let attrs = ctx.attrs(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let m = |e: String| ctx.malformed(e);
        if ctx.node.input.first() != Some(&self.act) {
            return Err(ctx.unsupported("the activation must be the first input (X)"));
        }
        let group = attrs.int("group", 1).map_err(m)?;
        if group != 1 {
            return Err(ctx.unsupported(format!(
                "attribute group={group}: ppml's Conv2d is group 1 (no grouped or depthwise \
                 convolutions)"
            )));
        }
        let w = self.required(ctx, 1, "weight W")?;
        let Shape::Chw(c, _, _) = self.shape else {
            return Err(ctx.malformed(format!("input {:?} is not a feature map", self.shape)));
        };
        let [out, cin, kh, kw] = w.dims[..] else {
            return Err(ctx.unsupported(format!(
                "weight of dimensions {:?}: only 2-D convolutions ([M, C, kH, kW]) are supported",
                w.dims
            )));
        };
        if cin != c {
            return Err(ctx.malformed(format!(
                "weight expects {cin} input channels, the input has {c}"
            )));
        }
        if kh != kw {
            return Err(ctx.unsupported(format!(
                "kernel {kh}x{kw}: ppml's Conv2d has square kernels"
            )));
        }
        if let Some(ks) = attrs.ints("kernel_shape").map_err(m)? {
            if ks != [kh as i64, kw as i64] {
                return Err(ctx.malformed(format!(
                    "kernel_shape {ks:?} differs from the weight's {kh}x{kw}"
                )));
            }
        }
        if let Some(d) = attrs.ints("dilations").map_err(m)? {
            if d.iter().any(|&d| d != 1) {
                return Err(ctx.unsupported(format!(
                    "attribute dilations={d:?}: only dilation 1 is supported"
                )));
            }
        }
        let stride = square_pair(attrs.ints("strides").map_err(m)?, 1).ok_or_else(|| {
            ctx.unsupported("attribute strides: only equal strides are supported")
        })?;
        let padding = self.pads(ctx, &attrs)?;
        if padding >= kh {
            return Err(ctx.unsupported(format!(
                "padding {padding} with a {kh}x{kh} kernel: ppml pads less than the kernel size"
            )));
        }
        let bias = match self.constant(ctx, 2, "bias B")? {
            Some(b) if b.dims == [out] => b.data.iter().map(|&v| v as f32).collect(),
            Some(b) => {
                return Err(
                    ctx.malformed(format!("bias of dimensions {:?}, expected [{out}]", b.dims))
                )
            }
            None => vec![0.0; out],
        };
        let weight = w.data.iter().map(|&v| v as f32).collect();
        let layer = Layer::Conv2d(Conv2d {
            in_channels: c,
            out_channels: out,
            kernel: kh,
            stride,
            padding,
            weight,
            bias,
        });
        self.push(layer, &ctx.name).map_err(m)
    }

    /// Symmetric zero padding from `pads`/`auto_pad`.
    pub(super) fn pads(&self, ctx: &Ctx<'_>, attrs: &Attrs<'_>) -> Result<usize> {
        let m = |e: String| ctx.malformed(e);
        match attrs.string("auto_pad").map_err(m)?.as_deref() {
            None | Some("NOTSET") => {}
            Some("VALID") => return Ok(0),
            Some(other) => {
                return Err(ctx.unsupported(format!(
                    "attribute auto_pad={other}: give explicit pads (torch.onnx.export does)"
                )))
            }
        }
        match attrs.ints("pads").map_err(m)? {
            None => Ok(0),
            Some(p) if p.len() == 4 && p.iter().all(|&v| v == p[0]) && p[0] >= 0 => {
                usize::try_from(p[0]).map_err(|_| ctx.malformed("negative pads"))
            }
            Some(p) => Err(ctx.unsupported(format!(
                "attribute pads={p:?}: only the same padding on all four sides is supported"
            ))),
        }
    }

    pub(super) fn pool(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let max = ctx.node.op_type == "MaxPool";
        let attrs = ctx.attrs(&[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "dilations",
            "kernel_shape",
            "pads",
            "storage_order",
            "strides",
        ])?;
        let m = |e: String| ctx.malformed(e);
        let kernel = square_pair(attrs.ints("kernel_shape").map_err(m)?, 0)
            .filter(|&k| k > 0)
            .ok_or_else(|| ctx.unsupported("attribute kernel_shape: only square windows"))?;
        let stride = square_pair(attrs.ints("strides").map_err(m)?, 1)
            .ok_or_else(|| ctx.unsupported("attribute strides: only equal strides"))?;
        if let Some(d) = attrs.ints("dilations").map_err(m)? {
            if d.iter().any(|&d| d != 1) {
                return Err(ctx.unsupported(format!("attribute dilations={d:?}: only 1")));
            }
        }
        if self.pads(ctx, &attrs)? != 0 {
            return Err(ctx.unsupported("attribute pads: ppml's pooling layers have no padding"));
        }
        let pool = Pool2d { kernel, stride };
        if attrs.int("ceil_mode", 0).map_err(m)? != 0 {
            // Ceil mode only differs when the last window would hang over the edge.
            let exact = match self.shape {
                Shape::Chw(_, h, w) => {
                    h >= kernel
                        && w >= kernel
                        && (h - kernel) % stride == 0
                        && (w - kernel) % stride == 0
                }
                Shape::Flat(_) => false,
            };
            if !exact {
                return Err(ctx.unsupported(
                    "attribute ceil_mode=1 with windows that overhang the edge: ppml pools \
                     round down",
                ));
            }
        }
        let layer = if max {
            Layer::MaxPool2d(pool)
        } else {
            Layer::AvgPool2d(pool)
        };
        self.push(layer, &ctx.name).map_err(m)
    }

    pub(super) fn gemm(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        let attrs = ctx.attrs(&["alpha", "beta", "transA", "transB"])?;
        let m = |e: String| ctx.malformed(e);
        if args.first() != Some(&true) || args.iter().filter(|&&a| a).count() != 1 {
            return Err(ctx.unsupported(
                "the activation must be input A only (B and C constants), as nn.Linear exports",
            ));
        }
        if attrs.int("transA", 0).map_err(m)? != 0 {
            return Err(
                ctx.unsupported("attribute transA=1 on the activation would transpose the batch")
            );
        }
        let alpha = f64::from(attrs.float("alpha", 1.0).map_err(m)?);
        let beta = f64::from(attrs.float("beta", 1.0).map_err(m)?);
        let trans_b = attrs.int("transB", 0).map_err(m)? != 0;
        let b = self.required(ctx, 1, "B")?.clone();
        let c = self.constant(ctx, 2, "C")?.cloned();
        self.linear(ctx, &b, trans_b, alpha, c.as_ref(), beta)
    }

    pub(super) fn matmul(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        ctx.attrs(&[])?;
        if args != [true, false] {
            return Err(ctx.unsupported(
                "the activation must be the left input and the right one a constant matrix",
            ));
        }
        let b = self.required(ctx, 1, "B")?.clone();
        self.linear(ctx, &b, false, 1.0, None, 1.0)
    }

    /// A linear layer from `x B` (or `x B^T`) times `alpha`, plus `beta C`.
    pub(super) fn linear(
        &mut self,
        ctx: &Ctx<'_>,
        b: &Const,
        trans_b: bool,
        alpha: f64,
        c: Option<&Const>,
        beta: f64,
    ) -> Result<()> {
        let Shape::Flat(k) = self.shape else {
            return Err(ctx.unsupported(format!(
                "input {:?}: a matrix product needs a flat input (Flatten or Reshape first)",
                self.shape
            )));
        };
        let [r, s] = b.dims[..] else {
            return Err(ctx.unsupported(format!(
                "B of dimensions {:?}: only a 2-D weight matrix is supported",
                b.dims
            )));
        };
        let (inner, out) = if trans_b { (s, r) } else { (r, s) };
        if inner != k {
            return Err(ctx.malformed(format!(
                "B is {r}x{s}{}, the input has {k} features",
                if trans_b { " (transposed)" } else { "" }
            )));
        }
        // ppml stores [out, in]; B is [out, in] when transposed, [in, out] otherwise.
        let mut weight = vec![0.0f32; out * k];
        for o in 0..out {
            for i in 0..k {
                let v = if trans_b {
                    b.data[o * k + i]
                } else {
                    b.data[i * out + o]
                };
                weight[o * k + i] = (alpha * v) as f32;
            }
        }
        let bias = match c {
            None => vec![0.0; out],
            Some(c) => {
                let v = per_channel(c, Shape::Flat(out)).ok_or_else(|| {
                    ctx.unsupported(format!(
                        "C of dimensions {:?}: only a bias of {out} values (or a scalar) is \
                         supported",
                        c.dims
                    ))
                })?;
                v.iter().map(|&v| (beta * v) as f32).collect()
            }
        };
        let layer = Layer::Linear(Linear {
            in_features: k,
            out_features: out,
            weight,
            bias,
        });
        self.push(layer, &ctx.name).map_err(|e| ctx.malformed(e))
    }

    /// `Add`/`Mul` of the activation with a constant (folded into the layer before) or, for
    /// `Mul(x, x)`, with itself (a square layer).
    /// `Add`/`Sub`/`Mul`/`Div` of the activation by a constant, folded into the layer before
    /// (or, on the raw input, into the normalisation); `Mul(x, x)` is a square layer.
    pub(super) fn elementwise(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        ctx.attrs(&[])?;
        let op = ctx.node.op_type.as_str();
        let mul = matches!(op, "Mul" | "Div");
        if args == [true, true] {
            if op == "Mul" {
                return self
                    .push(Layer::Square, &ctx.name)
                    .map_err(|e| ctx.malformed(e));
            }
            return Err(ctx.unsupported("combines the activation with itself"));
        }
        if matches!(op, "Sub" | "Div") && args != [true, false] {
            return Err(ctx.unsupported("the activation must be the left operand (x - c or x / c)"));
        }
        let other = args.iter().position(|&a| !a).unwrap_or(1);
        let mut c = self.required(ctx, other, "the other operand")?.clone();
        match op {
            "Sub" => c.data.iter_mut().for_each(|v| *v = -*v),
            "Div" => {
                if c.data.contains(&0.0) {
                    return Err(ctx.malformed("division by zero"));
                }
                c.data.iter_mut().for_each(|v| *v = 1.0 / *v);
            }
            _ => {}
        }
        let identity = if mul { 1.0 } else { 0.0 };
        if c.data.iter().all(|&v| v == identity)
            && c.dims.iter().product::<usize>() <= self.shape.len()
        {
            self.notes
                .push(format!("removed {op} `{}` by {identity}", ctx.name));
            return Ok(());
        }
        if self.layers.iter().all(|l| matches!(l, Layer::Flatten)) {
            // On the raw input: `a x + b` with scalars joins the client's normalisation.
            if let Some(v) = c.scalar() {
                let (a, b) = self.input_affine;
                self.input_affine = if mul { (a * v, b * v) } else { (a, b + v) };
                self.notes.push(format!(
                    "folded {op} `{}` on the input into the normalisation",
                    ctx.name
                ));
                return Ok(());
            }
        }
        let folded = per_channel(&c, self.shape).is_some_and(|v| {
            let n = v.len();
            if mul {
                self.fold_channels(&v, &vec![0.0; n])
            } else {
                self.fold_channels(&vec![1.0; n], &v)
            }
        });
        if !folded {
            return Err(ctx.unsupported(format!(
                "{op} by a constant of dimensions {:?} is folded only into the Conv, Gemm or \
                 MatMul right before it (per output channel), or into the normalisation when it \
                 is a scalar applied to the input",
                c.dims
            )));
        }
        self.notes.push(format!(
            "folded {op} `{}` into layer {}",
            ctx.name,
            self.layers.len().saturating_sub(1)
        ));
        Ok(())
    }

    pub(super) fn reshape(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        let attrs = ctx.attrs(&["allowzero"])?;
        if args.get(1) == Some(&true) {
            return Err(ctx.unsupported("the shape must be a constant"));
        }
        let allow_zero = attrs.int("allowzero", 0).map_err(|e| ctx.malformed(e))? != 0;
        let shape = self.required(ctx, 1, "shape")?;
        let current: Vec<usize> = self.shape.dims();
        let len = self.shape.len();
        let batch = self.batch.unwrap_or(1);
        let mut dims: Vec<i64> = shape.data.iter().map(|&v| v as i64).collect();
        // 0 copies the input's dimension (unless allowzero); -1 takes what is left.
        for (i, d) in dims.iter_mut().enumerate() {
            if *d == 0 && !allow_zero {
                *d = if i == 0 {
                    batch as i64
                } else {
                    current.get(i - 1).map_or(0, |&v| v as i64)
                };
            }
        }
        let known = dims
            .iter()
            .filter(|&&d| d != -1)
            .try_fold(1i64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(-1);
        let total = i64::try_from(batch.saturating_mul(len)).unwrap_or(i64::MAX);
        let wild = dims.iter().filter(|&&d| d == -1).count();
        if wild > 1 || dims.iter().any(|&d| d < -1) || known <= 0 || total % known != 0 {
            return Err(ctx.malformed(format!(
                "shape {:?} does not fit {total} elements",
                shape.data
            )));
        }
        dims.iter_mut()
            .filter(|d| **d == -1)
            .for_each(|d| *d = total / known);
        let rest = dims.iter().skip(1).map(|&d| d as usize).collect::<Vec<_>>();
        if dims.first() != Some(&(batch as i64)) {
            return Err(ctx.unsupported(format!(
                "reshape to {dims:?} changes the batch dimension ({batch})"
            )));
        }
        if rest == current {
            self.notes
                .push(format!("removed Reshape `{}` (no change)", ctx.name));
            return Ok(());
        }
        if rest == [len] {
            return self.flatten(&ctx.name).map_err(|e| ctx.malformed(e));
        }
        Err(ctx.unsupported(format!(
            "reshape of {current:?} to {rest:?} is not a flatten: ppml layers take [C, H, W] \
             maps or flat vectors"
        )))
    }

    pub(super) fn batch_norm(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let attrs = ctx.attrs(&["epsilon", "momentum", "training_mode", "spatial"])?;
        let m = |e: String| ctx.malformed(e);
        if attrs.int("training_mode", 0).map_err(m)? != 0 {
            return Err(ctx.unsupported("training_mode=1: export in eval mode"));
        }
        let eps = f64::from(attrs.float("epsilon", 1e-5).map_err(m)?);
        let names = ["scale", "B", "input_mean", "input_var"];
        let channels = match self.shape {
            Shape::Chw(c, _, _) => c,
            Shape::Flat(n) => n,
        };
        let mut vals = Vec::with_capacity(4);
        for (i, name) in names.iter().enumerate() {
            let c = self.required(ctx, i + 1, name)?;
            let one_per_channel = c.data.len() == channels && c.squeezed_dims().len() <= 1;
            vals.push(one_per_channel.then(|| c.data.clone()));
        }
        let [Some(scale), Some(b), Some(mean), Some(var)] = &vals[..] else {
            return Err(ctx.malformed(format!(
                "scale, B, mean and var must hold one value per channel of {:?}",
                self.shape
            )));
        };
        if var.iter().any(|&v| v + eps <= 0.0) {
            return Err(ctx.malformed("variance + epsilon is not positive"));
        }
        let s: Vec<f64> = scale
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f64> = b
            .iter()
            .zip(mean)
            .zip(&s)
            .map(|((b, mu), s)| b - mu * s)
            .collect();
        if !self.fold_channels(&s, &shift) {
            return Err(ctx.unsupported(
                "a BatchNormalization is folded into the Conv, Gemm or MatMul right before it, \
                 and this one follows none",
            ));
        }
        self.notes.push(format!(
            "folded BatchNormalization `{}` into layer {}",
            ctx.name,
            self.layers.len().saturating_sub(1)
        ));
        Ok(())
    }
}
