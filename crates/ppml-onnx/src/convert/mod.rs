//! The graph walk: ONNX nodes in topological order become ppml layers, with constants folded.
//!
//! ppml's model is a chain of layers, so exactly one value of the graph is the live activation at
//! any time; every other value is a constant. A node that takes the activation either becomes a
//! layer, is folded into the layer before it (a bias `Add`, a scaling `Mul`, a
//! `BatchNormalization`) or is removed (`Identity`, `Dropout`, a `Reshape` that changes nothing);
//! a node that takes only constants is evaluated here (`Constant`, `Identity`).

use std::collections::{HashMap, HashSet, VecDeque};

use ppml_nn::model::{Layer, Pool2d};
use ppml_nn::Shape;
use tract_onnx::pb::{GraphProto, NodeProto};

use crate::error::{OnnxError, Result};
use crate::proto::{self, Attrs, Const};

mod ops;

/// Backends, for messages about operators none of them can run.
const NO_LAYER: &str = "plain, he, mpc2, mpc3, tee: every backend runs ppml's layer list \
    (conv2d, linear, relu, square, max_pool2d, avg_pool2d, flatten), which has no equivalent";

/// What the walk produced.
pub(crate) struct Walk {
    pub layers: Vec<Layer>,
    pub origins: Vec<String>,
    pub notes: Vec<String>,
    /// `(a, b)`: the model computes `a x + b` on its input before the first layer.
    pub input_affine: (f64, f64),
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
    /// Scalar `Add`/`Sub`/`Mul`/`Div` on the raw input, as `a x + b`.
    input_affine: (f64, f64),
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
            input_affine: (1.0, 0.0),
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
            "Add" | "Sub" | "Mul" | "Div" => self.elementwise(ctx, args),
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
            input_affine: self.input_affine,
        })
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
