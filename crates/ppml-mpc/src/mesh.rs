//! The parties' mesh: one persistent link per ordered pair of parties, formed once and shared by
//! every client session.
//!
//! Every frame on a mesh link is addressed to one lane of one session (a [`MeshFrame`]). A
//! reader thread per incoming link decodes each frame once and sorts it into per-lane mailboxes, so sessions run concurrently over
//! the same links, a session's messages never mix with another's, and a session that fails
//! (its party sends an abort) ends only that session. A link that breaks ends every session
//! (the mesh must be formed again: see [`crate::service`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ppml_wire::frame::{read_headed_word_frame, write_word_frame};

use crate::error::{MpcError, Result};
use crate::link::{in_memory_pair, payload_bytes};
use crate::mesh_frame::{header, Body, LaneId, MeshFrame, SessionId};
use crate::transport::{Inbox, Transport, TransportStats};

/// The session the parties use at start-up (key agreement and weight sharing).
pub(crate) const STARTUP: SessionId = 0;

/// The id [`SessionNet`] gives the offline lane from the material provider (party 2): a
/// virtual peer after the parties.
pub(crate) const MATERIAL: usize = 3;

/// How many ended sessions are remembered, so that their late frames are dropped.
const REMEMBERED: usize = 1 << 16;

/// The writing end of a mesh link.
pub(crate) type LinkWriter = Box<dyn Write + Send>;
/// The reading end of a mesh link.
pub(crate) type LinkReader = Box<dyn Read + Send>;
/// Something to run when the mesh goes away (shutting sockets down wakes their readers).
pub(crate) type Closer = Box<dyn FnOnce() + Send>;

struct Lane {
    tx: Option<Sender<Vec<u64>>>,
    rx: Option<Receiver<Vec<u64>>>,
}

struct Mailbox {
    lanes: Vec<Lane>,
    claimed: bool,
    born: Instant,
}

impl Mailbox {
    fn new(nodes: usize) -> Self {
        Self {
            lanes: (0..nodes)
                .map(|_| {
                    let (tx, rx) = channel();
                    Lane {
                        tx: Some(tx),
                        rx: Some(rx),
                    }
                })
                .collect(),
            claimed: false,
            born: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Mailboxes {
    sessions: HashMap<LaneId, Mailbox>,
    /// Peers whose incoming link has ended: the mesh is broken for every session.
    dead: Vec<bool>,
    ended: HashSet<LaneId>,
    ended_order: VecDeque<LaneId>,
}

impl Mailboxes {
    fn lane(&mut self, sid: LaneId, from: usize) -> Option<&mut Lane> {
        if self.ended.contains(&sid) {
            return None;
        }
        let nodes = self.dead.len();
        self.sessions
            .entry(sid)
            .or_insert_with(|| Mailbox::new(nodes))
            .lanes
            .get_mut(from)
    }

    fn end(&mut self, sid: LaneId) {
        self.sessions.remove(&sid);
        if self.ended.insert(sid) {
            self.ended_order.push_back(sid);
            if self.ended_order.len() > REMEMBERED {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
    }

    fn kill(&mut self, from: usize) {
        if let Some(d) = self.dead.get_mut(from) {
            *d = true;
        }
        for m in self.sessions.values_mut() {
            if let Some(l) = m.lanes.get_mut(from) {
                l.tx = None;
            }
        }
    }
}

/// One party's view of the mesh.
pub struct Mesh {
    id: usize,
    writers: Vec<Option<Mutex<LinkWriter>>>,
    boxes: Arc<Mutex<Mailboxes>>,
    timeout: Duration,
    closers: Mutex<Vec<Closer>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the mailboxes half-updated in a way that matters here.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sorts the frames arriving from `from` into their sessions' mailboxes until the link ends.
fn pump(boxes: &Mutex<Mailboxes>, from: usize, mut r: LinkReader, max_words: u64) {
    loop {
        let frame = read_headed_word_frame(&mut r, max_words.saturating_add(1));
        match frame.map(|f| f.map(|(head, payload)| MeshFrame::decode(head, payload))) {
            Ok(Some(Ok(MeshFrame { to, body }))) => {
                let mut b = lock(boxes);
                match body {
                    Body::Abort => {
                        if let Some(l) = b.lane(to, from) {
                            l.tx = None;
                        }
                    }
                    Body::Message(words) => {
                        if let Some(tx) = b.lane(to, from).and_then(|l| l.tx.as_ref()) {
                            // A session that has already ended drops its late frames.
                            let _ = tx.send(words);
                        }
                    }
                }
            }
            // A malformed frame, a closed link or a broken one: the peer is gone for good.
            _ => {
                lock(boxes).kill(from);
                return;
            }
        }
    }
}

impl Mesh {
    /// Party `id`'s mesh from one writer and one reader per peer (`None` at `id`); `recv`
    /// gives up after `timeout`; frames above `max_words` words break the link.
    pub(crate) fn from_links(
        id: usize,
        writers: Vec<Option<LinkWriter>>,
        readers: Vec<Option<LinkReader>>,
        (timeout, max_words): (Duration, u64),
        closers: Vec<Closer>,
    ) -> Result<Arc<Self>> {
        let nodes = writers.len();
        let boxes = Arc::new(Mutex::new(Mailboxes {
            dead: vec![false; nodes],
            ..Mailboxes::default()
        }));
        for (from, r) in readers.into_iter().enumerate() {
            let Some(r) = r else { continue };
            let b = boxes.clone();
            std::thread::Builder::new()
                .name(format!("mesh-{id}<-{from}"))
                .spawn(move || pump(&b, from, r, max_words))
                .map_err(|_| MpcError::PartyFailed { party: id })?;
        }
        Ok(Arc::new(Self {
            id,
            writers: writers.into_iter().map(|w| w.map(Mutex::new)).collect(),
            boxes,
            timeout,
            closers: Mutex::new(closers),
        }))
    }

    /// A mesh of `n` parties inside this process, over socket pairs.
    pub(crate) fn in_memory(n: usize, timeout: Duration, max_words: u64) -> Result<Vec<Arc<Self>>> {
        let mut writers: Vec<Vec<Option<LinkWriter>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut readers: Vec<Vec<Option<LinkReader>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    let (w, r) =
                        in_memory_pair().map_err(|_| MpcError::PartyFailed { party: from })?;
                    writers[from][to] = Some(Box::new(w));
                    readers[to][from] = Some(Box::new(r));
                }
            }
        }
        writers
            .into_iter()
            .zip(readers)
            .enumerate()
            .map(|(id, (w, r))| Self::from_links(id, w, r, (timeout, max_words), Vec::new()))
            .collect()
    }

    /// This party's id.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// Whether a peer's link has ended (no new session can run until the mesh is formed again).
    pub(crate) fn is_broken(&self) -> bool {
        lock(&self.boxes).dead.iter().any(|d| *d)
    }

    /// Opens session `sid`: its frames, including any that arrived before this call, are
    /// delivered to the returned endpoint. Fails if the mesh is broken or `sid` is in use.
    pub(crate) fn session(self: &Arc<Self>, sid: SessionId) -> Result<SessionNet> {
        let mut rx = self.claim(LaneId::online(sid))?;
        // Parties 0 and 1 also read the session's offline lane from party 2, the provider of
        // correlated randomness, as the virtual peer [`MATERIAL`].
        if self.id != 2 {
            rx.push(
                self.claim(LaneId::offline(sid))?
                    .get_mut(2)
                    .and_then(Option::take),
            );
        }
        Ok(self.endpoint(LaneId::online(sid), rx))
    }

    /// The provider's (party 2's) sending end of session `sid`'s offline lane.
    pub(crate) fn offline_lane(self: &Arc<Self>, sid: SessionId) -> Result<SessionNet> {
        let lane = LaneId::offline(sid);
        let rx = self.claim(lane)?;
        Ok(self.endpoint(lane, rx))
    }

    fn endpoint(self: &Arc<Self>, lane: LaneId, rx: Vec<Option<Receiver<Vec<u64>>>>) -> SessionNet {
        SessionNet {
            mesh: self.clone(),
            lane,
            inbox: Inbox::new(self.id, rx, self.timeout),
        }
    }

    /// Claims the mailbox of `sid` (frames that arrived before are kept) and takes its receivers.
    fn claim(&self, sid: LaneId) -> Result<Vec<Option<Receiver<Vec<u64>>>>> {
        let mut b = lock(&self.boxes);
        if let Some(peer) = b.dead.iter().position(|d| *d) {
            return Err(MpcError::Disconnected {
                party: self.id,
                peer,
            });
        }
        // Mailboxes of sessions this party never joined (their client did not reach it).
        let stale = 4 * self.timeout;
        b.sessions
            .retain(|_, m| m.claimed || m.born.elapsed() < stale);
        if b.ended.contains(&sid) || b.sessions.get(&sid).is_some_and(|m| m.claimed) {
            return Err(MpcError::SessionInUse { party: self.id });
        }
        let nodes = b.dead.len();
        let m = b.sessions.entry(sid).or_insert_with(|| Mailbox::new(nodes));
        m.claimed = true;
        Ok(m.lanes.iter_mut().map(|l| l.rx.take()).collect())
    }

    /// Sends `msg` to lane `lane` at party `to`, or an abort of the lane if `abort` (`msg` empty).
    fn send(&self, (lane, abort): (LaneId, bool), to: usize, msg: &[u64]) -> Result<()> {
        let w = self
            .writers
            .get(to)
            .and_then(Option::as_ref)
            .ok_or(MpcError::Disconnected {
                party: self.id,
                peer: to,
            })?;
        write_word_frame(&mut **lock(w), &[header(lane, abort)], msg).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => MpcError::Timeout {
                party: self.id,
                peer: to,
                timeout: self.timeout,
            },
            _ => MpcError::Disconnected {
                party: self.id,
                peer: to,
            },
        })
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for c in lock(&self.closers).drain(..) {
            c();
        }
    }
}

/// One session's endpoint on the mesh: the [`Transport`] the protocols run over.
pub(crate) struct SessionNet {
    mesh: Arc<Mesh>,
    lane: LaneId,
    inbox: Inbox,
}

impl SessionNet {
    /// Tells the other parties that this session is over for this party (they stop waiting for
    /// it at once instead of after the timeout).
    pub(crate) fn abort(&self) {
        for to in 0..self.mesh.writers.len() {
            if to != self.mesh.id {
                let _ = self.mesh.send((self.lane, true), to, &[]);
                // Whoever waits for this session's material made ahead stops waiting too.
                let offline = LaneId::offline(self.lane.session);
                let _ = self.mesh.send((offline, true), to, &[]);
            }
        }
    }
}

impl Drop for SessionNet {
    fn drop(&mut self) {
        let mut b = lock(&self.mesh.boxes);
        b.end(self.lane);
        if self.inbox.peers() > MATERIAL {
            b.end(LaneId::offline(self.lane.session));
        }
    }
}

impl Transport for SessionNet {
    fn id(&self) -> usize {
        self.mesh.id
    }

    fn send(&mut self, to: usize, msg: Vec<u64>) -> Result<()> {
        self.mesh.send((self.lane, false), to, &msg)?;
        self.inbox.count_sent(payload_bytes(msg.len()));
        Ok(())
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

    fn mesh3() -> Vec<Arc<Mesh>> {
        Mesh::in_memory(3, Duration::from_secs(5), 1 << 20).expect("mesh")
    }

    #[test]
    fn sessions_are_kept_apart_and_frames_may_arrive_before_the_session_opens() {
        let m = mesh3();
        let mut a1 = m[0].session(1).expect("open");
        let mut a2 = m[0].session(2).expect("open");
        a1.send(1, vec![10, 11]).expect("send");
        a2.send(1, vec![20]).expect("send");
        // Party 1 opens session 2 first; session 1's frame waits in its mailbox.
        let mut b2 = m[1].session(2).expect("open");
        let mut b1 = m[1].session(1).expect("open");
        assert_eq!(b2.recv_exact(0, 1).expect("recv"), vec![20]);
        assert_eq!(b1.recv_exact(0, 2).expect("recv"), vec![10, 11]);
        assert!(matches!(
            m[1].session(1),
            Err(MpcError::SessionInUse { party: 1 })
        ));
        assert_eq!(a1.stats().bytes_sent, 16);
    }

    #[test]
    fn an_abort_ends_one_session_and_a_dead_link_ends_all() {
        let m = mesh3();
        let a1 = m[0].session(1).expect("open");
        let mut a2 = m[0].session(2).expect("open");
        let mut b1 = m[1].session(1).expect("open");
        let mut b2 = m[1].session(2).expect("open");
        a1.abort();
        assert!(matches!(
            b1.recv(0),
            Err(MpcError::Disconnected { party: 1, peer: 0 })
        ));
        a2.send(1, vec![5]).expect("send");
        assert_eq!(b2.recv(0).expect("other session unharmed"), vec![5]);
        // Party 0 goes away: every session at party 1 sees it, and no new one opens.
        drop((a1, a2));
        let m0 = m.into_iter().next();
        drop(m0);
        let m = mesh3();
        let mut c = m[2].session(9).expect("open");
        drop(m.into_iter().take(1).collect::<Vec<_>>());
        assert!(matches!(c.recv(0), Err(MpcError::Disconnected { .. })));
    }

    #[test]
    fn silence_is_a_timeout() {
        let m = Mesh::in_memory(2, Duration::from_millis(50), 16).expect("mesh");
        let mut a = m[0].session(3).expect("open");
        assert!(matches!(a.recv(1), Err(MpcError::Timeout { peer: 1, .. })));
    }
}
