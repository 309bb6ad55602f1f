//! [`HybridBackend`]: the client of a session. In-process (the default) the server runs on a
//! thread of this process over an in-memory link, the same [`crate::session`] code as the
//! separate `ppml hybrid-server`; with [`HybridBackend::remote`] it connects to one over TCP.

use std::net::TcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ppml_nn::backend::{Backend, BackendError, CallStats, OfflineTotals, SetupReport};
use ppml_nn::{Model, Tensor};
use ppml_rlwe::Params;

use crate::error::{HybridError, Result};
use crate::fixed::{decode, encode};
use crate::link::memory_pair;
use crate::plan::{Plan, ServerModel};
use crate::session::{CallSplit, ClientSession, ServerSession};
use crate::tcp::TcpLink;

/// How long a party waits for its peer before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// Random OTs made per offline phase at most (about 100 bytes each in memory, both parties
/// together): larger batches run in chunks of images, each with its offline and online phase.
const MAX_OTS_PER_CHUNK: usize = 1 << 22;

/// Two-party hybrid inference: the client here, the server on a thread or at an address.
#[derive(Default)]
pub struct HybridBackend {
    server_addr: Option<String>,
    client: Option<ClientSession>,
    server: Option<JoinHandle<Result<u64>>>,
    last: Option<CallSplit>,
    total: CallSplit,
}

impl HybridBackend {
    /// Both roles in this process.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client of a `ppml hybrid-server` at `addr`.
    pub fn remote(addr: impl Into<String>) -> Self {
        Self {
            server_addr: Some(addr.into()),
            client: None,
            server: None,
            last: None,
            total: CallSplit::default(),
        }
    }

    /// The offline/online split of the last call.
    pub fn last_split(&self) -> Option<CallSplit> {
        self.last
    }

    fn stop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close();
        }
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
    }

    fn start(&mut self, model: &Model) -> Result<SetupReport> {
        self.stop();
        let t = Instant::now();
        let params = Params::default_set()?;
        let plan = Plan::compile(model)?;
        let client = match &self.server_addr {
            None => {
                let server_model = Arc::new(ServerModel::new(model, &params)?);
                let (ls, lc) = memory_pair(TIMEOUT);
                let p = params.clone();
                self.server = Some(std::thread::spawn(move || {
                    ServerSession::accept(Box::new(ls), p, server_model)?.serve()
                }));
                ClientSession::connect(Box::new(lc), params.clone())?
            }
            Some(addr) => {
                let stream = TcpStream::connect(addr).map_err(|e| HybridError::LinkClosed {
                    peer: "server",
                    reason: format!("connecting to {addr}: {e}"),
                })?;
                let link = TcpLink::new(stream, "server", TIMEOUT)?;
                ClientSession::connect(Box::new(link), params.clone())?
            }
        };
        if *client.plan() != plan {
            return Err(HybridError::Unsupported {
                what: format!("the server runs another architecture than {}", model.name),
            });
        }
        let notes = vec![
            format!(
                "RLWE N = {}, log2 q = {:.1}, t = 2^64; 2 x 128 base OTs; {}",
                params.degree(),
                params.modulus_bits(),
                match &self.server_addr {
                    None => "server on a thread of this process (in-memory link)".to_string(),
                    Some(a) => format!("server at {a} (TCP)"),
                }
            ),
            format!("random OTs per image: {:?}", plan.ot_count(1)),
        ];
        let bytes = client.bytes();
        self.client = Some(client);
        self.total = CallSplit::default();
        self.last = None;
        Ok(SetupReport {
            seconds: t.elapsed().as_secs_f64(),
            bytes_sent: bytes,
            notes,
        })
    }

    fn run(&mut self, images: &Tensor) -> Result<(Tensor, CallStats)> {
        let c = self
            .client
            .as_mut()
            .ok_or_else(|| HybridError::Unsupported {
                what: "inference before setup".into(),
            })?;
        let n = images.batch();
        let plan = c.plan().clone();
        if images.item_len() != plan.input_len() {
            return Err(HybridError::Shape {
                what: "input image",
                left: images.item_len(),
                right: plan.input_len(),
            });
        }
        let per_image = plan.ot_count(1);
        let chunk = (MAX_OTS_PER_CHUNK / (per_image.a + per_image.b).max(1)).clamp(1, n.max(1));
        let x: Vec<u64> = images.data().iter().map(|&v| encode(v)).collect();
        let mut split = CallSplit::default();
        let mut logits = Vec::with_capacity(n * plan.output_len());
        for part in x.chunks(chunk * plan.input_len()) {
            let (y, cost) = c.call(part.to_vec(), part.len() / plan.input_len())?;
            logits.extend(y);
            split.add(&cost);
        }
        self.last = Some(split);
        self.total.add(&split);
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
                bytes_sent: split.offline.bytes + split.online.bytes,
                rounds: split.offline.rounds + split.online.rounds,
                // The client and the server are the only two parties. The OT extension runs
                // inside the call: it is in `bytes_sent` (see `offline_totals` for its share),
                // not material made ahead.
                client_bytes: split.offline.bytes + split.online.bytes,
                ..CallStats::default()
            },
        ))
    }
}

impl Drop for HybridBackend {
    fn drop(&mut self) {
        self.stop();
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

    fn offline_totals(&self) -> Option<OfflineTotals> {
        let o = self.total.offline;
        Some(OfflineTotals {
            seconds: o.seconds,
            bytes_sent: o.bytes,
            rounds: o.rounds,
        })
    }
}
