//! The transport abstraction: protocol code sends and receives vectors of ring words to and from
//! numbered parties and never touches a socket. Every endpoint counts the bytes it sends and its
//! communication rounds.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::error::{MpcError, Result};
use crate::link::payload_bytes;

/// What one endpoint sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Payload bytes sent (8 per ring word).
    pub bytes_sent: u64,
    /// Communication rounds: the number of times the endpoint waited for a message after having
    /// sent one since its last wait (sequential exchanges on this party's critical path).
    pub rounds: u64,
}

/// A party's connection to the others.
pub trait Transport: Send {
    /// This endpoint's party id.
    fn id(&self) -> usize;
    /// Sends `msg` to party `to` (never blocks for long: messages are queued).
    fn send(&mut self, to: usize, msg: Vec<u64>) -> Result<()>;
    /// Receives the next message from party `from`, waiting at most the configured timeout.
    fn recv(&mut self, from: usize) -> Result<Vec<u64>>;
    /// Counters so far.
    fn stats(&self) -> TransportStats;

    /// Receives a message that must have exactly `len` words.
    fn recv_exact(&mut self, from: usize, len: usize) -> Result<Vec<u64>> {
        let m = self.recv(from)?;
        if m.len() != len {
            return Err(MpcError::Malformed {
                party: self.id(),
                peer: from,
                expected: len,
                got: m.len(),
            });
        }
        Ok(m)
    }

    /// Sends `msg` to `peer` and receives the peer's message of the same length (one round).
    fn exchange(&mut self, peer: usize, msg: Vec<u64>) -> Result<Vec<u64>> {
        let len = msg.len();
        self.send(peer, msg)?;
        self.recv_exact(peer, len)
    }
}

/// The receiving side both transports share: a channel from each peer, the timeout, and the
/// counters (which count sends too: a wait after a send is a round).
pub(crate) struct Inbox {
    id: usize,
    rx: Vec<Option<Receiver<Vec<u64>>>>,
    timeout: Duration,
    stats: TransportStats,
    sent_since_recv: bool,
}

impl Inbox {
    /// Party `id`'s inbox over `rx` (indexed by peer, `None` where there is no link).
    pub(crate) fn new(id: usize, rx: Vec<Option<Receiver<Vec<u64>>>>, timeout: Duration) -> Self {
        Self {
            id,
            rx,
            timeout,
            stats: TransportStats::default(),
            sent_since_recv: false,
        }
    }

    /// How many peers (links or not) the inbox is indexed by.
    pub(crate) fn peers(&self) -> usize {
        self.rx.len()
    }

    /// Counts a message of `bytes` payload bytes sent.
    pub(crate) fn count_sent(&mut self, bytes: u64) {
        self.stats.bytes_sent += bytes;
        self.sent_since_recv = true;
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> TransportStats {
        self.stats
    }

    /// The next message from `from`, waiting at most the timeout.
    pub(crate) fn recv(&mut self, from: usize) -> Result<Vec<u64>> {
        if self.sent_since_recv {
            self.stats.rounds += 1;
            self.sent_since_recv = false;
        }
        let (party, timeout) = (self.id, self.timeout);
        let rx = self
            .rx
            .get(from)
            .and_then(Option::as_ref)
            .ok_or(MpcError::Disconnected { party, peer: from })?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => MpcError::Timeout {
                party,
                peer: from,
                timeout,
            },
            RecvTimeoutError::Disconnected => MpcError::Disconnected { party, peer: from },
        })
    }
}

/// An endpoint of the in-process transport: threads connected by channels.
pub struct InProcess {
    id: usize,
    senders: Vec<Option<Sender<Vec<u64>>>>,
    inbox: Inbox,
}

impl InProcess {
    /// A fully connected mesh of `n` endpoints; `recv` gives up after `timeout`.
    pub fn mesh(n: usize, timeout: Duration) -> Vec<InProcess> {
        let mut senders: Vec<Vec<Option<Sender<Vec<u64>>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<Option<Receiver<Vec<u64>>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    let (s, r) = channel();
                    senders[from][to] = Some(s);
                    receivers[to][from] = Some(r);
                }
            }
        }
        senders
            .into_iter()
            .zip(receivers)
            .enumerate()
            .map(|(id, (senders, rx))| InProcess {
                id,
                senders,
                inbox: Inbox::new(id, rx, timeout),
            })
            .collect()
    }
}

impl Transport for InProcess {
    fn id(&self) -> usize {
        self.id
    }

    fn send(&mut self, to: usize, msg: Vec<u64>) -> Result<()> {
        let disconnected = MpcError::Disconnected {
            party: self.id,
            peer: to,
        };
        let s = self
            .senders
            .get(to)
            .and_then(Option::as_ref)
            .ok_or(MpcError::Disconnected {
                party: self.id,
                peer: to,
            })?;
        self.inbox.count_sent(payload_bytes(msg.len()));
        s.send(msg).map_err(|_| disconnected)
    }

    fn recv(&mut self, from: usize) -> Result<Vec<u64>> {
        self.inbox.recv(from)
    }

    fn stats(&self) -> TransportStats {
        self.inbox.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_rounds_and_reports_failures() {
        let mut eps = InProcess::mesh(2, Duration::from_millis(50));
        let mut b = eps.pop().expect("two");
        let mut a = eps.pop().expect("two");
        a.send(1, vec![1, 2, 3]).expect("send");
        b.send(0, vec![4, 5, 6]).expect("send");
        assert_eq!(a.recv_exact(1, 3).expect("recv"), vec![4, 5, 6]);
        assert_eq!(b.recv(0).expect("recv"), vec![1, 2, 3]);
        assert_eq!(
            a.stats(),
            TransportStats {
                bytes_sent: 24,
                rounds: 1
            }
        );
        // Silence is a timeout, a short frame is malformed, a dropped peer is a disconnect.
        assert!(matches!(a.recv(1), Err(MpcError::Timeout { peer: 1, .. })));
        b.send(0, vec![1]).expect("send");
        assert!(matches!(
            a.recv_exact(1, 2),
            Err(MpcError::Malformed {
                expected: 2,
                got: 1,
                ..
            })
        ));
        drop(b);
        assert!(matches!(a.recv(1), Err(MpcError::Disconnected { .. })));
    }
}
