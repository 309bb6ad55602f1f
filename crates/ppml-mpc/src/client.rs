//! The client's side of a session with the three parties (see [`crate::service`] for the
//! frames): shares each batch, and alone reconstructs the logits. The parties report their own
//! traffic with every result, so a query's figures cover every party, wherever it runs.

use std::time::Duration;

use ppml_nn::backend::CallStats;

use crate::error::{MpcError, Result};
use crate::link::{payload_bytes, read_frame, write_frame, Duplex};
use crate::mesh::MAX_SESSION_ID;
use crate::prg::Prg;
use crate::ring;
use crate::service::{tag, unpacked, Setting};
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
        (in_len, classes, pool): (usize, usize, usize),
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
        let hello = setting.hello(sid, (in_len, classes), pool);
        let mut opened = Opened::default();
        for i in 0..c.links.len() {
            c.send(i, &hello, &[])?;
            opened.session_bytes += payload_bytes(hello.len());
        }
        for i in 0..c.links.len() {
            let r = c.recv(i, tag::READY)?;
            match r.as_slice() {
                [_, startup, session, offline, nanos] => {
                    opened.startup_bytes += startup;
                    opened.session_bytes += session + payload_bytes(r.len());
                    opened.offline_bytes += offline;
                    opened.offline_time += Duration::from_nanos(*nanos);
                }
                _ => return Err(bad_party(i)),
            }
        }
        Ok((c, opened))
    }

    fn send(&mut self, i: usize, head: &[u64], body: &[u64]) -> Result<()> {
        let link = self.links.get_mut(i).ok_or(bad_party(i))?;
        write_frame(link, head, body).map_err(|_| MpcError::Disconnected {
            party: CLIENT_ID,
            peer: i,
        })
    }

    /// The next frame from party `i`, which must carry `want` (an error frame becomes
    /// [`MpcError::Remote`]).
    fn recv(&mut self, i: usize, want: u64) -> Result<Vec<u64>> {
        let (wait, max) = (self.wait, self.max_frame_words);
        let link = self.links.get_mut(i).ok_or(bad_party(i))?;
        let _ = link.set_read_timeout(Some(wait));
        let frame = read_frame(link, max).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => MpcError::Timeout {
                party: CLIENT_ID,
                peer: i,
                timeout: wait,
            },
            _ => MpcError::Disconnected {
                party: CLIENT_ID,
                peer: i,
            },
        })?;
        match frame {
            Some(f) if f.first() == Some(&want) => Ok(f),
            Some(f) if f.first() == Some(&tag::ERROR) => Err(MpcError::Remote {
                party: i,
                message: unpacked(&f),
            }),
            Some(_) => Err(bad_party(i)),
            None => Err(MpcError::Disconnected {
                party: CLIENT_ID,
                peer: i,
            }),
        }
    }

    /// Classifies `n` encoded images `x`: returns the `n * classes` output words and the
    /// query's traffic (every party's, the client's included) and critical-path rounds.
    pub(crate) fn query(&mut self, x: &[u64], n: usize) -> Result<(Vec<u64>, CallStats)> {
        let head = [tag::QUERY, n as u64];
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
            let r = self.recv(i, tag::RESULT)?;
            let [_, bytes, rounds, offline, nanos, on_demand, out @ ..] = r.as_slice() else {
                return Err(bad_party(i));
            };
            stats.offline_bytes += offline;
            stats.offline_time += Duration::from_nanos(*nanos);
            stats.offline_on_demand |= *on_demand != 0;
            if self.setting.inputs(i) > 0 {
                if out.len() != y.len() {
                    return Err(bad_party(i));
                }
                ring::add_assign(&mut y, out);
            }
            stats.bytes_sent += bytes + payload_bytes(out.len());
            stats.client_bytes += payload_bytes(out.len());
            stats.rounds = stats.rounds.max(*rounds);
        }
        // The client's two sequential steps: the shares out, the results back.
        stats.rounds += 2;
        Ok((y, stats))
    }

    /// Ends the session (the parties' session threads finish; the parties go on serving).
    pub(crate) fn close(&mut self) {
        for i in 0..self.links.len() {
            let _ = self.send(i, &[tag::BYE], &[]);
        }
    }
}

fn bad_party(party: usize) -> MpcError {
    MpcError::BadParty { party }
}
