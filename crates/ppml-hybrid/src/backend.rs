//! [`HybridBackend`]: the client of a session. It is the network client over TLS 1.3: to a
//! [`LocalServer`] on threads of this process at `127.0.0.1` (the default, with a certificate
//! made for it), or to a `ppml hybrid-server` ([`HybridBackend::remote`]). Either way every byte
//! and round it reports crossed that socket.
//!
//! Offline and online phases: the random OTs of a query depend on nothing but the architecture
//! and the number of images, so they are made ahead, at setup, for `pool_depth` queries of
//! `pool_batch` images (the CLI's `--pool-depth` and `--batch`). A query that finds them ready
//! runs online only and reports their cost apart ([`CallStats`]'s `offline_bytes` and
//! `offline_time`); any other query makes its OTs while it runs (`offline_on_demand`, and then
//! they count in its time and `bytes_sent`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupFacts, SetupReport};
use ppml_nn::{Model, Tensor};
use ppml_rlwe::Params;
use ppml_tls::{Acceptor, Ca, Connector, Trust};

use crate::error::{HybridError, Result};
use crate::fixed::{decode, encode};
use crate::plan::{Plan, ServerModel};
use crate::server::LocalServer;
use crate::session::{pooled, ClientSession, PhaseCost, MAX_POOL_OTS};
use crate::tls::TlsLink;

/// How long a party waits for its peer before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(600);
/// The name of the in-process server's certificate (and the default a client checks).
pub const SERVER_NAME: &str = "hybrid-server";

/// Random OTs made per offline phase of a query made on demand at most (about 50 bytes each
/// in memory, both parties together): larger batches run in chunks of images, each with its
/// offline and online phase.
const MAX_OTS_PER_CHUNK: usize = 1 << 22;

/// A `ppml hybrid-server` to connect to: its address and whom to trust as that server.
#[derive(Clone, Debug)]
pub struct RemoteServer {
    /// `host:port`.
    pub addr: String,
    /// The CA (or pinned certificate) and the name the server's certificate must carry.
    pub tls: Connector,
}

/// A connected client and, in-process, its server. Fields drop in order: the client ends its
/// session before the server is waited for.
struct Connected {
    client: Option<ClientSession>,
    _server: Option<LocalServer>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close();
        }
    }
}

/// Two-party hybrid inference: the client here, the server on threads or at an address.
pub struct HybridBackend {
    remote: Option<RemoteServer>,
    pool_batch: usize,
    pool_depth: usize,
    session: Option<Connected>,
    /// The offline cost of each query's OTs made ahead (of `pool_batch` images), oldest first.
    ahead: VecDeque<PhaseCost>,
}

impl Default for HybridBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl HybridBackend {
    /// Both roles in this process (the server on threads, over TLS on 127.0.0.1); OTs made
    /// ahead for one query of one image.
    pub fn new() -> Self {
        Self {
            remote: None,
            pool_batch: 1,
            pool_depth: 1,
            session: None,
            ahead: VecDeque::new(),
        }
    }

    /// The client of a `ppml hybrid-server`.
    pub fn remote(server: RemoteServer) -> Self {
        Self {
            remote: Some(server),
            ..Self::new()
        }
    }

    /// Makes the random OTs of `depth` queries of `batch` images ahead, at setup (0: none;
    /// fewer if they would exceed [`MAX_POOL_OTS`]).
    pub fn with_pool(mut self, batch: usize, depth: usize) -> Self {
        self.pool_batch = batch.max(1);
        self.pool_depth = depth;
        self
    }

    fn connect(&self, model: &Model, params: &Arc<Params>) -> Result<Connected> {
        match &self.remote {
            Some(r) => {
                let link = TlsLink::connect(&r.addr, &r.tls, TIMEOUT)?;
                Ok(Connected {
                    client: Some(ClientSession::connect(Box::new(link), Arc::clone(params))?),
                    _server: None,
                })
            }
            None => {
                // A CA and a server identity of this process alone, made afresh per setup.
                let ca = Ca::generate("ppml in-process hybrid CA")?;
                let tls = Acceptor::new(&ca.identity(SERVER_NAME)?, None)?;
                let connector =
                    Connector::new(&Trust::Roots(vec![ca.cert().clone()]), None, SERVER_NAME)?;
                let model = Arc::new(ServerModel::new(model, params)?);
                let server = LocalServer::spawn(Arc::clone(params), model, tls, TIMEOUT)?;
                let link = TlsLink::connect(&server.addr().to_string(), &connector, TIMEOUT)?;
                Ok(Connected {
                    client: Some(ClientSession::connect(Box::new(link), Arc::clone(params))?),
                    _server: Some(server),
                })
            }
        }
    }

    fn start(&mut self, model: &Model) -> Result<SetupReport> {
        // A second setup replaces the first session (and ends its server).
        self.session = None;
        self.ahead.clear();
        let t = Instant::now();
        let params = Params::default_set()?;
        let plan = Plan::compile(model)?;
        let mut session = self.connect(model, &params)?;
        let client = session.client.as_mut().ok_or(HybridError::NotSetUp)?;
        if *client.plan() != plan {
            return Err(HybridError::Unsupported {
                what: format!("the server runs another architecture than {}", model.name),
            });
        }
        let handshake = client.bytes();
        let mut made = PhaseCost::default();
        // Room is left for a query made on demand (one chunk).
        let headroom = MAX_OTS_PER_CHUNK.max(pooled(plan.ot_count(1)));
        for _ in 0..self.pool_depth {
            if client.pooled() + pooled(plan.ot_count(self.pool_batch)) + headroom > MAX_POOL_OTS {
                break;
            }
            let cost = client.prepare(self.pool_batch)?;
            made.add(&cost);
            self.ahead.push_back(cost);
        }
        let notes = vec![
            format!(
                "RLWE N = {}, log2 q = {:.1}, t = 2^64; 2 x 128 base OTs; random OTs per image: {} server-to-client, {} client-to-server",
                params.degree(),
                params.modulus_bits(),
                plan.ot_count(1).a,
                plan.ot_count(1).b,
            ),
            match &self.remote {
                None => "transport: TLS 1.3 over 127.0.0.1 to server threads of this process".into(),
                Some(r) => format!("transport: TLS 1.3 to the server at {} (certificate for {})", r.addr, r.tls.server_name()),
            },
            if self.ahead.is_empty() {
                "no offline phase ahead: every query makes its random OTs while it runs".into()
            } else {
                format!(
                    "offline phase: random OTs made at setup for {} queries of {} image(s) ({:.2} MB, {:.3} s); later queries and queries of other sizes make theirs while they run",
                    self.ahead.len(),
                    self.pool_batch,
                    made.bytes as f64 / 1e6,
                    made.seconds
                )
            },
        ];
        self.session = Some(session);
        Ok(SetupReport {
            seconds: t.elapsed().as_secs_f64(),
            bytes_sent: handshake + made.bytes,
            facts: SetupFacts {
                ring_degree: Some(params.degree()),
                ..SetupFacts::default()
            },
            notes,
        })
    }

    fn run(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let c = self
            .session
            .as_mut()
            .and_then(|s| s.client.as_mut())
            .ok_or(HybridError::NotSetUp)?;
        let n = images.batch();
        let plan = c.plan().clone();
        if images.item_len() != plan.input_len() || n == 0 {
            return Err(HybridError::Shape {
                what: "input images",
                left: images.item_len(),
                right: plan.input_len(),
            });
        }
        let x: Vec<u64> = images.data().iter().map(|&v| encode(v)).collect();
        let mut stats = CallStats::default();
        let mut logits = Vec::with_capacity(n * plan.output_len());
        if n == self.pool_batch && !self.ahead.is_empty() {
            let made = self.ahead.pop_front().unwrap_or_default();
            let (y, online) = c.call(x, n)?;
            logits = y;
            stats.offline_bytes = made.bytes;
            stats.offline_time = Duration::from_secs_f64(made.seconds);
            stats.bytes_sent = online.bytes;
            stats.rounds = online.rounds;
        } else {
            let per_image = plan.ot_count(1);
            let chunk = (MAX_OTS_PER_CHUNK / (per_image.a + per_image.b).max(1)).clamp(1, n);
            stats.offline_on_demand = true;
            for part in x.chunks(chunk * plan.input_len()) {
                let k = part.len() / plan.input_len();
                let offline = c.prepare(k)?;
                let (y, online) = c.call(part.to_vec(), k)?;
                logits.extend(y);
                stats.bytes_sent += offline.bytes + online.bytes;
                stats.rounds += offline.rounds + online.rounds;
            }
        }
        // The client and the server are the only parties: all traffic is the client's.
        stats.client_bytes = stats.bytes_sent;
        let out = Tensor::new(
            vec![n, plan.output_len()],
            logits.into_iter().map(decode).collect(),
        )
        .map_err(|e| HybridError::Unsupported {
            what: e.to_string(),
        })?;
        Ok((out, stats))
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
