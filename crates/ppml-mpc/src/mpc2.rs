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
//! - ReLU and max-pooling use the exact comparison of [`crate::comparison`] with the dealer as
//!   helper.

use ppml_nn::Model;

use crate::comparison::role::Role;
use crate::comparison::{max_windows, Comparator};
use crate::error::{MpcError, Result};
use crate::linalg::{conv, conv_stacked, matmul, pool_sum, pool_windows};
use crate::material::Source;
use crate::mesh::MATERIAL;
use crate::plan::{add_bias_channels, encode_conv, encode_linear, Step};
use crate::prg::{Prg, PrgKey, STREAM_AUX};
use crate::ring::{self, trunc_first, trunc_second, FixedPoint};
use crate::transport::Transport;

/// A computing party's parameters for one step.
pub(crate) enum Weights {
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
pub(crate) enum Masks {
    None,
    /// `B`, `[cout, patch]`.
    Conv(Vec<u64>),
    /// `B^T`, `[in, out]`.
    Linear(Vec<u64>),
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
    (id, helper): (usize, usize),
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
                    net.recv_exact(helper, z.len())?
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
                    net.recv_exact(helper, z.len())?
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
                    net.recv_exact(helper, x.len())?
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
            (Step::Relu { .. }, _) => cmp.relu(net, &mut role(id, helper, prg), &x, x.len())?,
            (Step::MaxPool(g), _) => {
                let wins = pool_windows(&g, &x, n);
                max_windows(net, &mut role(id, helper, prg), cmp, wins, n * g.out_len())?
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

fn role(id: usize, helper: usize, prg: &mut Prg) -> Role<'_> {
    if id == 0 {
        Role::A {
            peer: 1,
            helper,
            prg,
        }
    } else {
        Role::B {
            peer: 0,
            helper,
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

/// What a node keeps between sessions, made once at start-up.
pub(crate) enum Node {
    /// Computing party 0 or 1: its weight shares and the opened `E_w = W - B`.
    Party { weights: Vec<Weights> },
    /// The dealer: the weight masks `B`.
    Dealer { masks: Vec<Masks> },
}

/// Start-up over the mesh's start-up session. The dealer draws one PRG key per party, used
/// only here, to mask the weights: party 0 (the model owner) additively shares `model`'s
/// weights with party 1 (the others use only the architecture), and the parties open
/// `E_w = W - B`, where the dealer alone knows `B`.
pub(crate) fn startup(
    net: &mut dyn Transport,
    id: usize,
    model: &Model,
    steps: &[Step],
    fp: &FixedPoint,
) -> Result<Node> {
    let (mut node, mut prgs) = if id == 2 {
        let (k0, k1) = (PrgKey::random(), PrgKey::random());
        net.send(0, k0.to_words())?;
        net.send(1, k1.to_words())?;
        let prgs = vec![k0.prg(STREAM_AUX), k1.prg(STREAM_AUX)];
        (Node::Dealer { masks: Vec::new() }, prgs)
    } else {
        let k = PrgKey::from_words(&net.recv_exact(2, 4)?);
        let prgs = vec![k.prg(STREAM_AUX)];
        (
            Node::Party {
                weights: Vec::new(),
            },
            prgs,
        )
    };
    let mut owner = Prg::from_os();
    for step in steps {
        let (w, b) = match *step {
            Step::Conv { layer, .. } => encode_conv(model, layer, fp),
            Step::Linear { layer, .. } => encode_linear(model, layer, fp),
            _ => {
                match &mut node {
                    Node::Party { weights } => weights.push(Weights::None),
                    Node::Dealer { masks } => masks.push(Masks::None),
                }
                continue;
            }
        };
        match &mut node {
            Node::Dealer { masks } => {
                let mask = prgs
                    .iter_mut()
                    .fold(vec![0; w.len()], |m, p| ring::add(&m, &p.u64s(w.len())));
                masks.push(match step {
                    Step::Conv { .. } => Masks::Conv(mask),
                    _ => Masks::Linear(mask),
                });
            }
            Node::Party { weights } => {
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
                let m = prgs
                    .iter_mut()
                    .map(|p| p.u64s(w.len()))
                    .next()
                    .unwrap_or_default();
                let mine = ring::sub(&wp, &m);
                let e = ring::add(&mine, &net.exchange(1 - id, mine.clone())?);
                weights.push(layout(step, &wp, &e, bp));
            }
        }
    }
    Ok(node)
}

/// A session's correlated randomness: the dealer draws fresh PRG keys for both parties, so no
/// two sessions ever share a mask.
pub(crate) enum Session {
    /// A computing party's PRG (shared with the dealer).
    Party(Box<Prg>),
    /// The dealer's PRGs shared with parties 0 and 1.
    Dealer(Box<Prg>, Box<Prg>),
}

/// Opens a session for node `id` (2: the dealer).
pub(crate) fn open(net: &mut dyn Transport, id: usize) -> Result<Session> {
    if id == 2 {
        let (k0, k1) = (PrgKey::random(), PrgKey::random());
        net.send(0, k0.to_words())?;
        net.send(1, k1.to_words())?;
        Ok(Session::Dealer(
            Box::new(k0.prg(STREAM_AUX)),
            Box::new(k1.prg(STREAM_AUX)),
        ))
    } else {
        let k = PrgKey::from_words(&net.recv_exact(2, 4)?);
        Ok(Session::Party(Box::new(k.prg(STREAM_AUX))))
    }
}

/// One query of `n` images at node `id`: a party's output share (`x` is its input share), or
/// nothing at the dealer (`x` empty). With [`Source::Pool`] the dealer's part was made ahead
/// ([`make_material`]) and arrives on the offline lane: the parties read their PRG key and the
/// dealer's messages from [`MATERIAL`], and the dealer does nothing online.
#[expect(
    clippy::too_many_arguments,
    reason = "a protocol step with its operands spelled out"
)]
pub(crate) fn query(
    net: &mut dyn Transport,
    id: usize,
    node: &Node,
    session: &mut Session,
    steps: &[Step],
    (fp, cmp): (FixedPoint, &Comparator),
    x: Vec<u64>,
    (n, in_len, source): (usize, usize, Source),
) -> Result<Vec<u64>> {
    match (node, session, source) {
        (Node::Party { weights }, Session::Party(prg), Source::Online) => {
            run_party(net, (id, 2), weights, prg, steps, (fp, cmp), x, n)
        }
        (Node::Party { weights }, Session::Party(_), Source::Pool) => {
            let mut prg = PrgKey::from_words(&net.recv_exact(MATERIAL, 4)?).prg(STREAM_AUX);
            run_party(
                net,
                (id, MATERIAL),
                weights,
                &mut prg,
                steps,
                (fp, cmp),
                x,
                n,
            )
        }
        (Node::Dealer { masks }, Session::Dealer(prg0, prg1), Source::Online) => {
            run_dealer(net, masks, prg0, prg1, steps, cmp, (n, in_len)).map(|()| Vec::new())
        }
        (Node::Dealer { .. }, Session::Dealer(..), Source::Pool) => Ok(Vec::new()),
        _ => Err(MpcError::PartyFailed { party: id }),
    }
}

/// The dealer's part of one future query of `n` images, sent ahead on the offline lane `lane`:
/// fresh PRG keys for both parties, then every correction word and comparison key.
pub(crate) fn make_material(
    lane: &mut dyn Transport,
    node: &Node,
    steps: &[Step],
    cmp: &Comparator,
    (n, in_len): (usize, usize),
) -> Result<()> {
    let Node::Dealer { masks } = node else {
        return Err(MpcError::PartyFailed { party: lane.id() });
    };
    let (k0, k1) = (PrgKey::random(), PrgKey::random());
    lane.send(0, k0.to_words())?;
    lane.send(1, k1.to_words())?;
    let (mut prg0, mut prg1) = (k0.prg(STREAM_AUX), k1.prg(STREAM_AUX));
    run_dealer(lane, masks, &mut prg0, &mut prg1, steps, cmp, (n, in_len))
}

/// The client's additive shares of the encoded images `x` for parties 0 and 1.
pub(crate) fn share_input(x: &[u64]) -> [Vec<u64>; 2] {
    let x0 = Prg::from_os().u64s(x.len());
    let x1 = ring::sub(x, &x0);
    [x0, x1]
}
