//! The client's side of a session with the three parties (see [`crate::service`] for the
//! frames): shares each batch, and alone reconstructs the logits. The parties report their own
//! traffic with every result, so a query's figures cover every party, wherever it runs.

use std::time::Duration;

use ppml_nn::backend::CallStats;
use ppml_wire::frame::{read_word_frame, write_word_frame};
use ppml_wire::WireError;

use crate::error::{MpcError, Result};
use crate::link::{payload_bytes, Duplex};
use crate::material::PoolRequest;
use crate::mesh_frame::MAX_SESSION_ID;
use crate::messages::{ToClient, ToParty};
use crate::prg::Prg;
use crate::ring;
use crate::service::Setting;
use crate::topology::CLIENT_ID;
use crate::{mpc2, mpc3, Protocol};

/// A client session: one link to each party.
pub(crate) struct Client {
    links: Vec<Box<dyn Duplex>>,
    setting: Setting,
    classes: usize,
    /// How long to wait for a party's answer (the parties time out on each other first).
    wait: Duration,
    max_frame_words: u64,
}

/// What opening a session cost.
#[derive(Default)]
pub(crate) struct Opened {
    /// Bytes the parties sent each other at their start-up (weight sharing).
    pub(crate) startup_bytes: u64,
    /// Bytes sent to open this session (hello, key agreement, ready).
    pub(crate) session_bytes: u64,
    /// Material made ahead while the session opened (the pool filled): bytes and time.
    pub(crate) offline_bytes: u64,
    /// See `offline_bytes`.
    pub(crate) offline_time: Duration,
}

impl Client {
    /// Says hello to the parties over `links` (party order) and waits until all are ready.
    pub(crate) fn open(
        links: Vec<Box<dyn Duplex>>,
        setting: Setting,
        (in_len, classes, pool): (usize, usize, PoolRequest),
        (wait, max_frame_words): (Duration, u64),
    ) -> Result<(Self, Opened)> {
        let mut c = Self {
            links,
            setting,
            classes,
            wait,
            max_frame_words,
        };
        // A fresh random id: it only routes frames (every session draws fresh keys).
        let sid = (Prg::from_os().u64s(1).first().copied().unwrap_or(1) & MAX_SESSION_ID) | 1;
        let hello = ToParty::Hello(setting.hello(sid, (in_len, classes), pool)).encode();
        let mut opened = Opened::default();
        for i in 0..c.links.len() {
            c.send(i, &hello, &[])?;
            opened.session_bytes += payload_bytes(hello.len());
        }
        for i in 0..c.links.len() {
            let (ToClient::Ready(r), words) = c.recv(i)? else {
                return Err(bad_party(i));
            };
            opened.startup_bytes += r.startup_bytes;
            opened.session_bytes += r.session_bytes + payload_bytes(words);
            opened.offline_bytes += r.offline_bytes;
            opened.offline_time += Duration::from_nanos(r.offline_nanos);
        }
        Ok((c, opened))
    }

    fn send(&mut self, i: usize, head: &[u64], body: &[u64]) -> Result<()> {
        let link = self.links.get_mut(i).ok_or(bad_party(i))?;
        write_word_frame(link, head, body).map_err(|_| MpcError::Disconnected {
            party: CLIENT_ID,
            peer: i,
        })
    }

    /// The next message from party `i` and its length in words (an error message becomes
    /// [`MpcError::Remote`]).
    fn recv(&mut self, i: usize) -> Result<(ToClient, usize)> {
        let (wait, max) = (self.wait, self.max_frame_words);
        let link = self.links.get_mut(i).ok_or(bad_party(i))?;
        let _ = link.set_read_timeout(Some(wait));
        let gone = MpcError::Disconnected {
            party: CLIENT_ID,
            peer: i,
        };
        let frame = read_word_frame(link, max)
            .map_err(|e| match e {
                WireError::Io(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    MpcError::Timeout {
                        party: CLIENT_ID,
                        peer: i,
                        timeout: wait,
                    }
                }
                _ => MpcError::Disconnected {
                    party: CLIENT_ID,
                    peer: i,
                },
            })?
            .ok_or(gone)?;
        let words = frame.len();
        match ToClient::decode(frame).map_err(|_| bad_party(i))? {
            ToClient::Error(message) => Err(MpcError::Remote { party: i, message }),
            m => Ok((m, words)),
        }
    }

    /// Classifies `n` encoded images `x`: returns the `n * classes` output words and the
    /// query's traffic (every party's, the client's included) and critical-path rounds.
    pub(crate) fn query(&mut self, x: &[u64], n: usize) -> Result<(Vec<u64>, CallStats)> {
        let head = ToParty::Query { images: n as u64 }.encode();
        let mut sent = 0;
        match self.setting.protocol {
            Protocol::Mpc2 => {
                let [x0, x1] = mpc2::share_input(x);
                for (i, share) in [Some(x0), Some(x1), None].into_iter().enumerate() {
                    self.send(i, &head, &[])?;
                    sent += payload_bytes(head.len());
                    if let Some(s) = share {
                        self.send(i, &[], &s)?;
                        sent += payload_bytes(s.len());
                    }
                }
            }
            Protocol::Mpc3 => {
                for (i, (a, b)) in mpc3::share_input(x).into_iter().enumerate() {
                    self.send(i, &head, &[])?;
                    self.send(i, &[], &a)?;
                    self.send(i, &[], &b)?;
                    sent += payload_bytes(head.len() + a.len() + b.len());
                }
            }
        }
        let mut y = vec![0u64; n * self.classes];
        let mut stats = CallStats {
            bytes_sent: sent,
            client_bytes: sent,
            ..CallStats::default()
        };
        for i in 0..self.links.len() {
            let (ToClient::Result(r), _) = self.recv(i)? else {
                return Err(bad_party(i));
            };
            stats.offline_bytes += r.offline_bytes;
            stats.offline_time += Duration::from_nanos(r.offline_nanos);
            stats.offline_on_demand |= r.on_demand;
            if self.setting.inputs(i) > 0 {
                if r.y.len() != y.len() {
                    return Err(bad_party(i));
                }
                ring::add_assign(&mut y, &r.y);
            }
            stats.bytes_sent += r.bytes_sent + payload_bytes(r.y.len());
            stats.client_bytes += payload_bytes(r.y.len());
            stats.rounds = stats.rounds.max(r.rounds);
        }
        // The client's two sequential steps: the shares out, the results back.
        stats.rounds += 2;
        Ok((y, stats))
    }

    /// Ends the session (the parties' session threads finish; the parties go on serving).
    pub(crate) fn close(&mut self) {
        for i in 0..self.links.len() {
            let _ = self.send(i, &ToParty::Bye.encode(), &[]);
        }
    }
}

fn bad_party(party: usize) -> MpcError {
    MpcError::BadParty { party }
}
