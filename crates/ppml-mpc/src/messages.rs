//! The client protocol's messages, typed: each is one word frame whose first word is its tag,
//! and each decoder checks its own length and fields (see [`crate::service`] for the exchange).
//! Input shares travel as bare frames after a [`ToParty::Query`]; their length is the query's.

use std::io::Write;

use ppml_wire::frame::write_word_frame;
use ppml_wire::words_from_bytes;

/// Version of the client protocol.
pub const VERSION: u64 = 2;

/// Frame tags (the first word).
mod tag {
    pub(super) const HELLO: u64 = 1;
    pub(super) const READY: u64 = 2;
    pub(super) const QUERY: u64 = 3;
    pub(super) const RESULT: u64 = 4;
    pub(super) const ERROR: u64 = 5;
    pub(super) const BYE: u64 = 6;
}

/// Why a frame is not a message of the client protocol.
pub type Malformed = &'static str;

/// The client's first message to each party: what it expects of the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The client protocol's version ([`VERSION`]).
    pub version: u64,
    /// The session's id on the parties' mesh.
    pub session: u64,
    /// Protocol (2 or 3), fractional bits, comparison (0 bit decomposition, 1 FSS).
    pub setting: [u64; 3],
    /// Inputs per image.
    pub in_len: u64,
    /// Outputs per image.
    pub classes: u64,
    /// Images per query the offline phase makes material for (0: none).
    pub pool: u64,
    /// Most queries of `pool` images the session will run (0: no bound): the offline phase
    /// makes material for no more than these.
    pub pool_queries: u64,
}

/// A client's message to a party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToParty {
    /// Opens the session.
    Hello(Hello),
    /// A query of `images` images; the party's input share frames follow.
    Query {
        /// Images in the batch.
        images: u64,
    },
    /// Ends the session.
    Bye,
}

/// A party's answer to a hello: the session is open, and what opening it cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Bytes this party sent the others at its start-up.
    pub startup_bytes: u64,
    /// Bytes this party sent to open the session.
    pub session_bytes: u64,
    /// Bytes of material made ahead while the session opened.
    pub offline_bytes: u64,
    /// Time spent making it, in nanoseconds.
    pub offline_nanos: u64,
}

/// A party's answer to a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryResult {
    /// Bytes this party sent the others for the query.
    pub bytes_sent: u64,
    /// Rounds on this party's critical path.
    pub rounds: u64,
    /// Bytes of the material made ahead that the query used.
    pub offline_bytes: u64,
    /// Time spent making it, in nanoseconds.
    pub offline_nanos: u64,
    /// Whether the query's material had to be made on demand.
    pub on_demand: bool,
    /// This party's share of the outputs (empty at a party without inputs).
    pub y: Vec<u64>,
}

/// A party's message to its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToClient {
    /// The session is open.
    Ready(Ready),
    /// A query's result.
    Result(QueryResult),
    /// The session ended, and why.
    Error(String),
}

impl ToParty {
    /// The frame's words.
    pub fn encode(&self) -> Vec<u64> {
        match self {
            ToParty::Hello(h) => {
                let [p, f, c] = h.setting;
                vec![
                    tag::HELLO,
                    h.version,
                    h.session,
                    p,
                    f,
                    c,
                    h.in_len,
                    h.classes,
                    h.pool,
                    h.pool_queries,
                ]
            }
            ToParty::Query { images } => vec![tag::QUERY, *images],
            ToParty::Bye => vec![tag::BYE],
        }
    }

    /// Decodes a frame.
    ///
    /// # Errors
    /// An unknown tag or a length that does not fit it.
    pub fn decode(frame: &[u64]) -> Result<Self, Malformed> {
        match *frame {
            [tag::HELLO, version, session, p, f, c, in_len, classes, pool, pool_queries] => {
                Ok(ToParty::Hello(Hello {
                    version,
                    session,
                    setting: [p, f, c],
                    in_len,
                    classes,
                    pool,
                    pool_queries,
                }))
            }
            [tag::QUERY, images] => Ok(ToParty::Query { images }),
            [tag::BYE] => Ok(ToParty::Bye),
            [tag::HELLO, ..] => Err("a hello of another length (another version)"),
            _ => Err("unexpected frame"),
        }
    }
}

impl ToClient {
    /// Writes the message as one frame (a result's outputs are not copied first).
    ///
    /// # Errors
    /// Whatever the stream returns.
    pub fn write(&self, w: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        match self {
            ToClient::Ready(r) => write_word_frame(
                w,
                &[
                    tag::READY,
                    r.startup_bytes,
                    r.session_bytes,
                    r.offline_bytes,
                    r.offline_nanos,
                ],
                &[],
            ),
            ToClient::Result(r) => write_word_frame(
                w,
                &[
                    tag::RESULT,
                    r.bytes_sent,
                    r.rounds,
                    r.offline_bytes,
                    r.offline_nanos,
                    u64::from(r.on_demand),
                ],
                &r.y,
            ),
            ToClient::Error(message) => {
                let bytes = message.as_bytes();
                let packed = words_from_bytes(bytes);
                write_word_frame(w, &[tag::ERROR, bytes.len() as u64], &packed)
            }
        }
    }

    /// Decodes a frame (taking a result's outputs without copying them).
    ///
    /// # Errors
    /// An unknown tag, a length that does not fit it, or a flag other than 0 or 1.
    pub fn decode(mut frame: Vec<u64>) -> Result<Self, Malformed> {
        match *frame.as_slice() {
            [tag::READY, startup_bytes, session_bytes, offline_bytes, offline_nanos] => {
                Ok(ToClient::Ready(Ready {
                    startup_bytes,
                    session_bytes,
                    offline_bytes,
                    offline_nanos,
                }))
            }
            [tag::RESULT, bytes_sent, rounds, offline_bytes, offline_nanos, on_demand, ..] => {
                let on_demand = match on_demand {
                    0 => false,
                    1 => true,
                    _ => return Err("a result's on-demand flag is neither 0 nor 1"),
                };
                let y = frame.split_off(6);
                Ok(ToClient::Result(QueryResult {
                    bytes_sent,
                    rounds,
                    offline_bytes,
                    offline_nanos,
                    on_demand,
                    y,
                }))
            }
            [tag::ERROR, len, ref packed @ ..] => {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l.div_ceil(8) == packed.len())
                    .ok_or("an error message of another length than announced")?;
                let bytes: Vec<u8> = packed.iter().flat_map(|w| w.to_le_bytes()).collect();
                Ok(ToClient::Error(
                    String::from_utf8_lossy(&bytes[..len]).into_owned(),
                ))
            }
            _ => Err("unexpected frame"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_wire::frame::read_word_frame;

    fn round_trip(m: &ToClient) -> Result<ToClient, Malformed> {
        let mut bytes = Vec::new();
        m.write(&mut bytes).map_err(|_| "write")?;
        let frame = read_word_frame(&mut bytes.as_slice(), 1 << 10)
            .ok()
            .flatten()
            .ok_or("read")?;
        ToClient::decode(frame)
    }

    #[test]
    fn messages_read_back_as_written() -> Result<(), Malformed> {
        let hello = ToParty::Hello(Hello {
            version: VERSION,
            session: 9,
            setting: [3, 16, 1],
            in_len: 784,
            classes: 10,
            pool: 4,
            pool_queries: 50,
        });
        for m in [hello, ToParty::Query { images: 5 }, ToParty::Bye] {
            assert_eq!(ToParty::decode(&m.encode())?, m);
        }
        let result = QueryResult {
            bytes_sent: 1,
            rounds: 2,
            offline_bytes: 3,
            offline_nanos: 4,
            on_demand: true,
            y: vec![5, 6, 7],
        };
        for m in [
            ToClient::Ready(Ready {
                startup_bytes: 1,
                session_bytes: 2,
                offline_bytes: 3,
                offline_nanos: 4,
            }),
            ToClient::Result(result),
            ToClient::Error("no more sessions: é".into()),
            ToClient::Error(String::new()),
        ] {
            assert_eq!(round_trip(&m)?, m);
        }
        Ok(())
    }

    #[test]
    fn frames_of_the_wrong_shape_are_refused() {
        assert!(ToParty::decode(&[]).is_err());
        assert!(ToParty::decode(&[tag::HELLO, VERSION, 1]).is_err());
        assert!(ToParty::decode(&[tag::QUERY]).is_err());
        assert!(ToParty::decode(&[tag::BYE, 0]).is_err());
        assert!(ToParty::decode(&[tag::READY, 0, 0, 0, 0]).is_err());
        assert!(ToClient::decode(vec![tag::READY, 0, 0, 0]).is_err());
        assert!(ToClient::decode(vec![tag::RESULT, 0, 0, 0, 0, 2]).is_err());
        assert!(ToClient::decode(vec![tag::ERROR, 9, 0]).is_err());
        assert!(ToClient::decode(vec![tag::ERROR, u64::MAX]).is_err());
        assert!(ToClient::decode(vec![tag::QUERY, 1]).is_err());
    }
}
