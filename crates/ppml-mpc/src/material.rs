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
//! is not made yet waits for it: it is reported as made on demand. A client that says how many
//! pooled queries it will run ([`PoolRequest::queries`]) gets material for no more than those,
//! so a benchmark's online figures are not taken while the provider makes material no query
//! will use (on two cores and shared links that would slow the very queries measured).

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crate::error::{MpcError, Result};
use crate::mesh::SessionNet;
use crate::transport::Transport;

/// What a client asks of the offline phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// Images per query the material is made for (0: no offline phase).
    pub batch: usize,
    /// Most queries of `batch` images the session will run (0: no bound, the pool is refilled
    /// for as long as the session lasts). A client that knows its workload says so: material
    /// made past its last query is wasted, and making it competes with the queries for the
    /// parties' processors and links.
    pub queries: usize,
}

impl PoolRequest {
    /// Material for queries of `batch` images, refilled for as long as the session lasts.
    pub fn batch(batch: usize) -> Self {
        Self { batch, queries: 0 }
    }

    /// The bound on queries, if any.
    pub(crate) fn budget(self) -> Option<usize> {
        (self.queries > 0).then_some(self.queries)
    }
}

/// Where a query's correlated randomness comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Made while the query runs, by the helper (online).
    Online,
    /// Made ahead and waiting on the offline lane.
    Pool,
}

/// Which of a session's queries use pooled material: those of the pool's batch size, up to the
/// client's budget. Every party keeps one and feeds it the same queries, so all agree without
/// a message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolPlan {
    batch: usize,
    budget: Option<usize>,
    used: usize,
}

impl PoolPlan {
    /// The plan of a session whose pool is as `request` asks (`batch` 0: no pool).
    pub(crate) fn new(request: PoolRequest) -> Self {
        Self {
            batch: request.batch,
            budget: request.budget(),
            used: 0,
        }
    }

    /// The source of the session's next query, of `n` images: past the budget, material is
    /// made online (none was made ahead for it).
    pub(crate) fn next(&mut self, n: usize) -> Source {
        let left = self.budget.is_none_or(|b| self.used < b);
        if self.batch > 0 && n == self.batch && left {
            self.used += 1;
            Source::Pool
        } else {
            Source::Online
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
    /// Queries the pool starts with: `depth`, or the budget if smaller.
    initial: usize,
}

impl<'scope> Provider<'scope> {
    /// Starts making material with `make` on `lane`, at most `depth` queries ahead and, with a
    /// `budget`, for that many queries in all; `wait` bounds how long a query waits for material
    /// not yet made.
    pub(crate) fn start<'env, F>(
        scope: &'scope Scope<'scope, 'env>,
        ahead: &'scope (Mutex<Ahead>, Condvar),
        mut lane: SessionNet,
        (depth, budget, wait): (usize, Option<usize>, Duration),
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
                    let done = |p: usize| budget.is_some_and(|b| p >= b);
                    while !a.stop && (produced >= a.consumed + depth || done(produced)) {
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
            initial: budget.map_or(depth, |b| b.min(depth)),
        }
    }

    /// Waits until the material the pool starts with is made (`depth` queries, or the budget
    /// if smaller), filling the pool before the session starts; returns what it cost.
    pub(crate) fn fill(&mut self) -> Result<Vec<Made>> {
        (0..self.initial)
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
