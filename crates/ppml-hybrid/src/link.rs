//! The link between the two parties: messages are vectors of 64-bit words, every endpoint counts
//! the bytes it sends and its rounds. Protocol code only sees [`Link`]; the in-process variant
//! ([`memory_pair`]) and a socket carry the same messages.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::error::{HybridError, Result};

/// What one endpoint sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Payload bytes sent (8 per word).
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Flights: messages sent after having received since the previous send (one-way trips on
    /// this endpoint's critical path). The two endpoints' flights added up are the rounds.
    pub flights: u64,
}

impl LinkStats {
    /// The counters accumulated since `earlier`.
    pub fn since(&self, earlier: LinkStats) -> LinkStats {
        LinkStats {
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            flights: self.flights - earlier.flights,
        }
    }
}

/// One party's end of the two-party link.
pub trait Link: Send {
    /// Sends one message (queued: never waits for the peer to read).
    fn send(&mut self, msg: Vec<u64>) -> Result<()>;
    /// Receives the next message.
    fn recv(&mut self) -> Result<Vec<u64>>;
    /// Counters so far.
    fn stats(&self) -> LinkStats;

    /// Receives a message that must have exactly `len` words.
    fn recv_exact(&mut self, what: &'static str, len: usize) -> Result<Vec<u64>> {
        let m = self.recv()?;
        if m.len() != len {
            return Err(HybridError::Malformed {
                what,
                expected: len,
                got: m.len(),
            });
        }
        Ok(m)
    }

    /// Sends `msg` and receives the peer's message of the same length (both send at once).
    fn exchange(&mut self, what: &'static str, msg: Vec<u64>) -> Result<Vec<u64>> {
        let len = msg.len();
        self.send(msg)?;
        self.recv_exact(what, len)
    }
}

/// Counts what an endpoint sends; shared by every [`Link`] implementation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter {
    stats: LinkStats,
    received_since_send: bool,
}

impl Counter {
    /// Records a send of `words` words.
    pub fn sent(&mut self, words: usize) {
        self.stats.bytes_sent += 8 * words as u64;
        if self.received_since_send || self.stats.flights == 0 {
            self.stats.flights += 1;
        }
        self.received_since_send = false;
    }

    /// Records a receive of `words` words.
    pub fn received(&mut self, words: usize) {
        self.stats.bytes_received += 8 * words as u64;
        self.received_since_send = true;
    }

    /// The counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }
}

/// The in-process link: two threads connected by channels.
pub struct MemoryLink {
    peer: &'static str,
    tx: Sender<Vec<u64>>,
    rx: Receiver<Vec<u64>>,
    timeout: Duration,
    counter: Counter,
}

/// A connected pair `(server end, client end)` whose receives give up after `timeout`.
pub fn memory_pair(timeout: Duration) -> (MemoryLink, MemoryLink) {
    let (tx_a, rx_a) = channel();
    let (tx_b, rx_b) = channel();
    let server = MemoryLink {
        peer: "client",
        tx: tx_a,
        rx: rx_b,
        timeout,
        counter: Counter::default(),
    };
    let client = MemoryLink {
        peer: "server",
        tx: tx_b,
        rx: rx_a,
        timeout,
        counter: Counter::default(),
    };
    (server, client)
}

impl Link for MemoryLink {
    fn send(&mut self, msg: Vec<u64>) -> Result<()> {
        self.counter.sent(msg.len());
        self.tx.send(msg).map_err(|_| HybridError::LinkClosed {
            peer: self.peer,
            reason: "the peer's end was dropped".into(),
        })
    }

    fn recv(&mut self) -> Result<Vec<u64>> {
        let m = self.rx.recv_timeout(self.timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => HybridError::Timeout {
                peer: self.peer,
                seconds: self.timeout.as_secs(),
            },
            RecvTimeoutError::Disconnected => HybridError::LinkClosed {
                peer: self.peer,
                reason: "the peer's end was dropped".into(),
            },
        })?;
        self.counter.received(m.len());
        Ok(m)
    }

    fn stats(&self) -> LinkStats {
        self.counter.stats()
    }
}

/// Packs `W`-bit items (each below `2^W`; `W` divides 64) into words, item `i` in bits
/// `W * (i % (64 / W))` up of word `i / (64 / W)`: the layout of bit vectors (`W = 1`), OT16
/// choices (`W = 4`) and OT16 answers (`W = 32`) on the link.
pub fn pack<const W: usize>(items: impl ExactSizeIterator<Item = u64>) -> Vec<u64> {
    let per = 64 / W;
    let mut out = vec![0u64; items.len().div_ceil(per)];
    for (i, v) in items.enumerate() {
        out[i / per] |= v << (W * (i % per));
    }
    out
}

/// Unpacks `n` items packed by [`pack`] (checked first, then read as they are iterated); the
/// words must be exactly as many as needed and the unused high bits of the last word zero.
///
/// # Errors
/// [`HybridError::Malformed`] for a wrong number of words, [`HybridError::InvalidContent`] for
/// stray bits past the last item.
pub fn unpack<'a, const W: usize>(
    what: &'static str,
    words: &'a [u64],
    n: usize,
) -> Result<impl ExactSizeIterator<Item = u64> + 'a> {
    let per = 64 / W;
    if words.len() != n.div_ceil(per) {
        return Err(HybridError::Malformed {
            what,
            expected: n.div_ceil(per),
            got: words.len(),
        });
    }
    if !n.is_multiple_of(per) {
        if let Some(&last) = words.last() {
            if last >> (W * (n % per)) != 0 {
                return Err(HybridError::InvalidContent {
                    what,
                    index: words.len() - 1,
                });
            }
        }
    }
    let mask = u64::MAX >> (64 - W);
    Ok((0..n).map(move |i| (words[i / per] >> (W * (i % per))) & mask))
}

/// Packs bits (one per `bool`) into words, bit `i` of word `i / 64` holding `bits[i]`.
pub fn pack_bits(bits: &[bool]) -> Vec<u64> {
    pack::<1>(bits.iter().map(|&b| u64::from(b)))
}

/// Unpacks `n` bits packed by [`pack_bits`].
///
/// # Errors
/// As [`unpack`].
pub fn unpack_bits(what: &'static str, words: &[u64], n: usize) -> Result<Vec<bool>> {
    Ok(unpack::<1>(what, words, n)?.map(|b| b == 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_flights_and_reports_a_vanished_peer() -> Result<()> {
        let (mut a, mut b) = memory_pair(Duration::from_secs(5));
        a.send(vec![1, 2, 3])?;
        a.send(vec![4])?;
        assert_eq!(b.recv_exact("x", 3)?, vec![1, 2, 3]);
        assert!(matches!(
            b.recv_exact("y", 2),
            Err(HybridError::Malformed {
                expected: 2,
                got: 1,
                ..
            })
        ));
        b.send(vec![5])?;
        a.recv()?;
        a.send(vec![6])?;
        assert_eq!(
            a.stats(),
            LinkStats {
                bytes_sent: 40,
                bytes_received: 8,
                flights: 2
            }
        );
        assert_eq!(
            b.stats(),
            LinkStats {
                bytes_sent: 8,
                bytes_received: 32,
                flights: 1
            }
        );
        drop(a);
        assert!(b.recv().is_ok());
        assert!(matches!(b.recv(), Err(HybridError::LinkClosed { .. })));
        Ok(())
    }

    #[test]
    fn bits_round_trip_and_stray_bits_are_rejected() -> Result<()> {
        let bits: Vec<bool> = (0..130).map(|i| i % 3 == 0).collect();
        let w = pack_bits(&bits);
        assert_eq!(w.len(), 3);
        assert_eq!(unpack_bits("b", &w, 130)?, bits);
        let mut bad = w.clone();
        bad[2] |= 1 << 5;
        assert!(unpack_bits("b", &bad, 130).is_err());
        assert!(unpack_bits("b", &w[..2], 130).is_err());
        // Nibbles and 32-bit halves: the same layout, wider items.
        let nibbles: Vec<u64> = (0..17).map(|i| i % 16).collect();
        let w = pack::<4>(nibbles.iter().copied());
        assert_eq!(w.len(), 2);
        assert_eq!(w[0] & 0xff, 0x10);
        assert!(unpack::<4>("n", &w, 17)?.eq(nibbles));
        assert!(matches!(
            unpack::<4>("n", &[0, 1 << 4], 17),
            Err(HybridError::InvalidContent { index: 1, .. })
        ));
        let halves = [u64::from(u32::MAX), 7, 9];
        let w = pack::<32>(halves.iter().copied());
        assert_eq!(w, vec![(7 << 32) | u64::from(u32::MAX), 9]);
        assert!(unpack::<32>("h", &w, 3)?.eq(halves));
        Ok(())
    }
}
