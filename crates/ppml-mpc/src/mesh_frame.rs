//! The frames the parties send each other on the mesh, typed: which session and lane a frame
//! belongs to, and whether it carries a payload or ends the lane.
//!
//! ```text
//! frame  = header word | payload words
//! header = abort bit (63) | offline bit (62) | session id (bits 0..62)
//! ```
//!
//! A frame comes from another party, so [`MeshFrame::decode`] is total: an empty frame and an
//! abort that carries words are typed errors, and every other header names a session and lane.

/// A session's id on the mesh (chosen by the client, unique among the sessions in flight).
pub type SessionId = u64;

/// Header bit of an abort: "the sender has ended this lane of the session".
const ABORT: u64 = 1 << 63;

/// Header bit of a session's offline lane.
const OFFLINE: u64 = 1 << 62;

/// The largest session id (the header's two top bits mark aborts and offline lanes).
pub const MAX_SESSION_ID: SessionId = OFFLINE - 1;

/// Which of a session's two lanes a frame travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// The session's queries, between the parties.
    Online,
    /// Correlated randomness the material provider (party 2) sends ahead of the queries.
    Offline,
}

/// One lane of one session: what a frame is addressed to and what a mailbox collects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LaneId {
    /// The session (at most [`MAX_SESSION_ID`]).
    pub session: SessionId,
    /// Its lane.
    pub lane: Lane,
}

impl LaneId {
    /// The online lane of `session`.
    pub fn online(session: SessionId) -> Self {
        Self {
            session,
            lane: Lane::Online,
        }
    }

    /// The offline lane of `session`.
    pub fn offline(session: SessionId) -> Self {
        Self {
            session,
            lane: Lane::Offline,
        }
    }
}

/// What a frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A protocol message for the lane.
    Message(Vec<u64>),
    /// The sender has ended the lane: whoever waits on it stops at once.
    Abort,
}

/// A frame on a mesh link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshFrame {
    /// Where it goes.
    pub to: LaneId,
    /// What it carries.
    pub body: Body,
}

/// Why a party's frame was refused (the link it came on is then broken).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeshFrameError {
    /// A frame without even a header word.
    #[error("an empty mesh frame")]
    Empty,
    /// An abort followed by words.
    #[error("an abort of session {session} carries {words} words")]
    AbortWithPayload {
        /// The session named.
        session: SessionId,
        /// The words after the header.
        words: usize,
    },
}

/// The header word of a frame addressed to `to`, an abort if `abort`.
pub fn header(to: LaneId, abort: bool) -> u64 {
    let lane = match to.lane {
        Lane::Online => 0,
        Lane::Offline => OFFLINE,
    };
    (to.session & MAX_SESSION_ID) | lane | if abort { ABORT } else { 0 }
}

impl MeshFrame {
    /// Parses the words of one frame (header first).
    ///
    /// # Errors
    /// [`MeshFrameError`] for an empty frame or an abort that carries words.
    pub fn decode(mut words: Vec<u64>) -> Result<Self, MeshFrameError> {
        let Some(&head) = words.first() else {
            return Err(MeshFrameError::Empty);
        };
        let lane = if head & OFFLINE != 0 {
            Lane::Offline
        } else {
            Lane::Online
        };
        let to = LaneId {
            session: head & MAX_SESSION_ID,
            lane,
        };
        let body = if head & ABORT == 0 {
            words.remove(0);
            Body::Message(words)
        } else if words.len() == 1 {
            Body::Abort
        } else {
            return Err(MeshFrameError::AbortWithPayload {
                session: to.session,
                words: words.len() - 1,
            });
        };
        Ok(Self { to, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_to_their_lane_and_bad_ones_are_refused() {
        let to = LaneId::offline(MAX_SESSION_ID);
        let mut words = vec![header(to, false)];
        words.extend([4, 5]);
        assert_eq!(
            MeshFrame::decode(words),
            Ok(MeshFrame {
                to,
                body: Body::Message(vec![4, 5])
            })
        );
        let abort = header(LaneId::online(9), true);
        assert_eq!(
            MeshFrame::decode(vec![abort]),
            Ok(MeshFrame {
                to: LaneId::online(9),
                body: Body::Abort
            })
        );
        // The start-up session's frames keep the header they had as a bare word: its id.
        assert_eq!(header(LaneId::online(0), false), 0);
        assert_eq!(MeshFrame::decode(vec![]), Err(MeshFrameError::Empty));
        assert_eq!(
            MeshFrame::decode(vec![abort, 1]),
            Err(MeshFrameError::AbortWithPayload {
                session: 9,
                words: 1
            })
        );
    }
}
