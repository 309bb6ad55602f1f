//! Oblivious transfer: base OTs, IKNP extension, and the pools of precomputed random OTs that the
//! online protocols consume (Beaver's OT precomputation: a random OT becomes a chosen-message OT
//! with one bit from the receiver and the two masked messages from the sender).
//!
//! Two extension instances run side by side, one per direction: in direction A the server sends
//! and the client chooses, in direction B the roles are swapped.

pub mod base;
pub mod iknp;
pub mod ot16;

use crate::error::{HybridError, Result};
use crate::link::{pack_bits, unpack_bits, Link};
use iknp::{IknpReceiver, IknpSender};

/// Which of the two parties this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The model owner (party 0: the first additive share).
    Server,
    /// The image owner (party 1).
    Client,
}

/// Random OTs to make in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtCount {
    /// Direction A: server sends, client chooses.
    pub a: usize,
    /// Direction B: client sends, server chooses.
    pub b: usize,
}

impl std::ops::Add for OtCount {
    type Output = OtCount;
    fn add(self, o: OtCount) -> OtCount {
        OtCount {
            a: self.a + o.a,
            b: self.b + o.b,
        }
    }
}

impl std::ops::Mul<usize> for OtCount {
    type Output = OtCount;
    fn mul(self, k: usize) -> OtCount {
        OtCount {
            a: self.a * k,
            b: self.b * k,
        }
    }
}

/// One party's OT machinery: both extension instances and the pools they filled.
pub struct OtPools {
    role: Role,
    sender: IknpSender,
    receiver: IknpReceiver,
    pairs: Vec<[u128; 2]>,
    next_pair: usize,
    choices: Vec<bool>,
    pads: Vec<u128>,
    next_pad: usize,
}

/// What a receiver keeps between its request and the sender's response.
pub struct OtRequest {
    choices: Vec<bool>,
    pads: Vec<u128>,
}

impl OtPools {
    /// Runs the base OTs of both directions (256 public-key OTs in all).
    pub fn setup(link: &mut dyn Link, role: Role) -> Result<Self> {
        let (sender, receiver) = match role {
            Role::Server => {
                let s = IknpSender::setup(link)?;
                (s, IknpReceiver::setup(link)?)
            }
            Role::Client => {
                let r = IknpReceiver::setup(link)?;
                (IknpSender::setup(link)?, r)
            }
        };
        Ok(Self {
            role,
            sender,
            receiver,
            pairs: Vec::new(),
            next_pair: 0,
            choices: Vec::new(),
            pads: Vec::new(),
            next_pad: 0,
        })
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The offline phase: replaces the pools by `count` fresh random OTs (input-independent).
    pub fn refill(&mut self, link: &mut dyn Link, count: OtCount) -> Result<()> {
        let (send_n, recv_n) = match self.role {
            Role::Server => (count.a, count.b),
            Role::Client => (count.b, count.a),
        };
        // Direction A first, then B, on both sides.
        let (pairs, (choices, pads)) = match self.role {
            Role::Server => {
                let p = self.sender.extend(link, send_n)?;
                (p, self.receiver.extend(link, recv_n)?)
            }
            Role::Client => {
                let r = self.receiver.extend(link, recv_n)?;
                (self.sender.extend(link, send_n)?, r)
            }
        };
        self.pairs = pairs;
        self.next_pair = 0;
        self.choices = choices;
        self.pads = pads;
        self.next_pad = 0;
        Ok(())
    }

    /// Random OTs left as (sender pairs, receiver pads).
    pub fn left(&self) -> (usize, usize) {
        (
            self.pairs.len() - self.next_pair,
            self.pads.len() - self.next_pad,
        )
    }

    /// Takes `n` random OTs where this party sends.
    pub fn take_pairs(&mut self, n: usize) -> Result<&[[u128; 2]]> {
        let left = self.pairs.len() - self.next_pair;
        if n > left {
            return Err(HybridError::OtExhausted {
                kind: "sender",
                needed: n,
                left,
            });
        }
        let s = &self.pairs[self.next_pair..self.next_pair + n];
        self.next_pair += n;
        Ok(s)
    }

    /// Takes `n` random OTs where this party chooses: (random choices, chosen messages).
    pub fn take_pads(&mut self, n: usize) -> Result<(&[bool], &[u128])> {
        let left = self.pads.len() - self.next_pad;
        if n > left {
            return Err(HybridError::OtExhausted {
                kind: "receiver",
                needed: n,
                left,
            });
        }
        let r = self.next_pad..self.next_pad + n;
        self.next_pad += n;
        Ok((&self.choices[r.clone()], &self.pads[r]))
    }

    /// Receiver, step 1 of a chosen-message OT of words: the request to send (`c ^ b` per OT).
    pub fn request(&mut self, wanted: &[bool]) -> Result<(Vec<u64>, OtRequest)> {
        let (c, p) = self.take_pads(wanted.len())?;
        let d: Vec<bool> = c.iter().zip(wanted).map(|(c, w)| c ^ w).collect();
        Ok((
            pack_bits(&d),
            OtRequest {
                choices: wanted.to_vec(),
                pads: p.to_vec(),
            },
        ))
    }

    /// Sender: the response to a peer's request for messages `(m_0, m_1)` per OT (2 words each).
    pub fn respond(&mut self, request: &[u64], msgs: &[[u64; 2]]) -> Result<Vec<u64>> {
        let d = unpack_bits("OT request", request, msgs.len())?;
        let pairs = self.take_pairs(msgs.len())?;
        let mut out = Vec::with_capacity(2 * msgs.len());
        for ((m, p), d) in msgs.iter().zip(pairs).zip(d) {
            let (p0, p1) = if d { (p[1], p[0]) } else { (p[0], p[1]) };
            out.push(m[0] ^ p0 as u64);
            out.push(m[1] ^ p1 as u64);
        }
        Ok(out)
    }
}

impl OtRequest {
    /// Receiver, step 2: the chosen messages from the sender's response.
    pub fn finish(self, response: &[u64]) -> Result<Vec<u64>> {
        if response.len() != 2 * self.choices.len() {
            return Err(HybridError::Malformed {
                what: "OT response",
                expected: 2 * self.choices.len(),
                got: response.len(),
            });
        }
        Ok(self
            .choices
            .iter()
            .zip(&self.pads)
            .zip(response.chunks_exact(2))
            .map(|((&b, p), e)| e[usize::from(b)] ^ *p as u64)
            .collect())
    }
}

/// Receiver of a chosen-message OT of words over `link` (request, then response).
pub fn ot_receive(pools: &mut OtPools, link: &mut dyn Link, wanted: &[bool]) -> Result<Vec<u64>> {
    let (req, state) = pools.request(wanted)?;
    link.send(req)?;
    let resp = link.recv_exact("OT response", 2 * wanted.len())?;
    state.finish(&resp)
}

/// Sender of a chosen-message OT of words over `link`.
pub fn ot_send(pools: &mut OtPools, link: &mut dyn Link, msgs: &[[u64; 2]]) -> Result<()> {
    let req = link.recv_exact("OT request", msgs.len().div_ceil(64))?;
    let resp = pools.respond(&req, msgs)?;
    link.send(resp)
}
