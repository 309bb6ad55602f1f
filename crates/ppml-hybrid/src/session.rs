//! The two roles of a session over any [`Link`]: the same code runs as two threads of
//! [`crate::HybridBackend`] and as two processes (`ppml hybrid-server` and its client).
//!
//! Messages: the server sends its model's public [`Plan`]; the client sends its RLWE public key;
//! both run the base OTs. Then, per call, the client sends `[images]`, both make the call's random
//! OTs (offline), run the forward pass (online), and the server sends its shares of the logits.
//! `[0]` ends the session.

use std::sync::Arc;
use std::time::Instant;

use ppml_rlwe::{Params, PublicKey, SecretKey};

use crate::error::{HybridError, Result};
use crate::link::{Link, LinkStats};
use crate::ot::Role;
use crate::party::Party;
use crate::plan::{LinearRole, Plan, ServerModel};

/// Images per call at most (a bound on what a client may ask of a server).
pub const MAX_IMAGES_PER_CALL: u64 = 1 << 16;

/// Cost of one phase of a call, as the client sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseCost {
    /// Wall time.
    pub seconds: f64,
    /// Bytes sent by both parties.
    pub bytes: u64,
    /// Rounds: the client's flights (a flight and the server's answer make one round).
    pub rounds: u64,
}

/// A call's cost split into the input-independent offline phase (OT extension) and the online
/// phase.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallSplit {
    /// Random OT extension, both directions.
    pub offline: PhaseCost,
    /// Everything that depends on the image.
    pub online: PhaseCost,
}

impl PhaseCost {
    fn since(now: LinkStats, then: LinkStats, seconds: f64) -> Self {
        let d = now.since(then);
        Self {
            seconds,
            bytes: d.bytes_sent + d.bytes_received,
            rounds: d.flights,
        }
    }

    fn add(&mut self, o: &PhaseCost) {
        self.seconds += o.seconds;
        self.bytes += o.bytes;
        self.rounds += o.rounds;
    }
}

impl CallSplit {
    /// Adds another call's costs.
    pub fn add(&mut self, o: &CallSplit) {
        self.offline.add(&o.offline);
        self.online.add(&o.online);
    }
}

/// The client's side of a session.
pub struct ClientSession {
    party: Party,
    params: Arc<Params>,
    sk: SecretKey,
    plan: Plan,
}

impl ClientSession {
    /// Receives the server's plan, sends the public key, runs the base OTs.
    pub fn connect(mut link: Box<dyn Link>, params: Arc<Params>) -> Result<Self> {
        let words = link.recv()?;
        let plan = Plan::from_words(&words)?;
        let sk = SecretKey::generate(&params)?;
        link.send(sk.public_key()?.to_words().to_vec())?;
        let party = Party::new(link, Role::Client)?;
        Ok(Self {
            party,
            params,
            sk,
            plan,
        })
    }

    /// The server's plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Bytes both parties sent so far.
    pub fn bytes(&self) -> u64 {
        let s = self.party.stats();
        s.bytes_sent + s.bytes_received
    }

    /// Classifies `images` images (fixed-point inputs `x`, `[n][input_len]`): returns the
    /// logits (fixed point) and the call's cost.
    pub fn call(&mut self, x: Vec<u64>, images: usize) -> Result<(Vec<u64>, CallSplit)> {
        if x.len() != images * self.plan.input_len() || images as u64 > MAX_IMAGES_PER_CALL {
            return Err(HybridError::Shape {
                what: "call input",
                left: x.len(),
                right: images * self.plan.input_len(),
            });
        }
        let p = &mut self.party;
        let s0 = p.stats();
        let t0 = Instant::now();
        p.link.send(vec![images as u64])?;
        p.ot.refill(p.link.as_mut(), self.plan.ot_count(images))?;
        let offline = PhaseCost::since(p.stats(), s0, t0.elapsed().as_secs_f64());
        let s1 = p.stats();
        let t1 = Instant::now();
        let role = LinearRole::Client(&self.sk);
        let y = p.forward(&self.plan, &self.params, &role, x, images)?;
        let y0 = p.link.recv_exact("logit shares", y.len())?;
        let logits = y.iter().zip(y0).map(|(a, b)| a.wrapping_add(b)).collect();
        let online = PhaseCost::since(p.stats(), s1, t1.elapsed().as_secs_f64());
        Ok((logits, CallSplit { offline, online }))
    }

    /// Tells the server the session is over.
    pub fn close(mut self) -> Result<()> {
        self.party.link.send(vec![0])
    }
}

/// The server's side of a session.
pub struct ServerSession {
    party: Party,
    params: Arc<Params>,
    model: Arc<ServerModel>,
    pk: PublicKey,
}

impl ServerSession {
    /// Sends the plan, receives the client's public key, runs the base OTs.
    pub fn accept(
        mut link: Box<dyn Link>,
        params: Arc<Params>,
        model: Arc<ServerModel>,
    ) -> Result<Self> {
        link.send(model.plan().to_words())?;
        let words = link.recv_exact("public key", params.poly_words() + 4)?;
        let pk = PublicKey::from_words(&params, &words)?;
        let party = Party::new(link, Role::Server)?;
        Ok(Self {
            party,
            params,
            model,
            pk,
        })
    }

    /// Serves calls until the client ends the session; returns the number of images served.
    pub fn serve(&mut self) -> Result<u64> {
        let mut served = 0;
        loop {
            let head = self.party.link.recv_exact("call header", 1)?;
            let images = head[0];
            if images == 0 {
                return Ok(served);
            }
            if images > MAX_IMAGES_PER_CALL {
                return Err(HybridError::InvalidContent {
                    what: "call header",
                    index: 0,
                });
            }
            let n = images as usize;
            let plan = self.model.plan();
            let p = &mut self.party;
            p.ot.refill(p.link.as_mut(), plan.ot_count(n))?;
            let zeros = vec![0u64; n * plan.input_len()];
            let role = LinearRole::Server(&self.model, &self.pk);
            let y = p.forward(plan, &self.params, &role, zeros, n)?;
            p.link.send(y)?;
            served += images;
        }
    }
}
