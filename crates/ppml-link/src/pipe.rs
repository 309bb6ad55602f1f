//! Forwarding one connection: two directions, each a reader thread that timestamps chunks on
//! arrival and a writer thread that delivers them on the [`Pacer`]'s schedule.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::pace::Pacer;

/// What crosses a direction's queue.
enum Item {
    /// Bytes read at `arrival`.
    Data { arrival: Instant, bytes: Vec<u8> },
    /// The sender closed (or its socket failed) at `arrival`.
    End { arrival: Instant },
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    bytes: usize,
    aborted: bool,
}

/// A byte-bounded queue from a direction's reader to its writer, which either side (or the
/// relay, when it stops) can abort.
pub(crate) struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    limit: usize,
}

impl Queue {
    /// An empty queue that holds up to about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an item, waiting while the queue is full; false once aborted.
    fn push(&self, item: Item) -> bool {
        let len = match &item {
            Item::Data { bytes, .. } => bytes.len(),
            Item::End { .. } => 0,
        };
        let mut s = self.lock();
        // An item is accepted whenever the queue is below its limit, so one larger than the
        // limit still passes.
        while s.bytes >= self.limit && !s.aborted {
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        if s.aborted {
            return false;
        }
        s.bytes += len;
        s.items.push_back(item);
        self.changed.notify_all();
        true
    }

    /// The oldest item, waiting for one; `None` once aborted.
    fn pop(&self) -> Option<Item> {
        let mut s = self.lock();
        loop {
            if s.aborted {
                return None;
            }
            if let Some(item) = self.take_front(&mut s) {
                return Some(item);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The oldest item if there is one (`None` when empty or aborted).
    fn try_pop(&self) -> Option<Item> {
        let mut s = self.lock();
        if s.aborted {
            return None;
        }
        self.take_front(&mut s)
    }

    fn take_front(&self, s: &mut State) -> Option<Item> {
        let item = s.items.pop_front()?;
        if let Item::Data { bytes, .. } = &item {
            s.bytes -= bytes.len();
        }
        // A reader waiting for room may go on.
        self.changed.notify_all();
        Some(item)
    }

    /// Waits until `deadline`; false if the queue was aborted first.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut s = self.lock();
        loop {
            if s.aborted {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops both ends: the reader's `push` and the writer's waits return at once.
    pub(crate) fn abort(&self) {
        let mut s = self.lock();
        s.aborted = true;
        s.items.clear();
        s.bytes = 0;
        self.changed.notify_all();
    }
}

/// Reads `src` into `queue` until end of stream or an error, timestamping each chunk.
pub(crate) fn read_side(mut src: &TcpStream, queue: &Queue, chunk: usize) {
    let mut buf = vec![0u8; chunk];
    loop {
        let item = match src.read(&mut buf) {
            Ok(0) | Err(_) => Item::End {
                arrival: Instant::now(),
            },
            Ok(n) => Item::Data {
                arrival: Instant::now(),
                bytes: buf[..n].to_vec(),
            },
        };
        let end = matches!(item, Item::End { .. });
        if !queue.push(item) || end {
            return;
        }
    }
}

/// Largest write the writer makes when several chunks are due at once.
const MAX_WRITE: usize = 256 << 10;

/// Delivers `queue` to `dst` on `pacer`'s schedule, counting delivered bytes in `delivered`.
/// Chunks already due when one is written go out in the same write (a sender's many small
/// writes would otherwise cost the relay a system call and a wake-up each). The sender's end of
/// stream becomes a half-close of `dst` (after the bytes before it); a failed write closes both
/// sockets, so the sender learns that the receiver is gone.
pub(crate) fn write_side(
    src: &TcpStream,
    mut dst: &TcpStream,
    queue: &Queue,
    mut pacer: Pacer,
    delivered: &AtomicU64,
) {
    let due = |pacer: &mut Pacer, item: &Item| match item {
        Item::Data { arrival, bytes } => pacer.deliver_at(*arrival, bytes.len()),
        // The end travels like a byte: after the data before it, and the delay.
        Item::End { arrival } => pacer.deliver_at(*arrival, 0),
    };
    let mut next: Option<(Instant, Item)> = None;
    let mut out = Vec::new();
    loop {
        let (at, item) = match next.take() {
            Some(n) => n,
            None => match queue.pop() {
                Some(item) => (due(&mut pacer, &item), item),
                // Aborted by the relay.
                None => break,
            },
        };
        if !queue.wait_until(at) {
            break;
        }
        let Item::Data { bytes, .. } = item else {
            let _ = dst.shutdown(Shutdown::Write);
            return;
        };
        out.clear();
        out.extend_from_slice(&bytes);
        while out.len() < MAX_WRITE {
            let Some(item) = queue.try_pop() else { break };
            let at = due(&mut pacer, &item);
            match item {
                Item::Data { bytes, .. } if at <= Instant::now() => out.extend_from_slice(&bytes),
                item => {
                    next = Some((at, item));
                    break;
                }
            }
        }
        if dst.write_all(&out).is_err() {
            queue.abort();
            let _ = src.shutdown(Shutdown::Both);
            break;
        }
        delivered.fetch_add(out.len() as u64, Ordering::Relaxed);
    }
    let _ = dst.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn the_queue_blocks_a_full_reader_until_the_writer_takes() {
        let q = Arc::new(Queue::new(10));
        let now = Instant::now();
        assert!(q.push(Item::Data {
            arrival: now,
            bytes: vec![1; 20]
        }));
        let q2 = Arc::clone(&q);
        let t = std::thread::spawn(move || {
            q2.push(Item::Data {
                arrival: Instant::now(),
                bytes: vec![2; 5],
            })
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!t.is_finished(), "a full queue must make the reader wait");
        assert!(matches!(q.pop(), Some(Item::Data { bytes, .. }) if bytes == vec![1; 20]));
        assert!(t.join().expect("join"));
        assert!(matches!(q.pop(), Some(Item::Data { bytes, .. }) if bytes == vec![2; 5]));
        q.abort();
        assert!(q.pop().is_none());
        assert!(!q.push(Item::End { arrival: now }));
        assert!(!q.wait_until(now + Duration::from_secs(60)));
    }
}
