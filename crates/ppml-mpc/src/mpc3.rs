//! `mpc3`: three parties, 2-out-of-3 replicated secret sharing, honest majority, semi-honest
//! (ABY3/Falcon style).
//!
//! A value `x = x0 + x1 + x2` (mod 2^64) is held as party `i` holding `(x_i, x_{i+1})`.
//! - Linear layers (convolution, fully connected, `x^2`, average pooling): each party computes
//!   its 3-out-of-3 share `z_i` of the result locally (`(W_i + W_{i+1}) x_i + W_i x_{i+1}`, one
//!   stacked matrix product), then re-shares and truncates it in one round.
//! - Re-sharing with truncation: SecureML's share-wise truncation (Mohassel and
//!   Zhang, S&P 2017) applied to the 2-out-of-2 split of `z` between parties {0, 1} and party 2,
//!   as ABY3's first truncation method does (Mohassel and Rindal, CCS 2018), with
//!   the split masked by PRGs so that it needs no round of its own: parties 0 and 1 exchange
//!   `z_i - r_i` (the mask `r_i` drawn from the PRG each shares with party 2) and so both learn
//!   `c = z_0 + z_1 - r_0 - r_1`, uniform to them; party 2 holds `w = z_2 + r_0 + r_1`, uniform
//!   as well. The truncated value `trunc(c) + trunc(w)` is re-shared as `x_1 = trunc(c)` (parties
//!   0 and 1), `x_0` from party 0's and 2's PRG and `x_2 = trunc(w) - x_0`, which party 2 sends
//!   to party 1. Per value, three ring elements in one round (the separate re-share and
//!   truncation this replaces took four in two). Correct to one unit in the last place except
//!   with probability about `|z| / 2^63` per value (see [`crate::ring::trunc_second`]).
//! - ReLU and max-pooling: the replicated sharing is viewed locally as the 2-out-of-2 sharing
//!   `(x0 + x1, x2)` between parties 0 and 1, party 2 acts as the helper of the exact
//!   comparison of [`crate::comparison`] (it sees nothing derived from `x`), and the result is
//!   re-shared into replicated form with one round (parties 0 and 1 exchange one word each).

use std::sync::Arc;

use ppml_nn::Model;

use crate::comparison::role::Role;
use crate::comparison::{max_windows, Comparator};
use crate::error::{MpcError, Result};
use crate::linalg::{conv_stacked, matmul, pool_sum, pool_windows};
use crate::material::Source;
use crate::mesh::MATERIAL;
use crate::plan::{add_bias_channels, encode_conv, encode_linear, Step};
use crate::prg::{Prg, PrgKey, STREAM_AUX, STREAM_MASK};
use crate::ring::{self, trunc_first, trunc_second, FixedPoint};
use crate::transport::Transport;

/// One party's shares of one layer's parameters, laid out for the stacked product.
pub(crate) enum Weights {
    None,
    /// `[cout, 2 * patch]`: `[W_i + W_{i+1} | W_i]`, and the bias share `b_i` at `2f` bits.
    Conv {
        wcat: Vec<u64>,
        bias: Vec<u64>,
    },
    /// `[2 * in, out]`: `[(W_i + W_{i+1})^T ; W_i^T]`, and the bias share.
    Linear {
        wtcat: Vec<u64>,
        bias: Vec<u64>,
    },
}

/// One of the three computing parties.
pub(crate) struct Party {
    id: usize,
    weights: Arc<Vec<Weights>>,
    /// PRG of key `k_i`, shared with the previous party, for truncation masks.
    mask_prev: Prg,
    /// PRG of key `k_{i+1}`, shared with the next party, for truncation masks.
    mask_next: Prg,
    /// Auxiliary PRG of `k_i` (previous party).
    aux_prev: Prg,
    /// Auxiliary PRG of `k_{i+1}` (next party).
    aux_next: Prg,
}

/// Activations as one party holds them.
enum Act {
    /// Replicated: `(x_i, x_{i+1})`.
    Rss(Vec<u64>, Vec<u64>),
    /// Additive between parties 0 and 1 (`(x0 + x1, x2)`); empty at party 2.
    Add(Vec<u64>),
}

/// Party `id`'s layout of its shares `(W_i, W_{i+1})` and `b_i` of a linear step's parameters.
fn layout(step: &Step, wi: &[u64], wn: &[u64], bias: Vec<u64>) -> Weights {
    match *step {
        Step::Conv { g, .. } => {
            let patch = g.patch();
            let mut wcat = Vec::with_capacity(2 * wi.len());
            for o in 0..g.cout {
                let r = o * patch..(o + 1) * patch;
                wcat.extend(ring::add(&wi[r.clone()], &wn[r.clone()]));
                wcat.extend_from_slice(&wi[r]);
            }
            Weights::Conv { wcat, bias }
        }
        Step::Linear { .. } => {
            let mut wtcat = ring::add(wi, wn);
            wtcat.extend_from_slice(wi);
            Weights::Linear { wtcat, bias }
        }
        _ => Weights::None,
    }
}

impl Party {
    /// Party `id` with its weights, `k_prev` (the key `k_id` it shares with the previous party)
    /// and `k_next` (the key `k_{id+1}` it shares with the next one).
    fn new(id: usize, weights: Arc<Vec<Weights>>, k_prev: &PrgKey, k_next: &PrgKey) -> Self {
        Party {
            id,
            weights,
            mask_prev: k_prev.prg(STREAM_MASK),
            mask_next: k_next.prg(STREAM_MASK),
            aux_prev: k_prev.prg(STREAM_AUX),
            aux_next: k_next.prg(STREAM_AUX),
        }
    }

    /// The replicated sharing of `z / 2^bits` from the 3-out-of-3 sharing `z` (this party holds
    /// `z_i`), in one round (see the module docs). Party 0's and 2's common PRG gives the mask
    /// `r_0` and the share `x_0`, party 1's and 2's the mask `r_1`.
    fn trunc_reshare(
        &mut self,
        net: &mut dyn Transport,
        z: Vec<u64>,
        bits: u32,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let n = z.len();
        match self.id {
            0 | 1 => {
                let (peer, prg) = if self.id == 0 {
                    (1, &mut self.mask_prev)
                } else {
                    (0, &mut self.mask_next)
                };
                let masked = ring::sub(&z, &prg.u64s(n));
                net.send(peer, masked.clone())?;
                let other = net.recv_exact(peer, n)?;
                // c = z_0 + z_1 - r_0 - r_1, known to parties 0 and 1 alone.
                let x1: Vec<u64> = masked
                    .iter()
                    .zip(&other)
                    .map(|(a, b)| trunc_first(a.wrapping_add(*b), bits))
                    .collect();
                if self.id == 0 {
                    Ok((self.mask_prev.u64s(n), x1))
                } else {
                    Ok((x1, net.recv_exact(2, n)?))
                }
            }
            _ => {
                let (r0, x0) = (self.mask_next.u64s(n), self.mask_next.u64s(n));
                let r1 = self.mask_prev.u64s(n);
                // w = z_2 + r_0 + r_1, so that c + w = z; w is uniform: its truncation is
                // SecureML's second share.
                let x2: Vec<u64> = (0..n)
                    .map(|j| {
                        let w = z[j].wrapping_add(r0[j]).wrapping_add(r1[j]);
                        trunc_second(w, bits).wrapping_sub(x0[j])
                    })
                    .collect();
                net.send(1, x2.clone())?;
                Ok((x2, x0))
            }
        }
    }

    /// Local view of a replicated sharing as the additive sharing `(x0 + x1, x2)`.
    fn additive(&self, act: Act) -> Vec<u64> {
        match act {
            Act::Add(v) => v,
            Act::Rss(a, b) => match self.id {
                0 => ring::add(&a, &b),
                1 => b,
                _ => Vec::new(),
            },
        }
    }

    /// Back to replicated form (`len` values; one round between parties 0 and 1).
    fn replicated(
        &mut self,
        net: &mut dyn Transport,
        act: Act,
        len: usize,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        let y = match act {
            Act::Rss(a, b) => return Ok((a, b)),
            Act::Add(y) => y,
        };
        match self.id {
            0 => {
                let s0 = self.aux_prev.u64s(len);
                let v = ring::sub(&y, &s0);
                let w = net.exchange(1, v.clone())?;
                Ok((s0, ring::add(&v, &w)))
            }
            1 => {
                let s2 = self.aux_next.u64s(len);
                let w = ring::sub(&y, &s2);
                let v = net.exchange(0, w.clone())?;
                Ok((ring::add(&v, &w), s2))
            }
            _ => {
                let s2 = self.aux_prev.u64s(len);
                let s0 = self.aux_next.u64s(len);
                Ok((s2, s0))
            }
        }
    }

    /// Runs the plan on `n` images whose replicated input shares are `x`; returns this party's
    /// first output share (the client adds the three). With [`Source::Pool`], party 2's helper
    /// messages for the comparisons were made ahead ([`make_material`]): parties 0 and 1 read
    /// their comparison PRG key and those messages from [`MATERIAL`], and party 2 skips the
    /// comparisons.
    pub(crate) fn run(
        &mut self,
        net: &mut dyn Transport,
        steps: &[Step],
        (fp, cmp): (FixedPoint, &Comparator),
        x: (Vec<u64>, Vec<u64>),
        (n, source): (usize, Source),
    ) -> Result<Vec<u64>> {
        let f = fp.frac_bits();
        let mut pooled = match (source, self.id) {
            (Source::Pool, 0 | 1) => {
                Some(PrgKey::from_words(&net.recv_exact(MATERIAL, 4)?).prg(STREAM_AUX))
            }
            _ => None,
        };
        let mut act = Act::Rss(x.0, x.1);
        let mut len = act_len(&act) / n.max(1);
        for (s, step) in steps.iter().enumerate() {
            act = match *step {
                Step::Conv { g, .. } => {
                    let (a, b) = self.replicated(net, act, n * len)?;
                    let Weights::Conv { wcat, bias } = &self.weights[s] else {
                        return Err(internal(self.id));
                    };
                    let mut z = conv_stacked(&g, wcat, &a, &b, n);
                    add_bias_channels(&mut z, bias, g.positions());
                    len = g.out_len();
                    let (a, b) = self.trunc_reshare(net, z, f)?;
                    Act::Rss(a, b)
                }
                Step::Linear { inp, out, .. } => {
                    let (a, b) = self.replicated(net, act, n * len)?;
                    let Weights::Linear { wtcat, bias } = &self.weights[s] else {
                        return Err(internal(self.id));
                    };
                    let mut xs = Vec::with_capacity(2 * n * inp);
                    for j in 0..n {
                        xs.extend_from_slice(&a[j * inp..(j + 1) * inp]);
                        xs.extend_from_slice(&b[j * inp..(j + 1) * inp]);
                    }
                    let mut z = matmul(&xs, wtcat, n, 2 * inp, out);
                    add_bias_channels(&mut z, bias, 1);
                    len = out;
                    let (a, b) = self.trunc_reshare(net, z, f)?;
                    Act::Rss(a, b)
                }
                Step::Square { .. } => {
                    let (a, b) = self.replicated(net, act, n * len)?;
                    let z = a
                        .iter()
                        .zip(&b)
                        .map(|(x, y)| x.wrapping_mul(x.wrapping_add(y.wrapping_mul(2))))
                        .collect();
                    let (a, b) = self.trunc_reshare(net, z, f)?;
                    Act::Rss(a, b)
                }
                Step::AvgPool(g) => {
                    // A replicated sharing's first shares are a 3-out-of-3 sharing.
                    let (a, _) = self.replicated(net, act, n * len)?;
                    let c = fp.reciprocal(g.k * g.k);
                    let z = pool_sum(&g, &a, n)
                        .into_iter()
                        .map(|x| x.wrapping_mul(c))
                        .collect();
                    len = g.out_len();
                    let (a, b) = self.trunc_reshare(net, z, f)?;
                    Act::Rss(a, b)
                }
                Step::Relu { .. } => {
                    let y = self.additive(act);
                    Act::Add(match self.comparison_role(source, &mut pooled) {
                        Some(mut role) => cmp.relu(net, &mut role, &y, n * len)?,
                        None => Vec::new(),
                    })
                }
                Step::MaxPool(g) => {
                    let y = self.additive(act);
                    let wins = pool_windows(&g, &y, if self.id == 2 { 0 } else { n });
                    len = g.out_len();
                    Act::Add(match self.comparison_role(source, &mut pooled) {
                        Some(mut role) => max_windows(net, &mut role, cmp, wins, n * len)?,
                        None => Vec::new(),
                    })
                }
            };
        }
        let (a, _) = self.replicated(net, act, n * len)?;
        Ok(a)
    }

    /// This party's role in a comparison: online, party 2 helps with the PRGs it shares with
    /// the others; pooled, parties 0 and 1 use the query's PRG and read the helper's messages
    /// made ahead, and party 2 has no part (`None`).
    fn comparison_role<'a>(
        &'a mut self,
        source: Source,
        pooled: &'a mut Option<Prg>,
    ) -> Option<Role<'a>> {
        match (source, self.id, pooled.as_mut()) {
            (Source::Online, ..) => Some(self.role()),
            (Source::Pool, 0, Some(prg)) => Some(Role::A {
                peer: 1,
                helper: MATERIAL,
                prg,
            }),
            (Source::Pool, 1, Some(prg)) => Some(Role::B {
                peer: 0,
                helper: MATERIAL,
                prg,
            }),
            (Source::Pool, ..) => None,
        }
    }

    fn role(&mut self) -> Role<'_> {
        match self.id {
            0 => Role::A {
                peer: 1,
                helper: 2,
                prg: &mut self.aux_prev,
            },
            1 => Role::B {
                peer: 0,
                helper: 2,
                prg: &mut self.aux_next,
            },
            _ => Role::H {
                a: 0,
                b: 1,
                prg_a: &mut self.aux_next,
                prg_b: &mut self.aux_prev,
            },
        }
    }
}

fn act_len(a: &Act) -> usize {
    match a {
        Act::Rss(x, _) => x.len(),
        Act::Add(x) => x.len(),
    }
}

fn internal(party: usize) -> MpcError {
    // The plan and the weights are built together; a mismatch means the party's state is corrupt.
    MpcError::PartyFailed { party }
}

/// Replicated shares of `v`: `[(x0, x1), (x1, x2), (x2, x0)]`.
fn share3(v: &[u64], prg: &mut Prg) -> [(Vec<u64>, Vec<u64>); 3] {
    let s0 = prg.u64s(v.len());
    let s1 = prg.u64s(v.len());
    let s2: Vec<u64> = v
        .iter()
        .zip(s0.iter().zip(&s1))
        .map(|(x, (a, b))| x.wrapping_sub(*a).wrapping_sub(*b))
        .collect();
    [(s0.clone(), s1.clone()), (s1, s2.clone()), (s2, s0)]
}

/// Party `id`'s share of the model, made once at start-up over the mesh's start-up session:
/// party 0 (the model owner) replicated-shares every weight and bias, sending party `i` the pair
/// `(W_i, W_{i+1})` and `b_i`; the others use only `model`'s architecture.
pub(crate) fn startup(
    net: &mut dyn Transport,
    id: usize,
    model: &Model,
    steps: &[Step],
    fp: &FixedPoint,
) -> Result<Vec<Weights>> {
    let mut owner = Prg::from_os();
    let mut weights = Vec::with_capacity(steps.len());
    for step in steps {
        let (w, b) = match *step {
            Step::Conv { layer, .. } => encode_conv(model, layer, fp),
            Step::Linear { layer, .. } => encode_linear(model, layer, fp),
            _ => {
                weights.push(Weights::None);
                continue;
            }
        };
        let (wi, wn, bi) = if id == 0 {
            let (ws, bs) = (share3(&w, &mut owner), share3(&b, &mut owner));
            let [(w0, w1), (w1b, w2), (w2b, w0b)] = ws;
            let [(b0, _), (b1, _), (b2, _)] = bs;
            net.send(1, w1b)?;
            net.send(1, w2)?;
            net.send(1, b1)?;
            net.send(2, w2b)?;
            net.send(2, w0b)?;
            net.send(2, b2)?;
            (w0, w1, b0)
        } else {
            let wi = net.recv_exact(0, w.len())?;
            let wn = net.recv_exact(0, w.len())?;
            (wi, wn, net.recv_exact(0, b.len())?)
        };
        weights.push(layout(step, &wi, &wn, bi));
    }
    Ok(weights)
}

/// Opens a session for party `id`: fresh pairwise PRG keys (key `k_i` is drawn by party `i`
/// and shared with the previous party), so no two sessions ever share a mask.
pub(crate) fn open(
    net: &mut dyn Transport,
    id: usize,
    weights: Arc<Vec<Weights>>,
) -> Result<Party> {
    let k_prev = PrgKey::random();
    net.send((id + 2) % 3, k_prev.to_words())?;
    let k_next = PrgKey::from_words(&net.recv_exact((id + 1) % 3, 4)?);
    Ok(Party::new(id, weights, &k_prev, &k_next))
}

/// Party 2's helper part of the comparisons of one future query of `n` images, sent ahead on
/// the offline lane `lane`: fresh comparison PRG keys for parties 0 and 1, then every helper
/// message in the order the comparisons run.
pub(crate) fn make_material(
    lane: &mut dyn Transport,
    steps: &[Step],
    cmp: &Comparator,
    (n, in_len): (usize, usize),
) -> Result<()> {
    let (ka, kb) = (PrgKey::random(), PrgKey::random());
    lane.send(0, ka.to_words())?;
    lane.send(1, kb.to_words())?;
    let (mut prg_a, mut prg_b) = (ka.prg(STREAM_AUX), kb.prg(STREAM_AUX));
    let mut role = Role::H {
        a: 0,
        b: 1,
        prg_a: &mut prg_a,
        prg_b: &mut prg_b,
    };
    let mut len = in_len;
    for step in steps {
        match *step {
            Step::Conv { g, .. } => len = g.out_len(),
            Step::Linear { out, .. } => len = out,
            Step::AvgPool(g) => len = g.out_len(),
            Step::Square { .. } => {}
            Step::Relu { .. } => {
                cmp.relu(lane, &mut role, &[], n * len)?;
            }
            Step::MaxPool(g) => {
                len = g.out_len();
                max_windows(lane, &mut role, cmp, vec![Vec::new(); g.k * g.k], n * len)?;
            }
        }
    }
    Ok(())
}

/// The client's shares of the encoded images `x` for the three parties: party `i` gets
/// `(x_i, x_{i+1})`.
pub(crate) fn share_input(x: &[u64]) -> [(Vec<u64>, Vec<u64>); 3] {
    share3(x, &mut Prg::from_os())
}
