//! The frames the parties send each other on the mesh, typed: which session and lane a frame
//! belongs to, and whether it carries a payload or ends the lane.
//!
//! ```text
//! frame  = header word | payload words
//! header = abort bit (63) | offline bit (62) | session id (bits 0..62)
//! ```
//!
//! A frame comes from another party, so [`MeshFrame::decode`] is total: an abort that carries
//! words is a typed error, and every other header names a session and lane. (A frame without a
//! header word is refused by the reader, `ppml_wire::frame::read_headed_word_frame`, which hands
//! over the header and the payload apart so that no payload is shifted down by a word.)

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
    /// Parses one frame from its header word and the words after it.
    ///
    /// # Errors
    /// [`MeshFrameError`] for an abort that carries words.
    pub fn decode(head: u64, payload: Vec<u64>) -> Result<Self, MeshFrameError> {
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
            Body::Message(payload)
        } else if payload.is_empty() {
            Body::Abort
        } else {
            return Err(MeshFrameError::AbortWithPayload {
                session: to.session,
                words: payload.len(),
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
        assert_eq!(
            MeshFrame::decode(header(to, false), vec![4, 5]),
            Ok(MeshFrame {
                to,
                body: Body::Message(vec![4, 5])
            })
        );
        let abort = header(LaneId::online(9), true);
        assert_eq!(
            MeshFrame::decode(abort, vec![]),
            Ok(MeshFrame {
                to: LaneId::online(9),
                body: Body::Abort
            })
        );
        // The start-up session's frames keep the header they had as a bare word: its id.
        assert_eq!(header(LaneId::online(0), false), 0);
        assert_eq!(
            MeshFrame::decode(abort, vec![1]),
            Err(MeshFrameError::AbortWithPayload {
                session: 9,
                words: 1
            })
        );
    }
}
