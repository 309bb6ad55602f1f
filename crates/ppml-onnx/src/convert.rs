//! The graph walk: ONNX nodes in topological order become ppml layers, with constants folded.
//!
//! ppml's model is a chain of layers, so exactly one value of the graph is the live activation at
//! any time; every other value is a constant. A node that takes the activation either becomes a
//! layer, is folded into the layer before it (a bias `Add`, a scaling `Mul`, a
//! `BatchNormalization`) or is removed (`Identity`, `Dropout`, a `Reshape` that changes nothing);
//! a node that takes only constants is evaluated here (`Constant`, `Identity`).

use std::collections::{HashMap, HashSet, VecDeque};

use ppml_nn::model::{Conv2d, Layer, Linear, Pool2d};
use ppml_nn::Shape;
use tract_onnx::pb::{GraphProto, NodeProto};

use crate::error::{OnnxError, Result};
use crate::proto::{self, Attrs, Const};

/// Backends, for messages about operators none of them can run.
const NO_LAYER: &str = "plain, he, mpc2, mpc3, tee: every backend runs ppml's layer list \
    (conv2d, linear, relu, square, max_pool2d, avg_pool2d, flatten), which has no equivalent";

/// What the walk produced.
pub(crate) struct Walk {
    pub layers: Vec<Layer>,
    pub origins: Vec<String>,
    pub notes: Vec<String>,
    pub output: Shape,
}

/// Which backends cannot run operator `op`, and why.
fn backends_for(op: &str) -> String {
    match op {
        "Sigmoid" | "Tanh" | "Softmax" | "LogSoftmax" | "Exp" | "Log" | "Erf" | "Gelu" | "Elu"
        | "Selu" | "LeakyRelu" | "HardSigmoid" | "Softplus" => format!(
            "plain, he, mpc2, mpc3, tee: ppml has no {op} layer (plain and tee could compute \
             it in the clear, mpc2/mpc3 have no protocol for it, he evaluates polynomials only)"
        ),
        _ => NO_LAYER.into(),
    }
}

/// A node's name for messages: its `name`, or its position when it has none.
pub(crate) fn node_name(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("#{index}")
    } else {
        node.name.clone()
    }
}

/// The nodes of `graph` in topological order (the specification requires it; exporters that
/// append nodes late exist, so the order is recomputed). Inputs nobody produces are left for the
/// walk to report.
pub(crate) fn topological(graph: &GraphProto) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if producer.insert(out, i).is_some() {
                return Err(OnnxError::Graph(format!(
                    "value `{out}` is produced by two nodes"
                )));
            }
        }
    }
    let mut pending = vec![0usize; graph.node.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (i, node) in graph.node.iter().enumerate() {
        let mut seen = HashSet::new();
        for input in &node.input {
            if let Some(&p) = producer.get(input.as_str()) {
                if seen.insert(p) {
                    pending[i] += 1;
                    consumers[p].push(i);
                }
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..graph.node.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &c in &consumers[i] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    if order.len() != graph.node.len() {
        return Err(OnnxError::Graph("the nodes form a cycle".into()));
    }
    Ok(order)
}

/// One input of a node.
enum Arg<'c> {
    /// The live activation.
    Act,
    /// A constant.
    Const(&'c Const),
    /// An optional input left out (empty name).
    Absent,
}

/// The walk's state.
pub(crate) struct Walker {
    consts: HashMap<String, Const>,
    act: String,
    shape: Shape,
    /// The batch size of the graph input when it is a fixed number.
    batch: Option<usize>,
    /// Earlier activations: using one again would be a branch or skip connection.
    stale: HashSet<String>,
    /// Extra outputs (masks, indices) that have no meaning here, with what they are.
    dead: HashMap<String, String>,
    layers: Vec<Layer>,
    origins: Vec<String>,
    notes: Vec<String>,
}

/// The node being converted, for errors.
struct Ctx<'n> {
    node: &'n NodeProto,
    name: String,
}

impl Ctx<'_> {
    fn unsupported(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            op: self.node.op_type.clone(),
            node: self.name.clone(),
            reason: reason.into(),
            backends: NO_LAYER.into(),
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Malformed {
            op: self.node.op_type.clone(),
            node: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Refuses attributes outside `known`.
    fn attrs(&self, known: &[&str]) -> Result<Attrs<'_>> {
        let attrs = Attrs::of(self.node);
        match attrs.unknown(known) {
            Some(a) => Err(self.unsupported(format!("attribute {a} is not supported"))),
            None => Ok(attrs),
        }
    }
}

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

impl Walker {
    /// A walk starting from the graph input `input` of shape `shape` (per image).
    pub fn new(
        input: String,
        shape: Shape,
        batch: Option<usize>,
        consts: HashMap<String, Const>,
    ) -> Self {
        Self {
            consts,
            act: input,
            shape,
            batch,
            stale: HashSet::new(),
            dead: HashMap::new(),
            layers: Vec::new(),
            origins: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a layer taking the live activation.
    pub fn push(&mut self, layer: Layer, origin: &str) -> std::result::Result<(), String> {
        self.shape = layer.output_shape(self.shape)?;
        self.layers.push(layer);
        self.origins.push(origin.to_string());
        Ok(())
    }

    /// A note on what the import did.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn arg<'s>(&'s self, ctx: &Ctx<'_>, name: &str) -> Result<Arg<'s>> {
        if name.is_empty() {
            return Ok(Arg::Absent);
        }
        if name == self.act {
            return Ok(Arg::Act);
        }
        if let Some(c) = self.consts.get(name) {
            return Ok(Arg::Const(c));
        }
        if self.stale.contains(name) {
            return Err(ctx.unsupported(format!(
                "uses `{name}`, an earlier activation: ppml models are a chain of layers \
                 (no branches or skip connections)"
            )));
        }
        if let Some(what) = self.dead.get(name) {
            return Err(ctx.unsupported(format!("uses `{name}`, {what}")));
        }
        Err(ctx.malformed(format!(
            "input `{name}` is not the graph input, an initializer or an earlier node's output"
        )))
    }

    /// The constant at input `i`, or an error naming what it must be.
    fn constant<'s>(&'s self, ctx: &Ctx<'_>, i: usize, what: &str) -> Result<Option<&'s Const>> {
        match ctx.node.input.get(i) {
            None => Ok(None),
            Some(name) => match self.arg(ctx, name)? {
                Arg::Const(c) => Ok(Some(c)),
                Arg::Absent => Ok(None),
                Arg::Act => Err(ctx.unsupported(format!(
                    "{what} (input {i}) must be a constant (an initializer or a Constant node), \
                     not the activation"
                ))),
            },
        }
    }

    fn required<'s>(&'s self, ctx: &Ctx<'_>, i: usize, what: &str) -> Result<&'s Const> {
        self.constant(ctx, i, what)?
            .ok_or_else(|| ctx.malformed(format!("{what} (input {i}) is missing")))
    }

    /// The last layer, when it is a convolution or linear layer producing the live activation.
    fn last_affine(&mut self) -> Option<&mut Layer> {
        self.layers
            .last_mut()
            .filter(|l| matches!(l, Layer::Conv2d(_) | Layer::Linear(_)))
    }

    /// `y = scale * layer(x) + shift` per output channel, folded into the last affine layer.
    fn fold_channels(&mut self, scale: &[f64], shift: &[f64]) -> bool {
        let Some(layer) = self.last_affine() else {
            return false;
        };
        let (weight, bias, outs) = match layer {
            Layer::Conv2d(c) => (&mut c.weight, &mut c.bias, c.out_channels),
            Layer::Linear(l) => (&mut l.weight, &mut l.bias, l.out_features),
            _ => return false,
        };
        if scale.len() != outs || shift.len() != outs || outs == 0 {
            return false;
        }
        let per = weight.len() / outs;
        for (o, (row, b)) in weight
            .chunks_mut(per.max(1))
            .zip(bias.iter_mut())
            .enumerate()
        {
            row.iter_mut()
                .for_each(|w| *w = (f64::from(*w) * scale[o]) as f32);
            *b = (f64::from(*b) * scale[o] + shift[o]) as f32;
        }
        true
    }

    /// Converts one node.
    pub fn node(&mut self, node: &NodeProto, index: usize) -> Result<()> {
        let ctx = Ctx {
            node,
            name: node_name(node, index),
        };
        if !matches!(node.domain.as_str(), "" | "ai.onnx") {
            return Err(OnnxError::Unsupported {
                op: node.op_type.clone(),
                node: ctx.name.clone(),
                reason: format!("operator of the custom domain `{}`", node.domain),
                backends: backends_for(&node.op_type),
            });
        }
        let args = node
            .input
            .iter()
            .map(|name| self.arg(&ctx, name).map(|a| matches!(a, Arg::Act)))
            .collect::<Result<Vec<bool>>>()?;
        let first_out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| ctx.malformed("no output"))?
            .clone();
        if !args.contains(&true) {
            let value = self.constant_node(&ctx)?;
            self.consts.insert(first_out, value);
            return Ok(());
        }
        self.activation_node(&ctx, &args)?;
        let old = std::mem::replace(&mut self.act, first_out);
        self.stale.insert(old);
        for extra in node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            self.dead.insert(
                extra.clone(),
                format!(
                    "output {extra} of {} node `{}`, which ppml does not compute",
                    node.op_type, ctx.name
                ),
            );
        }
        Ok(())
    }

    /// A node whose inputs are all constants.
    fn constant_node(&self, ctx: &Ctx<'_>) -> Result<Const> {
        match ctx.node.op_type.as_str() {
            "Constant" => {
                let attrs = ctx.attrs(&[
                    "value",
                    "value_float",
                    "value_floats",
                    "value_int",
                    "value_ints",
                ])?;
                attrs.constant().map_err(|e| ctx.malformed(e))
            }
            "Identity" => Ok(self.required(ctx, 0, "input")?.clone()),
            op => Err(OnnxError::Unsupported {
                op: op.to_string(),
                node: ctx.name.clone(),
                reason: "computes on constants only, and the importer folds only Constant and \
                         Identity; export with constant folding (torch.onnx.export's \
                         do_constant_folding=True)"
                    .into(),
                backends: NO_LAYER.into(),
            }),
        }
    }

    /// A node that takes the live activation (`args[i]` is true for it).
    fn activation_node(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        let op = ctx.node.op_type.as_str();
        let layer_err = |e: String| ctx.malformed(e);
        match op {
            "Relu" => {
                ctx.attrs(&[])?;
                self.push(Layer::Relu, &ctx.name).map_err(layer_err)
            }
            "Identity" => Ok(()),
            "Dropout" => {
                ctx.attrs(&["seed"])?;
                if let Some(t) = self.constant(ctx, 2, "training_mode")? {
                    if t.scalar() != Some(0.0) {
                        return Err(ctx.unsupported(
                            "training_mode is true: dropout is random at inference; export in \
                             eval mode",
                        ));
                    }
                }
                self.notes.push(format!("removed {op} `{}`", ctx.name));
                Ok(())
            }
            "Conv" => self.conv(ctx),
            "Gemm" => self.gemm(ctx, args),
            "MatMul" => self.matmul(ctx, args),
            "Add" | "Mul" => self.elementwise(ctx, args),
            "Pow" => {
                ctx.attrs(&[])?;
                if args.get(1) == Some(&true) {
                    return Err(ctx.unsupported("the exponent must be a constant"));
                }
                let e = self.required(ctx, 1, "exponent")?;
                match e.scalar() {
                    Some(2.0) => self.push(Layer::Square, &ctx.name).map_err(layer_err),
                    Some(1.0) => Ok(()),
                    _ => Err(ctx.unsupported(format!(
                        "exponent {:?}: only x^2 (ppml's square layer) is supported",
                        e.data
                    ))),
                }
            }
            "MaxPool" | "AveragePool" => self.pool(ctx),
            "GlobalAveragePool" => {
                ctx.attrs(&[])?;
                match self.shape {
                    Shape::Chw(_, h, w) if h == w => self
                        .push(
                            Layer::AvgPool2d(Pool2d {
                                kernel: h,
                                stride: h,
                            }),
                            &ctx.name,
                        )
                        .map_err(layer_err),
                    s => Err(ctx.unsupported(format!(
                        "input {s:?}: ppml's average pool has square windows, so the map must \
                         be square"
                    ))),
                }
            }
            "Flatten" => {
                let attrs = ctx.attrs(&["axis"])?;
                let rank = self.shape.dims().len() as i64 + 1;
                let axis = attrs.int("axis", 1).map_err(|e| ctx.malformed(e))?;
                let axis = if axis < 0 { axis + rank } else { axis };
                if axis != 1 {
                    return Err(ctx.unsupported(format!(
                        "axis {axis}: only axis 1 (keep the batch, flatten the rest) is supported"
                    )));
                }
                self.flatten(&ctx.name).map_err(layer_err)
            }
            "Reshape" => self.reshape(ctx, args),
            "BatchNormalization" => self.batch_norm(ctx),
            _ => Err(OnnxError::Unsupported {
                op: op.to_string(),
                node: ctx.name.clone(),
                reason: "no ppml layer computes this operator".into(),
                backends: backends_for(op),
            }),
        }
    }

    fn flatten(&mut self, origin: &str) -> std::result::Result<(), String> {
        match self.shape {
            Shape::Flat(_) => Ok(()),
            Shape::Chw(..) => self.push(Layer::Flatten, origin),
        }
    }

    fn conv(&mut self, ctx: &Ctx<'_>) -> Result<()> {
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
    fn pads(&self, ctx: &Ctx<'_>, attrs: &Attrs<'_>) -> Result<usize> {
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

    fn pool(&mut self, ctx: &Ctx<'_>) -> Result<()> {
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

    fn gemm(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
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

    fn matmul(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
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
    fn linear(
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
    fn elementwise(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
        ctx.attrs(&[])?;
        let mul = ctx.node.op_type == "Mul";
        if args == [true, true] {
            if mul {
                return self
                    .push(Layer::Square, &ctx.name)
                    .map_err(|e| ctx.malformed(e));
            }
            return Err(ctx.unsupported("adds the activation to itself"));
        }
        let other = args.iter().position(|&a| !a).unwrap_or(1);
        let c = self.required(ctx, other, "the other operand")?.clone();
        let identity = if mul { 1.0 } else { 0.0 };
        if c.data.iter().all(|&v| v == identity)
            && c.dims.iter().product::<usize>() <= self.shape.len()
        {
            self.notes.push(format!(
                "removed {} `{}` by {identity}",
                ctx.node.op_type, ctx.name
            ));
            return Ok(());
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
                "{} by a constant of dimensions {:?} is folded only into the Conv, Gemm or \
                 MatMul right before it, per output channel",
                if mul { "multiplying" } else { "adding" },
                c.dims
            )));
        }
        self.notes.push(format!(
            "folded {} `{}` into layer {}",
            ctx.node.op_type,
            ctx.name,
            self.layers.len().saturating_sub(1)
        ));
        Ok(())
    }

    fn reshape(&mut self, ctx: &Ctx<'_>, args: &[bool]) -> Result<()> {
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

    fn batch_norm(&mut self, ctx: &Ctx<'_>) -> Result<()> {
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

    /// Ends the walk: `output` must be the live activation.
    pub fn finish(mut self, output: &str) -> Result<Walk> {
        if output != self.act {
            return Err(OnnxError::Graph(format!(
                "the graph output `{output}` is not the end of the layer chain (`{}`)",
                self.act
            )));
        }
        if let Shape::Chw(..) = self.shape {
            self.push(Layer::Flatten, "(output)")
                .map_err(OnnxError::Graph)?;
            self.notes
                .push("appended a flatten: the output was a [C, 1, 1]-style map".into());
        }
        Ok(Walk {
            layers: self.layers,
            origins: self.origins,
            notes: self.notes,
            output: self.shape,
        })
    }
}

/// Two equal values from an optional pair (`default` when absent), as `usize`.
fn square_pair(v: Option<&[i64]>, default: usize) -> Option<usize> {
    match v {
        None => Some(default),
        Some([a, b]) if a == b => usize::try_from(*a).ok(),
        Some(_) => None,
    }
}

/// Reads the constants of a graph (initializers), naming the offender on error.
pub(crate) fn initializers(graph: &GraphProto) -> Result<HashMap<String, Const>> {
    let mut consts = HashMap::with_capacity(graph.initializer.len());
    for t in &graph.initializer {
        let c = proto::tensor(t)
            .map_err(|e| OnnxError::Graph(format!("initializer `{}`: {e}", t.name)))?;
        consts.insert(t.name.clone(), c);
    }
    Ok(consts)
}
