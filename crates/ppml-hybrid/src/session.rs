//! The two roles of a session over any [`Link`]: the same code runs as the in-process backend
//! (the server on threads of this process, over TLS on 127.0.0.1) and as two processes
//! (`ppml hybrid-server` and its client).
//!
//! Messages: the server sends its model's public [`Plan`]; the client sends its RLWE public key;
//! both run the base OTs. Then the client sends [`Request`]s: [`Request::Offline`], both parties
//! make the random OTs of a forward pass over `n` images and add them to their pools
//! (input-independent: this is the offline phase, which may run long before the query);
//! [`Request::Query`] and the forward pass over `n` images, which consumes the pools' oldest
//! OTs, after which the server sends its shares of the logits; [`Request::Bye`] ends the
//! session.

use std::sync::Arc;
use std::time::Instant;

use ppml_rlwe::{Params, PublicKey, SecretKey};

use crate::error::{HybridError, Result};
use crate::link::{Link, LinkStats};
use crate::ot::{OtCount, Role};
use crate::party::Party;
use crate::plan::{LinearRole, Plan, ServerModel};

/// Images per request at most (a bound on what a client may ask of a server).
pub const MAX_IMAGES_PER_CALL: u64 = 1 << 16;
/// Random OTs a party keeps in its pools at most (both directions together; about 32 bytes
/// each on the server, 17 on the client): the server refuses an offline request beyond it.
pub const MAX_POOL_OTS: usize = 48 << 20;

/// Request tags (the first word).
mod tag {
    pub const BYE: u64 = 0;
    pub const OFFLINE: u64 = 1;
    pub const QUERY: u64 = 2;
}

/// A client's request to the server, one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Both parties make the random OTs of a forward pass over `images` images.
    Offline {
        /// Images, 1 to [`MAX_IMAGES_PER_CALL`].
        images: u64,
    },
    /// A forward pass over `images` images.
    Query {
        /// Images, 1 to [`MAX_IMAGES_PER_CALL`].
        images: u64,
    },
    /// The session is over.
    Bye,
}

impl Request {
    /// The message's words.
    pub fn to_words(self) -> Vec<u64> {
        match self {
            Request::Offline { images } => vec![tag::OFFLINE, images],
            Request::Query { images } => vec![tag::QUERY, images],
            Request::Bye => vec![tag::BYE],
        }
    }

    /// Decodes a message.
    ///
    /// # Errors
    /// [`HybridError::InvalidContent`] for an unknown tag, a length that does not fit it, or an
    /// image count outside 1 to [`MAX_IMAGES_PER_CALL`].
    pub fn from_words(words: &[u64]) -> Result<Self> {
        let images = |n: u64| (1..=MAX_IMAGES_PER_CALL).contains(&n);
        match *words {
            [tag::BYE] => Ok(Request::Bye),
            [tag::OFFLINE, n] if images(n) => Ok(Request::Offline { images: n }),
            [tag::QUERY, n] if images(n) => Ok(Request::Query { images: n }),
            _ => Err(HybridError::InvalidContent {
                what: "request header",
                index: 0,
            }),
        }
    }
}

/// Cost of one phase of a request, as the client sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseCost {
    /// Wall time.
    pub seconds: f64,
    /// Bytes sent by both parties.
    pub bytes: u64,
    /// Rounds: the client's flights (a flight and the server's answer make one round).
    pub rounds: u64,
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

    /// Adds another phase's costs.
    pub fn add(&mut self, o: &PhaseCost) {
        self.seconds += o.seconds;
        self.bytes += o.bytes;
        self.rounds += o.rounds;
    }
}

/// The OTs of `count`, both directions together.
pub fn pooled(count: OtCount) -> usize {
    count.a + count.b
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

    /// Random OTs in this party's pools, not used yet (both directions).
    pub fn pooled(&self) -> usize {
        let (pairs, pads) = self.party.ot.left();
        pairs + pads
    }

    /// The offline phase for a later query of `images` images: both parties make its random
    /// OTs (nothing here depends on an image).
    pub fn prepare(&mut self, images: usize) -> Result<PhaseCost> {
        let count = self.plan.ot_count(images);
        if images == 0
            || images as u64 > MAX_IMAGES_PER_CALL
            || self.pooled() + pooled(count) > MAX_POOL_OTS
        {
            return Err(HybridError::PoolFull {
                images,
                limit: MAX_POOL_OTS,
            });
        }
        let p = &mut self.party;
        let (s0, t0) = (p.stats(), Instant::now());
        p.link.send(
            Request::Offline {
                images: images as u64,
            }
            .to_words(),
        )?;
        p.ot.extend(p.link.as_mut(), count)?;
        Ok(PhaseCost::since(p.stats(), s0, t0.elapsed().as_secs_f64()))
    }

    /// Classifies `images` images (fixed-point inputs `x`, `[n][input_len]`) with OTs prepared
    /// earlier: returns the logits (fixed point) and the cost of this online phase.
    pub fn call(&mut self, x: Vec<u64>, images: usize) -> Result<(Vec<u64>, PhaseCost)> {
        if images == 0
            || x.len() != images * self.plan.input_len()
            || images as u64 > MAX_IMAGES_PER_CALL
        {
            return Err(HybridError::Shape {
                what: "call input",
                left: x.len(),
                right: images * self.plan.input_len(),
            });
        }
        let p = &mut self.party;
        let need = self.plan.ot_count(images);
        p.ot.check(need)?;
        let (s0, t0) = (p.stats(), Instant::now());
        p.link.send(
            Request::Query {
                images: images as u64,
            }
            .to_words(),
        )?;
        let role = LinearRole::Client(&self.sk);
        let y = p.forward(&self.plan, &self.params, &role, x, images)?;
        let y0 = p.link.recv_exact("logit shares", y.len())?;
        let logits = y.iter().zip(y0).map(|(a, b)| a.wrapping_add(b)).collect();
        Ok((
            logits,
            PhaseCost::since(p.stats(), s0, t0.elapsed().as_secs_f64()),
        ))
    }

    /// Tells the server the session is over.
    pub fn close(mut self) -> Result<()> {
        self.party.link.send(Request::Bye.to_words())
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

    /// Serves requests until the client ends the session; returns the number of images
    /// classified.
    pub fn serve(&mut self) -> Result<u64> {
        let mut served = 0;
        loop {
            let (offline, images) = match Request::from_words(&self.party.link.recv()?)? {
                Request::Bye => return Ok(served),
                Request::Offline { images } => (true, images as usize),
                Request::Query { images } => (false, images as usize),
            };
            let plan = self.model.plan();
            let count = plan.ot_count(images);
            let p = &mut self.party;
            if offline {
                let (pairs, pads) = p.ot.left();
                if pairs + pads + pooled(count) > MAX_POOL_OTS {
                    return Err(HybridError::PoolFull {
                        images,
                        limit: MAX_POOL_OTS,
                    });
                }
                p.ot.extend(p.link.as_mut(), count)?;
                continue;
            }
            p.ot.check(count)?;
            let zeros = vec![0u64; images * plan.input_len()];
            let role = LinearRole::Server(&self.model, &self.pk);
            let y = p.forward(plan, &self.params, &role, zeros, images)?;
            p.link.send(y)?;
            served += images as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_headers_are_refused() -> Result<()> {
        for r in [
            Request::Offline { images: 1 },
            Request::Query {
                images: MAX_IMAGES_PER_CALL,
            },
            Request::Bye,
        ] {
            assert_eq!(Request::from_words(&r.to_words())?, r);
        }
        for bad in [
            &[][..],
            &[tag::QUERY, 0],
            &[tag::OFFLINE, MAX_IMAGES_PER_CALL + 1],
            &[tag::BYE, 1],
            &[3, 1],
        ] {
            assert!(Request::from_words(bad).is_err());
        }
        Ok(())
    }
}
