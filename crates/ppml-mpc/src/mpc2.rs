//! `mpc2`: two computing parties with additive sharing and a dealer for correlated randomness.
//!
//! A value is `x = x0 + x1` (mod 2^64), party `p` holding `x_p`. The dealer (a third thread or
//! process, party id 2) never receives anything: it derives each party's randomness from a PRG
//! key it shares with that party and sends party 1 only correction words (CrypTen's
//! seed-compressed provider).
//! - Linear layers use matrix- and convolution-shaped Beaver triples: the weights are masked once
//!   at setup (`E_w = W - B` is opened); per query the input is masked in its own shape
//!   (`E = X - A` is opened, im2col applied to `E` and `A` locally, so convolutions open the
//!   image, not its patch matrix) and the dealer supplies `C = B im2col(A)` (or `A B^T`).
//!   One round; each party sends one word per input value, the dealer one per output value.
//! - `x^2` uses a Beaver square pair `(a, a^2)`: one round.
//! - Truncation is SecureML's local share truncation: no communication, at most one unit in
//!   the last place of error, fails with probability about `|x| / 2^63` per value.
//! - ReLU and max-pooling use the exact comparison of [`crate::compare`] with the dealer as
//!   helper.

use std::time::Instant;

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};

use crate::compare::{max_windows, Comparator, Role};
use crate::error::{MpcError, Result};
use crate::linalg::{conv, conv_stacked, matmul, pool_sum, pool_windows};
use crate::mpc3::CLIENT;
use crate::plan::{
    add_bias_channels, decode_output, encode_conv, encode_input, encode_linear, plan, Step,
};
use crate::prg::{Prg, PrgKey, STREAM_AUX};
use crate::ring::{self, trunc_first, trunc_second, FixedPoint};
use crate::session::run_nodes;
use crate::transport::Transport;
use crate::MpcConfig;

/// A computing party's parameters for one step.
enum Weights {
    None,
    /// `[cout, 2 * patch]`: `[W_p | E_w]`, and the bias share at `2f` bits.
    Conv {
        wcat: Vec<u64>,
        bias: Vec<u64>,
    },
    /// `[2 * in, out]`: `[W_p^T ; E_w^T]`, and the bias share.
    Linear {
        wtcat: Vec<u64>,
        bias: Vec<u64>,
    },
}

/// The dealer's weight masks for one step.
enum Masks {
    None,
    /// `B`, `[cout, patch]`.
    Conv(Vec<u64>),
    /// `B^T`, `[in, out]`.
    Linear(Vec<u64>),
}

enum Node {
    Party {
        id: usize,
        weights: Vec<Weights>,
        prg: Box<Prg>,
    },
    Dealer {
        masks: Vec<Masks>,
        prg0: Box<Prg>,
        prg1: Box<Prg>,
    },
}

/// A party's layout of its weight share `wp`, the opened `E_w = W - B` and its bias share.
fn layout(step: &Step, wp: &[u64], e: &[u64], bias: Vec<u64>) -> Weights {
    match *step {
        Step::Conv { g, .. } => {
            let patch = g.patch();
            let mut wcat = Vec::with_capacity(2 * wp.len());
            for o in 0..g.cout {
                wcat.extend_from_slice(&wp[o * patch..(o + 1) * patch]);
                wcat.extend_from_slice(&e[o * patch..(o + 1) * patch]);
            }
            Weights::Conv { wcat, bias }
        }
        Step::Linear { .. } => Weights::Linear {
            wtcat: [wp, e].concat(),
            bias,
        },
        _ => Weights::None,
    }
}

fn trunc(id: usize, v: &mut [u64], bits: u32) {
    if id == 0 {
        v.iter_mut().for_each(|x| *x = trunc_first(*x, bits));
    } else {
        v.iter_mut().for_each(|x| *x = trunc_second(*x, bits));
    }
}

/// Party `id`'s (0 or 1) part of the plan on `n` images with input share `x`.
#[expect(
    clippy::too_many_arguments,
    reason = "a hot kernel or protocol step with its operands spelled out"
)]
fn run_party(
    net: &mut dyn Transport,
    id: usize,
    weights: &[Weights],
    prg: &mut Prg,
    steps: &[Step],
    (fp, cmp): (FixedPoint, &Comparator),
    mut x: Vec<u64>,
    n: usize,
) -> Result<Vec<u64>> {
    let f = fp.frac_bits();
    let peer = 1 - id;
    for (s, step) in steps.iter().enumerate() {
        x = match (*step, &weights[s]) {
            (Step::Conv { g, .. }, Weights::Conv { wcat, bias }) => {
                let a = prg.u64s(n * g.in_len());
                let e_mine = ring::sub(&x, &a);
                let e = ring::add(&e_mine, &net.exchange(peer, e_mine.clone())?);
                let mut z = conv_stacked(&g, wcat, &e, &a, n);
                let c = if id == 0 {
                    prg.u64s(z.len())
                } else {
                    net.recv_exact(2, z.len())?
                };
                ring::add_assign(&mut z, &c);
                add_bias_channels(&mut z, bias, g.positions());
                trunc(id, &mut z, f);
                z
            }
            (Step::Linear { inp, out, .. }, Weights::Linear { wtcat, bias }) => {
                let a = prg.u64s(n * inp);
                let e_mine = ring::sub(&x, &a);
                let e = ring::add(&e_mine, &net.exchange(peer, e_mine.clone())?);
                let mut xs = Vec::with_capacity(2 * n * inp);
                for j in 0..n {
                    xs.extend_from_slice(&e[j * inp..(j + 1) * inp]);
                    xs.extend_from_slice(&a[j * inp..(j + 1) * inp]);
                }
                let mut z = matmul(&xs, wtcat, n, 2 * inp, out);
                let c = if id == 0 {
                    prg.u64s(z.len())
                } else {
                    net.recv_exact(2, z.len())?
                };
                ring::add_assign(&mut z, &c);
                add_bias_channels(&mut z, bias, 1);
                trunc(id, &mut z, f);
                z
            }
            (Step::Square { .. }, _) => {
                let a = prg.u64s(x.len());
                let e_mine = ring::sub(&x, &a);
                let e = ring::add(&e_mine, &net.exchange(peer, e_mine.clone())?);
                let sq = if id == 0 {
                    prg.u64s(x.len())
                } else {
                    net.recv_exact(2, x.len())?
                };
                let mut z: Vec<u64> = (0..x.len())
                    .map(|j| {
                        let own = e[j].wrapping_mul(2).wrapping_mul(a[j]).wrapping_add(sq[j]);
                        if id == 0 {
                            own.wrapping_add(e[j].wrapping_mul(e[j]))
                        } else {
                            own
                        }
                    })
                    .collect();
                trunc(id, &mut z, f);
                z
            }
            (Step::AvgPool(g), _) => {
                let c = fp.reciprocal(g.k * g.k);
                let mut z: Vec<u64> = pool_sum(&g, &x, n)
                    .into_iter()
                    .map(|v| v.wrapping_mul(c))
                    .collect();
                trunc(id, &mut z, f);
                z
            }
            (Step::Relu { .. }, _) => cmp.relu(net, &mut role(id, prg), &x, x.len())?,
            (Step::MaxPool(g), _) => {
                let wins = pool_windows(&g, &x, n);
                max_windows(net, &mut role(id, prg), cmp, wins, n * g.out_len())?
            }
            _ => return Err(MpcError::PartyFailed { party: id }),
        };
    }
    Ok(x)
}

/// The dealer's role in a comparison.
fn dealer<'a>(prg0: &'a mut Prg, prg1: &'a mut Prg) -> Role<'a> {
    Role::H {
        a: 0,
        b: 1,
        prg_a: prg0,
        prg_b: prg1,
    }
}

fn role(id: usize, prg: &mut Prg) -> Role<'_> {
    if id == 0 {
        Role::A {
            peer: 1,
            helper: 2,
            prg,
        }
    } else {
        Role::B {
            peer: 0,
            helper: 2,
            prg,
        }
    }
}

/// The dealer's part of the plan for `n` images.
fn run_dealer(
    net: &mut dyn Transport,
    masks: &[Masks],
    prg0: &mut Prg,
    prg1: &mut Prg,
    steps: &[Step],
    cmp: &Comparator,
    (n, in_len): (usize, usize),
) -> Result<()> {
    let mut len = in_len;
    for (s, step) in steps.iter().enumerate() {
        match (*step, &masks[s]) {
            (Step::Conv { g, .. }, Masks::Conv(b)) => {
                let a = ring::add(&prg0.u64s(n * g.in_len()), &prg1.u64s(n * g.in_len()));
                let c = conv(&g, b, &a, n);
                let c0 = prg0.u64s(c.len());
                net.send(1, ring::sub(&c, &c0))?;
                len = g.out_len();
            }
            (Step::Linear { inp, out, .. }, Masks::Linear(bt)) => {
                let a = ring::add(&prg0.u64s(n * inp), &prg1.u64s(n * inp));
                let c = matmul(&a, bt, n, inp, out);
                let c0 = prg0.u64s(c.len());
                net.send(1, ring::sub(&c, &c0))?;
                len = out;
            }
            (Step::Square { .. }, _) => {
                let a = ring::add(&prg0.u64s(n * len), &prg1.u64s(n * len));
                let sq0 = prg0.u64s(n * len);
                net.send(
                    1,
                    a.iter()
                        .zip(&sq0)
                        .map(|(a, s)| a.wrapping_mul(*a).wrapping_sub(*s))
                        .collect(),
                )?;
            }
            (Step::AvgPool(g), _) => len = g.out_len(),
            (Step::Relu { .. }, _) => {
                cmp.relu(net, &mut dealer(prg0, prg1), &[], n * len)?;
            }
            (Step::MaxPool(g), _) => {
                len = g.out_len();
                let wins = vec![Vec::new(); g.k * g.k];
                max_windows(net, &mut dealer(prg0, prg1), cmp, wins, n * len)?;
            }
            _ => return Err(MpcError::PartyFailed { party: 2 }),
        }
    }
    Ok(())
}

struct State {
    steps: Vec<Step>,
    nodes: Vec<Node>,
    in_len: usize,
    input: Vec<usize>,
    classes: usize,
}

/// The `mpc2` backend: two parties and a dealer, run as threads in-process.
pub struct Mpc2Backend {
    config: MpcConfig,
    fp: FixedPoint,
    state: Option<State>,
}

impl Mpc2Backend {
    /// A backend with the given configuration (see [`MpcConfig`]).
    pub fn new(config: MpcConfig) -> Result<Self> {
        let fp = FixedPoint::new(config.frac_bits)?;
        Ok(Self {
            config,
            fp,
            state: None,
        })
    }

    fn setup_inner(&mut self, model: &Model) -> Result<SetupReport> {
        let start = Instant::now();
        let (steps, in_len, classes) = plan(model)?;
        let mut owner = Prg::from_os();
        let (k0, k1) = (PrgKey::random(), PrgKey::random());
        let (mut p0, mut p1) = (k0.prg(STREAM_AUX), k1.prg(STREAM_AUX));
        let (mut d0, mut d1) = (k0.prg(STREAM_AUX), k1.prg(STREAM_AUX));
        let mut w0s = Vec::new();
        let mut w1s = Vec::new();
        let mut masks = Vec::new();
        let mut words = 0u64;
        for step in &steps {
            // Owner shares W; the dealer's mask B comes from the PRGs; E_w = W - B is opened.
            let layer = match *step {
                Step::Conv { layer, g } => Some((encode_conv(model, layer, &self.fp), Some(g))),
                Step::Linear { layer, .. } => Some((encode_linear(model, layer, &self.fp), None)),
                _ => None,
            };
            let Some(((w, b), conv_geom)) = layer else {
                w0s.push(Weights::None);
                w1s.push(Weights::None);
                masks.push(Masks::None);
                continue;
            };
            let wa = owner.u64s(w.len());
            let wb = ring::sub(&w, &wa);
            let ba = owner.u64s(b.len());
            let bb = ring::sub(&b, &ba);
            let (m0, m1) = (p0.u64s(w.len()), p1.u64s(w.len()));
            let (dm0, dm1) = (d0.u64s(w.len()), d1.u64s(w.len()));
            let e = ring::add(&ring::sub(&wa, &m0), &ring::sub(&wb, &m1));
            let mask = ring::add(&dm0, &dm1);
            words += 2 * (w.len() + b.len()) as u64 + 2 * w.len() as u64;
            let step = *step;
            w0s.push(layout(&step, &wa, &e, ba));
            w1s.push(layout(&step, &wb, &e, bb));
            masks.push(match conv_geom {
                Some(_) => Masks::Conv(mask),
                None => Masks::Linear(mask),
            });
        }
        let nodes = vec![
            Node::Party {
                id: 0,
                weights: w0s,
                prg: Box::new(p0),
            },
            Node::Party {
                id: 1,
                weights: w1s,
                prg: Box::new(p1),
            },
            Node::Dealer {
                masks,
                prg0: Box::new(d0),
                prg1: Box::new(d1),
            },
        ];
        self.state = Some(State {
            steps,
            nodes,
            in_len,
            input: model.input.to_vec(),
            classes,
        });
        Ok(SetupReport {
            seconds: start.elapsed().as_secs_f64(),
            bytes_sent: 8 * words + 2 * 32,
            notes: vec![
                format!("Z_2^64 fixed point with {} fractional bits", self.fp.frac_bits()),
                "2 parties with additive sharing and a dealer; dealer traffic seed-compressed, counted per query".into(),
                "linear layers: matrix/convolution Beaver triples with weights masked once at setup".into(),
                Comparator::new(self.config.comparison, self.fp.frac_bits()).describe(),
                "truncation: local SecureML (<= 1 ulp, fails w.p. ~|x|/2^63)".into(),
            ],
        })
    }

    fn infer_inner(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let fp = self.fp;
        let timeout = self.config.timeout;
        let st = self
            .state
            .as_mut()
            .ok_or(MpcError::NotSetUp { backend: "mpc2" })?;
        let x = encode_input(images, st.in_len, &st.input, &fp)?;
        let cmp = Comparator::new(self.config.comparison, fp.frac_bits());
        let n = images.batch();
        let x0 = Prg::from_os().u64s(x.len());
        let inputs = [x0.clone(), ring::sub(&x, &x0)];
        let (steps, in_len) = (&st.steps, st.in_len);
        let res = run_nodes(&mut st.nodes, timeout, |i, node, net| match node {
            Node::Party { id, weights, prg } => run_party(
                net,
                *id,
                weights,
                prg,
                steps,
                (fp, &cmp),
                inputs[i].clone(),
                n,
            ),
            Node::Dealer { masks, prg0, prg1 } => {
                run_dealer(net, masks, prg0, prg1, steps, &cmp, (n, in_len)).map(|()| Vec::new())
            }
        });
        let (outs, stats) = match res {
            Ok(r) => r,
            Err(e) => {
                self.state = None;
                return Err(e);
            }
        };
        let logits = decode_output(&outs[..outs.len().min(2)], n, st.classes, &fp)?;
        let client_words = (2 * x.len() + 2 * n * st.classes) as u64;
        Ok((
            logits,
            CallStats {
                bytes_sent: stats.iter().map(|s| s.bytes_sent).sum::<u64>() + 8 * client_words,
                rounds: stats.iter().map(|s| s.rounds).max().unwrap_or(0) + 2,
            },
        ))
    }
}

/// One `mpc2` node `id` (0 and 1: computing parties, 2: dealer) over a mesh whose node
/// [`CLIENT`] is the client. The dealer draws the PRG keys it shares with each party; party 0
/// (the model owner) shares `model`'s weights with party 1 (the others use only the
/// architecture); the parties open `E_w = W - B`. Then answers queries until the client says
/// goodbye; returns the number of queries answered.
pub(crate) fn serve(
    net: &mut dyn Transport,
    id: usize,
    model: &Model,
    fp: FixedPoint,
    cmp: Comparator,
) -> Result<usize> {
    let (steps, in_len, classes) = plan(model)?;
    let mut node = if id == 2 {
        let (k0, k1) = (PrgKey::random(), PrgKey::random());
        net.send(0, k0.to_words())?;
        net.send(1, k1.to_words())?;
        Node::Dealer {
            masks: Vec::new(),
            prg0: Box::new(k0.prg(STREAM_AUX)),
            prg1: Box::new(k1.prg(STREAM_AUX)),
        }
    } else {
        let k = PrgKey::from_words(&net.recv_exact(2, 4)?);
        Node::Party {
            id,
            weights: Vec::new(),
            prg: Box::new(k.prg(STREAM_AUX)),
        }
    };
    let mut owner = Prg::from_os();
    for step in &steps {
        let (w, b) = match *step {
            Step::Conv { layer, .. } => encode_conv(model, layer, &fp),
            Step::Linear { layer, .. } => encode_linear(model, layer, &fp),
            _ => {
                match &mut node {
                    Node::Party { weights, .. } => weights.push(Weights::None),
                    Node::Dealer { masks, .. } => masks.push(Masks::None),
                }
                continue;
            }
        };
        match &mut node {
            Node::Dealer { masks, prg0, prg1 } => {
                let mask = ring::add(&prg0.u64s(w.len()), &prg1.u64s(w.len()));
                masks.push(match step {
                    Step::Conv { .. } => Masks::Conv(mask),
                    _ => Masks::Linear(mask),
                });
            }
            Node::Party { weights, prg, .. } => {
                let (wp, bp) = if id == 0 {
                    let wa = owner.u64s(w.len());
                    let ba = owner.u64s(b.len());
                    net.send(1, ring::sub(&w, &wa))?;
                    net.send(1, ring::sub(&b, &ba))?;
                    (wa, ba)
                } else {
                    let wb = net.recv_exact(0, w.len())?;
                    (wb, net.recv_exact(0, b.len())?)
                };
                let mine = ring::sub(&wp, &prg.u64s(w.len()));
                let e = ring::add(&mine, &net.exchange(1 - id, mine.clone())?);
                weights.push(layout(step, &wp, &e, bp));
            }
        }
    }
    let mut queries = 0;
    loop {
        let n = match net.recv_exact(CLIENT, 1)?.first() {
            Some(&n) if n > 0 => {
                usize::try_from(n).map_err(|_| MpcError::PartyFailed { party: id })?
            }
            _ => return Ok(queries),
        };
        match &mut node {
            Node::Dealer { masks, prg0, prg1 } => {
                run_dealer(net, masks, prg0, prg1, &steps, &cmp, (n, in_len))?;
            }
            Node::Party { weights, prg, .. } => {
                let len = n
                    .checked_mul(in_len)
                    .ok_or(MpcError::PartyFailed { party: id })?;
                let x = net.recv_exact(CLIENT, len)?;
                let y = run_party(net, id, weights, prg, &steps, (fp, &cmp), x, n)?;
                if y.len() != n * classes {
                    return Err(MpcError::PartyFailed { party: id });
                }
                net.send(CLIENT, y)?;
            }
        }
        queries += 1;
    }
}

/// The client's side of one `mpc2` query over a mesh (node [`CLIENT`]): shares the encoded
/// images `x` (`n` of them) additively to parties 0 and 1 (the dealer only learns `n`) and
/// reconstructs the `n * classes` outputs.
pub(crate) fn query(
    net: &mut dyn Transport,
    x: &[u64],
    n: usize,
    classes: usize,
) -> Result<Vec<u64>> {
    let x0 = Prg::from_os().u64s(x.len());
    let x1 = ring::sub(x, &x0);
    for i in 0..3 {
        net.send(i, vec![n as u64])?;
    }
    net.send(0, x0)?;
    net.send(1, x1)?;
    let mut y = net.recv_exact(0, n * classes)?;
    ring::add_assign(&mut y, &net.recv_exact(1, n * classes)?);
    Ok(y)
}

impl Backend for Mpc2Backend {
    fn name(&self) -> &str {
        "mpc2"
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        Ok(self.setup_inner(model)?)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        Ok(self.infer_inner(images)?)
    }
}
