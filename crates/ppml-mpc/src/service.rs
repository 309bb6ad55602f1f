//! A party as a service: start-up once (pairwise keys and weight sharing over the mesh), then
//! client sessions, each on its own thread and its own mesh session, until stopped.
//!
//! The same code serves a client inside this process (the in-process backends, over socket
//! pairs) and a client of a deployment (over TLS): every byte and round a backend reports is
//! counted on a link, never computed.
//!
//! Client frames are words, typed in [`crate::messages`]: a [`Hello`] -> [`Ready`]; then per
//! query [`ToParty::Query`] followed by the party's input share frames (two under `mpc3`, one at
//! an `mpc2` party, none at the dealer) -> a [`QueryResult`]; [`ToParty::Bye`] ends the
//! session. Any failure is answered by [`ToClient::Error`] and ends that session only. The
//! offline figures are the material made ahead ([`crate::material`]) that the query used,
//! reported by party 2.

use std::sync::Arc;
use std::time::Duration;

use ppml_nn::Model;
use ppml_wire::frame::read_word_frame;
use ppml_wire::WireError;

use crate::comparison::Comparator;
use crate::error::{MpcError, Result};
use crate::link::Duplex;
use crate::material::{counters, Made, PoolPlan, PoolRequest, Provider, Source};
use crate::mesh::{Mesh, SessionNet, STARTUP};
use crate::mesh_frame::{SessionId, MAX_SESSION_ID};
use crate::messages::{Hello, QueryResult, Ready, ToClient, ToParty, VERSION};
use crate::plan::{plan, Step};
use crate::ring::FixedPoint;
use crate::transport::{Transport, TransportStats};
use crate::{mpc2, mpc3, Comparison, Protocol};

/// What all parties of a deployment and its clients agree on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setting {
    pub(crate) protocol: Protocol,
    pub(crate) fp: FixedPoint,
    pub(crate) comparison: Comparison,
}

impl Setting {
    fn words(&self) -> [u64; 3] {
        [
            match self.protocol {
                Protocol::Mpc2 => 2,
                Protocol::Mpc3 => 3,
            },
            u64::from(self.fp.frac_bits()),
            match self.comparison {
                Comparison::BitDecomposition => 0,
                Comparison::Fss => 1,
            },
        ]
    }

    /// How many input share frames party `id` receives per query.
    pub(crate) fn inputs(&self, id: usize) -> usize {
        match (self.protocol, id) {
            (Protocol::Mpc3, _) => 2,
            (Protocol::Mpc2, 0 | 1) => 1,
            (Protocol::Mpc2, _) => 0,
        }
    }

    /// The hello of session `sid` for a model with `in_len` inputs and `classes` outputs,
    /// asking for material made ahead as `pool` says.
    pub(crate) fn hello(
        &self,
        sid: SessionId,
        (in_len, classes): (usize, usize),
        pool: PoolRequest,
    ) -> Hello {
        Hello {
            version: VERSION,
            session: sid,
            setting: self.words(),
            in_len: in_len as u64,
            classes: classes as u64,
            pool: pool.batch as u64,
            pool_queries: pool.queries as u64,
        }
    }
}

/// Bounds on a client session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionLimits {
    /// Longest wait for a message that is due (a share frame, a peer's message).
    pub(crate) timeout: Duration,
    /// Longest wait for the client's next query.
    pub(crate) idle: Duration,
    /// Largest accepted frame, in words.
    pub(crate) max_frame_words: u64,
    /// How many queries' material the provider makes ahead per session (0: no offline phase).
    pub(crate) pool_depth: usize,
}

enum Shares {
    Mpc2(mpc2::Node),
    Mpc3(Arc<Vec<mpc3::Weights>>),
}

enum Session {
    Mpc2(mpc2::Session),
    Mpc3(Box<mpc3::Party>),
}

/// One party's long-lived state: the plan and its share of the model.
pub(crate) struct PartyState {
    id: usize,
    setting: Setting,
    steps: Vec<Step>,
    in_len: usize,
    classes: usize,
    shares: Shares,
    startup: TransportStats,
}

/// What one finished client session did at a party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Queries answered.
    pub queries: usize,
    /// This party's traffic to the other parties during the session.
    pub stats: TransportStats,
}

/// A duration in whole nanoseconds, saturated to a word.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl PartyState {
    /// Start-up of party `mesh.id()` on the mesh's start-up session: party 0 shares `model`'s
    /// weights (the others use only its architecture, which must be the same everywhere).
    pub(crate) fn start(mesh: &Arc<Mesh>, model: &Model, setting: Setting) -> Result<Self> {
        let id = mesh.id();
        let (steps, in_len, classes) = plan(model)?;
        let mut net = mesh.session(STARTUP)?;
        let shares = match setting.protocol {
            Protocol::Mpc2 => {
                Shares::Mpc2(mpc2::startup(&mut net, id, model, &steps, &setting.fp)?)
            }
            Protocol::Mpc3 => Shares::Mpc3(Arc::new(mpc3::startup(
                &mut net,
                id,
                model,
                &steps,
                &setting.fp,
            )?)),
        };
        Ok(Self {
            id,
            setting,
            steps,
            in_len,
            classes,
            shares,
            startup: net.stats(),
        })
    }

    /// Inputs per image.
    pub(crate) fn in_len(&self) -> usize {
        self.in_len
    }

    /// Outputs per image.
    pub(crate) fn classes(&self) -> usize {
        self.classes
    }

    /// This party's traffic during start-up.
    pub(crate) fn startup_stats(&self) -> TransportStats {
        self.startup
    }

    /// Serves one client over `conn` until it says goodbye or fails; a failure ends this
    /// session only (the client is told why, the other parties stop waiting for it at once).
    pub(crate) fn serve_client(
        &self,
        mesh: &Arc<Mesh>,
        conn: &mut dyn Duplex,
        limits: &SessionLimits,
    ) -> Result<SessionReport> {
        let mut net: Option<SessionNet> = None;
        let r = self.session(mesh, conn, limits, &mut net);
        match &r {
            Ok(report) => {
                tracing::info!(party = self.id, queries = report.queries, "session closed")
            }
            Err(e) => tracing::warn!(party = self.id, error = %e, "session failed"),
        }
        if let Err(e) = &r {
            if let Some(n) = &net {
                n.abort();
            }
            let _ = ToClient::Error(e.to_string()).write(conn);
        }
        r
    }

    fn session(
        &self,
        mesh: &Arc<Mesh>,
        conn: &mut dyn Duplex,
        limits: &SessionLimits,
        slot: &mut Option<SessionNet>,
    ) -> Result<SessionReport> {
        let id = self.id;
        let bad = |what: &'static str| MpcError::BadClient { party: id, what };
        let read = |conn: &mut dyn Duplex, wait: Duration| -> Result<Option<Vec<u64>>> {
            conn.set_read_timeout(Some(wait))
                .map_err(|_| bad("connection failed"))?;
            read_word_frame(&mut *conn, limits.max_frame_words).map_err(|e| match e {
                WireError::Io(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    bad("client silent beyond the timeout")
                }
                WireError::TooLarge { .. } => bad("frame too large"),
                _ => bad("connection failed"),
            })
        };
        let hello = read(conn, limits.timeout)?.ok_or(bad("closed before hello"))?;
        let ToParty::Hello(hello) = ToParty::decode(&hello).map_err(bad)? else {
            return Err(bad("not a hello"));
        };
        if hello.version != VERSION {
            return Err(bad("not a hello of this version"));
        }
        let expected = self
            .setting
            .hello(0, (self.in_len, self.classes), PoolRequest::default());
        if (hello.setting, hello.in_len, hello.classes)
            != (expected.setting, expected.in_len, expected.classes)
        {
            return Err(bad(
                "protocol, fixed point, comparison or model shape differ from the parties'",
            ));
        }
        let sid = hello.session;
        if sid == STARTUP || sid > MAX_SESSION_ID {
            return Err(bad("session id out of range"));
        }
        let pool = usize::try_from(hello.pool)
            .ok()
            .filter(|&b| (b as u64).saturating_mul(self.in_len as u64) <= limits.max_frame_words)
            .ok_or(bad("pool batch size out of range"))?;
        let pool = if limits.pool_depth == 0 { 0 } else { pool };
        let request = PoolRequest {
            batch: pool,
            queries: usize::try_from(hello.pool_queries)
                .map_err(|_| bad("pool query count out of range"))?,
        };
        let budget = request.budget();
        // Logs name sessions and sizes, never a share, key or image.
        tracing::info!(party = id, session = sid, pool, ?budget, "session opened");
        let net = slot.insert(mesh.session(sid)?);
        let mut session = match &self.shares {
            Shares::Mpc2(_) => Session::Mpc2(mpc2::open(net, id)?),
            Shares::Mpc3(w) => Session::Mpc3(Box::new(mpc3::open(net, id, w.clone())?)),
        };
        let opened = net.stats();
        let cmp = Comparator::new(self.setting.comparison, self.setting.fp.frac_bits());
        let counters = counters();
        std::thread::scope(|scope| {
            // Party 2 provides the material made ahead; it fills the pool before saying ready.
            let mut provider = None;
            let mut filled = Vec::new();
            if id == 2 && pool > 0 {
                let lane = mesh.offline_lane(sid)?;
                let (steps, cmp, in_len) = (&self.steps, &cmp, self.in_len);
                let make = move |lane: &mut dyn Transport| match &self.shares {
                    Shares::Mpc2(node) => {
                        mpc2::make_material(lane, node, steps, cmp, (pool, in_len))
                    }
                    Shares::Mpc3(_) => mpc3::make_material(lane, steps, cmp, (pool, in_len)),
                };
                let mut p = Provider::start(
                    scope,
                    &counters,
                    lane,
                    (limits.pool_depth, budget, limits.timeout),
                    make,
                );
                filled = p.fill()?;
                provider = Some(p);
            }
            let offline: Made = filled.iter().fold(Made::default(), |a, m| Made {
                bytes: a.bytes + m.bytes,
                time: a.time + m.time,
            });
            ToClient::Ready(Ready {
                startup_bytes: self.startup.bytes_sent,
                session_bytes: opened.bytes_sent,
                offline_bytes: offline.bytes,
                offline_nanos: nanos(offline.time),
            })
            .write(&mut *conn)
            .map_err(|_| bad("connection failed"))?;
            let mut queries = 0;
            let mut plan = PoolPlan::new(request);
            while let Some(q) = read(conn, limits.idle)? {
                match ToParty::decode(&q).map_err(bad)? {
                    ToParty::Bye => break,
                    ToParty::Query { images: n } => {
                        let n = usize::try_from(n).map_err(|_| bad("batch too large"))?;
                        let len = n
                            .checked_mul(self.in_len)
                            .filter(|&l| n > 0 && (l as u64) <= limits.max_frame_words)
                            .ok_or(bad("batch size out of range"))?;
                        let mut inputs = Vec::with_capacity(2);
                        for _ in 0..self.setting.inputs(id) {
                            let x = read(conn, limits.timeout)?.ok_or(bad("closed mid-query"))?;
                            if x.len() != len {
                                return Err(bad("input share of the wrong length"));
                            }
                            inputs.push(x);
                        }
                        let source = plan.next(n);
                        let (made, on_demand) = match (&provider, source) {
                            (Some(p), Source::Pool) => p.take(&mut filled)?,
                            _ => (Made::default(), false),
                        };
                        let before = net.stats();
                        let y = self.query(net, &mut session, inputs, (n, source), &cmp)?;
                        let after = net.stats();
                        ToClient::Result(QueryResult {
                            bytes_sent: after.bytes_sent - before.bytes_sent,
                            rounds: after.rounds - before.rounds,
                            offline_bytes: made.bytes,
                            offline_nanos: nanos(made.time),
                            on_demand,
                            y,
                        })
                        .write(&mut *conn)
                        .map_err(|_| bad("connection failed"))?;
                        queries += 1;
                    }
                    ToParty::Hello(_) => return Err(bad("unexpected frame")),
                }
            }
            Ok(SessionReport {
                queries,
                stats: net.stats(),
            })
        })
    }

    fn query(
        &self,
        net: &mut SessionNet,
        session: &mut Session,
        mut inputs: Vec<Vec<u64>>,
        (n, source): (usize, Source),
        cmp: &Comparator,
    ) -> Result<Vec<u64>> {
        let fp = self.setting.fp;
        let y = match (session, &self.shares) {
            (Session::Mpc2(s), Shares::Mpc2(node)) => mpc2::query(
                net,
                self.id,
                node,
                s,
                &self.steps,
                (fp, cmp),
                inputs.pop().unwrap_or_default(),
                (n, self.in_len, source),
            )?,
            (Session::Mpc3(party), Shares::Mpc3(_)) => {
                let b = inputs.pop().unwrap_or_default();
                let a = inputs.pop().unwrap_or_default();
                party.run(net, &self.steps, (fp, cmp), (a, b), (n, source))?
            }
            _ => return Err(MpcError::PartyFailed { party: self.id }),
        };
        let want = if self.setting.inputs(self.id) == 0 {
            0
        } else {
            n * self.classes
        };
        if y.len() != want {
            return Err(MpcError::PartyFailed { party: self.id });
        }
        Ok(y)
    }
}
