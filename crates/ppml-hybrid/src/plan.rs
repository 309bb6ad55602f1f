//! A model as the two parties run it: the public plan (layer kinds and shapes, which the client
//! knows) and the server's encoded weights; the forward pass on shares.
//!
//! A ReLU directly followed by a max-pooling runs after it instead (`max` and ReLU commute,
//! since ReLU is monotone): the same result with a quarter of the ReLUs for 2x2 windows.

use std::sync::Arc;

use ppml_nn::{Layer, Model, Shape};
use ppml_rlwe::{Params, PublicKey, SecretKey};

use crate::error::{HybridError, Result};
use crate::fixed::{encode, FRAC_BITS};
use crate::linear::{ConvGeom, ServerLinear};
use crate::nonlinear::{tournament_comparisons, RELU_OTS, SQUARE_OTS};
use crate::ot::OtCount;
use crate::party::Party;

/// A pooling window over a `[c][h][w]` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window.
    pub k: usize,
    /// Stride.
    pub stride: usize,
}

impl PoolGeom {
    fn out_hw(&self) -> (usize, usize) {
        (
            (self.h - self.k) / self.stride + 1,
            (self.w - self.k) / self.stride + 1,
        )
    }

    fn out_len(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.c * oh * ow
    }

    /// Indices of each window's elements in a batch of `images` maps, window-major.
    fn windows(&self, images: usize) -> Vec<Vec<usize>> {
        let (oh, ow) = self.out_hw();
        let len = self.c * self.h * self.w;
        let mut out = Vec::with_capacity(images * self.out_len());
        for img in 0..images {
            for c in 0..self.c {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut win = Vec::with_capacity(self.k * self.k);
                        for i in 0..self.k {
                            for j in 0..self.k {
                                let (r, q) = (y * self.stride + i, x * self.stride + j);
                                win.push(img * len + (c * self.h + r) * self.w + q);
                            }
                        }
                        out.push(win);
                    }
                }
            }
        }
        out
    }
}

/// One step of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Convolution or dense layer (HE), then truncation.
    Linear(ConvGeom),
    /// ReLU on `n` values per image.
    Relu(usize),
    /// Square on `n` values per image, then truncation.
    Square(usize),
    /// Max pooling.
    MaxPool(PoolGeom),
    /// Average pooling (local).
    AvgPool(PoolGeom),
}

/// The public plan of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<Step>,
    input_len: usize,
    output_len: usize,
}

fn pool_geom(p: &ppml_nn::model::Pool2d, shape: Shape) -> Result<PoolGeom> {
    match shape {
        Shape::Chw(c, h, w) => Ok(PoolGeom {
            c,
            h,
            w,
            k: p.kernel,
            stride: p.stride,
        }),
        Shape::Flat(_) => Err(HybridError::Unsupported {
            what: "pooling of a flat vector".into(),
        }),
    }
}

impl Plan {
    /// The plan of `model` (shapes checked by `Model::shapes`).
    pub fn compile(model: &Model) -> Result<Self> {
        let shapes = model.shapes().map_err(|e| HybridError::Unsupported {
            what: e.to_string(),
        })?;
        let mut steps = Vec::new();
        let mut input = model.input_shape();
        let mut i = 0;
        while i < model.layers.len() {
            let layer = &model.layers[i];
            match layer {
                Layer::Conv2d(c) => {
                    let Shape::Chw(ch, h, w) = input else {
                        return Err(HybridError::Unsupported {
                            what: "convolution of a flat vector".into(),
                        });
                    };
                    steps.push(Step::Linear(ConvGeom {
                        c: ch,
                        h,
                        w,
                        pad: c.padding,
                        k: c.kernel,
                        stride: c.stride,
                        m: c.out_channels,
                    }));
                }
                Layer::Linear(l) => {
                    steps.push(Step::Linear(ConvGeom::dense(l.in_features, l.out_features)))
                }
                Layer::Relu => match model.layers.get(i + 1) {
                    Some(Layer::MaxPool2d(p)) => {
                        steps.push(Step::MaxPool(pool_geom(p, shapes[i])?));
                        steps.push(Step::Relu(shapes[i + 1].len()));
                        input = shapes[i + 1];
                        i += 2;
                        continue;
                    }
                    _ => steps.push(Step::Relu(input.len())),
                },
                Layer::Square => steps.push(Step::Square(input.len())),
                Layer::MaxPool2d(p) => steps.push(Step::MaxPool(pool_geom(p, input)?)),
                Layer::AvgPool2d(p) => steps.push(Step::AvgPool(pool_geom(p, input)?)),
                Layer::Flatten => {}
            }
            input = shapes[i];
            i += 1;
        }
        Ok(Self {
            steps,
            input_len: model.input_shape().len(),
            output_len: input.len(),
        })
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Values per input image.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Logits per image.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Random OTs a forward pass over `images` images consumes (the offline phase's size).
    pub fn ot_count(&self, images: usize) -> OtCount {
        let per_image = self
            .steps
            .iter()
            .map(|s| match *s {
                Step::Relu(n) => RELU_OTS * n,
                Step::Square(n) => SQUARE_OTS * n,
                Step::MaxPool(p) => RELU_OTS * (p.out_len() * tournament_comparisons(p.k * p.k)),
                Step::Linear(_) | Step::AvgPool(_) => OtCount::default(),
            })
            .fold(OtCount::default(), |a, b| a + b);
        per_image * images
    }
}

/// Largest number of steps a plan from the peer may have.
const MAX_STEPS: usize = 256;
/// Largest dimension or length in a plan from the peer.
const MAX_DIM: usize = 1 << 24;
/// Words per step on the wire: a tag and seven fields.
const STEP_WORDS: usize = 8;

fn pool_out(p: &PoolGeom) -> Option<usize> {
    if p.k == 0 || p.stride == 0 || p.k > p.h || p.k > p.w {
        return None;
    }
    Some(p.out_len())
}

impl Plan {
    /// The length of each step's output, or `None` if the steps do not chain from
    /// `input_len` to `output_len` (or a geometry is degenerate or too large).
    fn check(&self) -> Option<()> {
        let mut len = self.input_len;
        for s in &self.steps {
            len = match *s {
                Step::Linear(g) => {
                    let ok = g.k > 0
                        && g.stride > 0
                        && g.h + 2 * g.pad >= g.k
                        && g.w + 2 * g.pad >= g.k
                        && g.c * (g.h + 2 * g.pad) * (g.w + 2 * g.pad) <= MAX_DIM
                        && g.in_len() == len;
                    ok.then(|| g.out_len())?
                }
                Step::Relu(n) | Step::Square(n) => (n == len).then_some(n)?,
                Step::MaxPool(p) | Step::AvgPool(p) => {
                    (p.c * p.h * p.w == len).then(|| pool_out(&p))??
                }
            };
            if len == 0 || len > MAX_DIM {
                return None;
            }
        }
        (len == self.output_len).then_some(())
    }

    /// The plan as words (sent by the server so that the client can run it).
    pub fn to_words(&self) -> Vec<u64> {
        let mut w = vec![
            1,
            self.steps.len() as u64,
            self.input_len as u64,
            self.output_len as u64,
        ];
        for s in &self.steps {
            let f: [usize; STEP_WORDS] = match *s {
                Step::Linear(g) => [1, g.c, g.h, g.w, g.pad, g.k, g.stride, g.m],
                Step::Relu(n) => [2, n, 0, 0, 0, 0, 0, 0],
                Step::Square(n) => [3, n, 0, 0, 0, 0, 0, 0],
                Step::MaxPool(p) => [4, p.c, p.h, p.w, p.k, p.stride, 0, 0],
                Step::AvgPool(p) => [5, p.c, p.h, p.w, p.k, p.stride, 0, 0],
            };
            w.extend(f.iter().map(|&v| v as u64));
        }
        w
    }

    /// Decodes and checks a plan from the peer.
    pub fn from_words(w: &[u64]) -> Result<Self> {
        let bad = |index| HybridError::InvalidContent {
            what: "model plan",
            index,
        };
        if w.len() < 4 {
            return Err(HybridError::Malformed {
                what: "model plan",
                expected: 4,
                got: w.len(),
            });
        }
        let small = |i: usize| -> Result<usize> {
            let v = w[i];
            if v > MAX_DIM as u64 {
                return Err(bad(i));
            }
            Ok(v as usize)
        };
        if w[0] != 1 {
            return Err(bad(0));
        }
        let n = small(1)?;
        if n > MAX_STEPS {
            return Err(bad(1));
        }
        if w.len() != 4 + STEP_WORDS * n {
            return Err(HybridError::Malformed {
                what: "model plan",
                expected: 4 + STEP_WORDS * n,
                got: w.len(),
            });
        }
        let mut steps = Vec::with_capacity(n);
        for k in 0..n {
            let b = 4 + STEP_WORDS * k;
            let f = (0..STEP_WORDS)
                .map(|i| small(b + i))
                .collect::<Result<Vec<_>>>()?;
            let pool = PoolGeom {
                c: f[1],
                h: f[2],
                w: f[3],
                k: f[4],
                stride: f[5],
            };
            steps.push(match f[0] {
                1 => Step::Linear(ConvGeom {
                    c: f[1],
                    h: f[2],
                    w: f[3],
                    pad: f[4],
                    k: f[5],
                    stride: f[6],
                    m: f[7],
                }),
                2 => Step::Relu(f[1]),
                3 => Step::Square(f[1]),
                4 => Step::MaxPool(pool),
                5 => Step::AvgPool(pool),
                _ => return Err(bad(b)),
            });
        }
        let plan = Self {
            steps,
            input_len: small(2)?,
            output_len: small(3)?,
        };
        plan.check().ok_or(bad(0))?;
        Ok(plan)
    }
}

/// The server's model: the plan and its layers' encoded weights.
pub struct ServerModel {
    plan: Plan,
    layers: Vec<ServerLinear>,
}

impl ServerModel {
    /// Encodes `model` for `params`.
    pub fn new(model: &Model, params: &Params) -> Result<Self> {
        let plan = Plan::compile(model)?;
        let mut weights = model.layers.iter().filter_map(|l| match l {
            Layer::Conv2d(c) => Some((&c.weight, &c.bias)),
            Layer::Linear(l) => Some((&l.weight, &l.bias)),
            _ => None,
        });
        let mut layers = Vec::new();
        for s in plan.steps() {
            if let Step::Linear(g) = s {
                let (w, b) = weights.next().ok_or_else(|| HybridError::Unsupported {
                    what: "fewer weighted layers than linear steps".into(),
                })?;
                layers.push(ServerLinear::new(params, *g, w, b)?);
            }
        }
        Ok(Self { plan, layers })
    }

    /// The public plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// What a party brings to the linear layers.
pub enum LinearRole<'a> {
    /// The server: its encoded layers and the client's public key.
    Server(&'a ServerModel, &'a PublicKey),
    /// The client: its secret key.
    Client(&'a SecretKey),
}

impl Party {
    /// Runs the plan on this party's shares `x` (`images` of them) and returns its shares of
    /// the logits.
    pub fn forward(
        &mut self,
        plan: &Plan,
        params: &Arc<Params>,
        role: &LinearRole<'_>,
        mut x: Vec<u64>,
        images: usize,
    ) -> Result<Vec<u64>> {
        let mut linear_index = 0;
        for step in plan.steps() {
            x = match *step {
                Step::Linear(g) => {
                    let mut y = match role {
                        LinearRole::Server(m, pk) => {
                            let layer = m.layers.get(linear_index).ok_or_else(|| {
                                HybridError::Unsupported {
                                    what: "plan and server model disagree".into(),
                                }
                            })?;
                            if layer.geom() != g {
                                return Err(HybridError::Unsupported {
                                    what: "plan and server model disagree".into(),
                                });
                            }
                            self.linear_server(params, pk, layer, &x, images)?
                        }
                        LinearRole::Client(sk) => self.linear_client(params, sk, &g, &x, images)?,
                    };
                    linear_index += 1;
                    self.truncate(&mut y, FRAC_BITS);
                    y
                }
                Step::Relu(_) => self.relu(&x)?,
                Step::Square(_) => {
                    let mut y = self.square(&x)?;
                    self.truncate(&mut y, FRAC_BITS);
                    y
                }
                Step::MaxPool(p) => self.max_groups(&x, &p.windows(images))?,
                Step::AvgPool(p) => {
                    let scale = encode(1.0 / (p.k * p.k) as f32);
                    let mut y: Vec<u64> = p
                        .windows(images)
                        .iter()
                        .map(|w| {
                            w.iter()
                                .fold(0u64, |s, &i| s.wrapping_add(x[i]))
                                .wrapping_mul(scale)
                        })
                        .collect();
                    self.truncate(&mut y, FRAC_BITS);
                    y
                }
            };
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cross_the_wire_and_bad_plans_are_refused() -> Result<()> {
        for name in ["lenet", "mlp", "cnn", "minionn", "chameleon", "lenet-sq"] {
            let m = ppml_nn::zoo::architecture(name)
                .ok_or(HybridError::Unsupported { what: name.into() })?;
            let plan = Plan::compile(&m)?;
            assert_eq!(Plan::from_words(&plan.to_words())?, plan);
        }
        let m = ppml_nn::zoo::architecture("lenet").ok_or(HybridError::Unsupported {
            what: "lenet".into(),
        })?;
        let plan = Plan::compile(&m)?;
        // ReLU before max-pooling runs after it.
        assert!(matches!(plan.steps()[1], Step::MaxPool(_)));
        assert_eq!(plan.steps()[2], Step::Relu(20 * 12 * 12));
        let w = plan.to_words();
        for (i, v) in [(0, 2), (1, 300), (4, 9), (6, 1 << 30), (3, 11), (13, 0)] {
            let mut bad = w.clone();
            bad[i] = v;
            assert!(Plan::from_words(&bad).is_err(), "word {i} = {v} accepted");
        }
        assert!(Plan::from_words(&w[..w.len() - 1]).is_err());
        assert!(Plan::from_words(&[]).is_err());
        Ok(())
    }
}
