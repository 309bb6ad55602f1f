//! [`HybridBackend`]: both roles in this process, as two threads over an in-memory link running
//! the same protocol code as separate processes would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};
use ppml_rlwe::{Params, PublicKey, SecretKey};

use crate::error::{HybridError, Result};
use crate::fixed::{decode, encode};
use crate::link::{memory_pair, LinkStats};
use crate::ot::Role;
use crate::party::Party;
use crate::plan::{LinearRole, ServerModel};

/// How long a party waits for its peer before giving up.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Cost of one phase of a call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseCost {
    /// Wall time.
    pub seconds: f64,
    /// Bytes sent by both parties.
    pub bytes: u64,
    /// Sequential message rounds (the larger of the two parties' flights).
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

struct Session {
    params: Arc<Params>,
    model: ServerModel,
    server: Party,
    client: Party,
    sk: SecretKey,
    pk: PublicKey,
}

/// Two-party hybrid inference in this process.
#[derive(Default)]
pub struct HybridBackend {
    session: Option<Session>,
    last: Option<CallSplit>,
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>, who: &'static str) -> Result<T> {
    h.join().map_err(|_| HybridError::LinkClosed {
        peer: who,
        reason: "its thread panicked".into(),
    })?
}

fn cost(s0: LinkStats, s1: LinkStats, seconds: f64) -> PhaseCost {
    PhaseCost {
        seconds,
        bytes: s0.bytes_sent + s1.bytes_sent,
        rounds: s0.flights.max(s1.flights),
    }
}

impl HybridBackend {
    /// A backend with no session yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The offline/online split of the last call.
    pub fn last_split(&self) -> Option<CallSplit> {
        self.last
    }

    fn run(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let s = self
            .session
            .as_mut()
            .ok_or_else(|| HybridError::Unsupported {
                what: "inference before setup".into(),
            })?;
        let n = images.batch();
        let plan = s.model.plan().clone();
        if images.item_len() != plan.input_len() {
            return Err(HybridError::Shape {
                what: "input image",
                left: images.item_len(),
                right: plan.input_len(),
            });
        }
        let count = plan.ot_count(n);
        let (b0, b1) = (s.server.stats(), s.client.stats());
        let t0 = Instant::now();
        std::thread::scope(|sc| -> Result<()> {
            let server = &mut s.server;
            let h = sc.spawn(move || server.ot.refill(server.link.as_mut(), count));
            s.client.ot.refill(s.client.link.as_mut(), count)?;
            join(h, "server")
        })?;
        let offline = cost(
            s.server.stats().since(b0),
            s.client.stats().since(b1),
            t0.elapsed().as_secs_f64(),
        );
        let (b0, b1) = (s.server.stats(), s.client.stats());
        let t1 = Instant::now();
        let x: Vec<u64> = images.data().iter().map(|&v| encode(v)).collect();
        let zeros = vec![0u64; x.len()];
        let logits = std::thread::scope(|sc| -> Result<Vec<u64>> {
            let (server, params, model, pk) = (&mut s.server, &s.params, &s.model, &s.pk);
            let plan_s = plan.clone();
            let h = sc.spawn(move || -> Result<()> {
                let y =
                    server.forward(&plan_s, params, &LinearRole::Server(model, pk), zeros, n)?;
                server.link.send(y)
            });
            let y = s
                .client
                .forward(&plan, &s.params, &LinearRole::Client(&s.sk), x, n)?;
            let y0 = s.client.link.recv_exact("logit shares", y.len())?;
            join(h, "server")?;
            Ok(y.iter().zip(y0).map(|(a, b)| a.wrapping_add(b)).collect())
        })?;
        let online = cost(
            s.server.stats().since(b0),
            s.client.stats().since(b1),
            t1.elapsed().as_secs_f64(),
        );
        self.last = Some(CallSplit { offline, online });
        let out = Tensor::new(
            vec![n, plan.output_len()],
            logits.into_iter().map(decode).collect(),
        )
        .map_err(|e| HybridError::Unsupported {
            what: e.to_string(),
        })?;
        Ok((
            out,
            CallStats {
                bytes_sent: offline.bytes + online.bytes,
                rounds: offline.rounds + online.rounds,
            },
        ))
    }

    fn start(&mut self, model: &Model) -> Result<SetupReport> {
        let t = Instant::now();
        let params = Params::default_set()?;
        let server_model = ServerModel::new(model, &params)?;
        let (ls, lc) = memory_pair(TIMEOUT);
        let pw = params.poly_words() + 4;
        let (server, (client, sk), pk) = std::thread::scope(|sc| -> Result<_> {
            let p = params.clone();
            let h = sc.spawn(move || -> Result<(Party, PublicKey)> {
                let mut server = Party::new(Box::new(ls), Role::Server)?;
                let words = server.link.recv_exact("public key", pw)?;
                let pk = PublicKey::from_words(&p, &words)?;
                Ok((server, pk))
            });
            let mut client = Party::new(Box::new(lc), Role::Client)?;
            let sk = SecretKey::generate(&params)?;
            client.link.send(sk.public_key()?.to_words().to_vec())?;
            let (server, pk) = join(h, "server")?;
            Ok((server, (client, sk), pk))
        })?;
        let bytes = server.stats().bytes_sent + client.stats().bytes_sent;
        let notes = vec![
            format!(
                "RLWE N = {}, log2 q = {:.1}, t = 2^64; 2 x 128 base OTs; offline (OT extension) and online split per call",
                params.degree(),
                params.modulus_bits()
            ),
            format!("random OTs per image: {:?}", server_model.plan().ot_count(1)),
        ];
        self.session = Some(Session {
            params,
            model: server_model,
            server,
            client,
            sk,
            pk,
        });
        Ok(SetupReport {
            seconds: t.elapsed().as_secs_f64(),
            bytes_sent: bytes,
            notes,
        })
    }
}

impl Backend for HybridBackend {
    fn name(&self) -> &str {
        "hybrid"
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        Ok(self.start(model)?)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        Ok(self.run(images)?)
    }
}
