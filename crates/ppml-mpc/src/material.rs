//! The offline phase: correlated randomness that does not depend on the input (`mpc2`'s dealer
//! messages, `mpc3`'s comparison-helper messages, FSS keys included) made ahead of the queries
//! that use it, into a bounded pool, and refilled in the background (the SPDZ-family split of
//! offline and online phases; CrypTen's providers do the same for its dealer).
//!
//! Party 2 is the provider. For each session whose client announced a pool batch size `b`, it
//! runs a thread that makes the material of future queries of `b` images, one query at a time,
//! and sends it at once on the session's offline lane, staying at most `depth` queries ahead of
//! consumption. Every query of exactly `b` images then uses the next query's material, in
//! order: all three parties know which queries those are from `n` alone, so no message is
//! needed to agree. A query of another size makes its material online. A query whose material
//! is not made yet waits for it: it is reported as made on demand.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::error::{MpcError, Result};
use crate::mesh::SessionNet;
use crate::transport::Transport;

/// Where a query's correlated randomness comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Made while the query runs, by the helper (online).
    Online,
    /// Made ahead and waiting on the offline lane.
    Pool,
}

impl Source {
    /// The source of a query of `n` images in a session whose pool holds queries of `pool`
    /// images (0: no pool).
    pub(crate) fn of(n: usize, pool: usize) -> Self {
        if pool > 0 && n == pool {
            Self::Pool
        } else {
            Self::Online
        }
    }
}

/// What making one query's material cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Made {
    /// Bytes sent on the offline lane.
    pub(crate) bytes: u64,
    /// Time the provider spent.
    pub(crate) time: Duration,
}

#[derive(Default)]
pub(crate) struct Ahead {
    consumed: usize,
    stop: bool,
}

/// The provider's background thread for one session.
pub(crate) struct Provider<'scope> {
    made: Receiver<Result<Made>>,
    ahead: &'scope (Mutex<Ahead>, Condvar),
    thread: Option<ScopedJoinHandle<'scope, ()>>,
    wait: Duration,
}

impl<'scope> Provider<'scope> {
    /// Starts making material with `make` on `lane`, at most `depth` queries ahead; `wait`
    /// bounds how long a query waits for material not yet made.
    pub(crate) fn start<'env, F>(
        scope: &'scope Scope<'scope, 'env>,
        ahead: &'scope (Mutex<Ahead>, Condvar),
        mut lane: SessionNet,
        (depth, wait): (usize, Duration),
        mut make: F,
    ) -> Self
    where
        F: FnMut(&mut dyn Transport) -> Result<()> + Send + 'scope,
    {
        let (tx, made) = channel();
        let thread = scope.spawn(move || {
            let mut produced = 0usize;
            loop {
                {
                    let (m, cv) = ahead;
                    let mut a = m.lock().unwrap_or_else(PoisonError::into_inner);
                    while !a.stop && produced >= a.consumed + depth {
                        a = cv.wait(a).unwrap_or_else(PoisonError::into_inner);
                    }
                    if a.stop {
                        return;
                    }
                }
                let (before, t) = (lane.stats().bytes_sent, Instant::now());
                let r = make(&mut lane).map(|()| Made {
                    bytes: lane.stats().bytes_sent - before,
                    time: t.elapsed(),
                });
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    lane.abort();
                    return;
                }
                produced += 1;
            }
        });
        Self {
            made,
            ahead,
            thread: Some(thread),
            wait,
        }
    }

    /// Waits until the first `k` queries' material is made (filling the pool before the
    /// session starts); returns what it cost.
    pub(crate) fn fill(&mut self, k: usize) -> Result<Vec<Made>> {
        (0..k)
            .map(|_| self.next_made().map(|(m, _)| m))
            .collect::<Result<Vec<_>>>()
    }

    fn next_made(&self) -> Result<(Made, bool)> {
        let gone = || MpcError::PartyFailed { party: 2 };
        match self.made.try_recv() {
            Ok(r) => r.map(|m| (m, false)),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(gone()),
            Err(std::sync::mpsc::TryRecvError::Empty) => match self.made.recv_timeout(self.wait) {
                Ok(r) => r.map(|m| (m, true)),
                Err(RecvTimeoutError::Timeout) => Err(MpcError::Timeout {
                    party: 2,
                    peer: 2,
                    timeout: self.wait,
                }),
                Err(RecvTimeoutError::Disconnected) => Err(gone()),
            },
        }
    }

    /// Accounts for one pooled query: the material it uses (already on its way to the
    /// parties), and whether that material was not ready when the query started.
    pub(crate) fn take(&self, filled: &mut Vec<Made>) -> Result<(Made, bool)> {
        let got = if filled.is_empty() {
            self.next_made()?
        } else {
            (filled.remove(0), false)
        };
        let (m, cv) = self.ahead;
        m.lock().unwrap_or_else(PoisonError::into_inner).consumed += 1;
        cv.notify_all();
        Ok(got)
    }
}

impl Drop for Provider<'_> {
    fn drop(&mut self) {
        let (m, cv) = self.ahead;
        m.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pool's shared counters (one per session, living in the session's scope).
pub(crate) fn counters() -> (Mutex<Ahead>, Condvar) {
    (Mutex::new(Ahead::default()), Condvar::new())
}
