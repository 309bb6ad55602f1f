//! The link over a TCP stream: frames of an 8-byte little-endian word count and the words. A
//! reader thread drains incoming frames into a channel, so that both parties sending large
//! messages at once cannot deadlock; a frame announcing more than [`MAX_FRAME_WORDS`] ends the
//! session (memory grows with bytes received, never with an announced size).

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::error::{HybridError, Result};
use crate::link::{Counter, Link, LinkStats};

/// Largest frame accepted (1 GiB).
pub const MAX_FRAME_WORDS: u64 = 1 << 27;
/// Bytes read at a time into a frame.
const READ_CHUNK: usize = 1 << 20;

/// One party's end of a TCP connection to the other.
pub struct TcpLink {
    peer: &'static str,
    writer: BufWriter<TcpStream>,
    rx: Receiver<Result<Vec<u64>>>,
    timeout: Duration,
    counter: Counter,
}

/// Reads one frame; `Ok(None)` at a clean end of stream before a frame.
pub fn read_frame(r: &mut impl Read, peer: &'static str) -> Result<Option<Vec<u64>>> {
    let closed = |e: std::io::Error| HybridError::LinkClosed {
        peer,
        reason: e.to_string(),
    };
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut head[got..]).map_err(closed)? {
            0 if got == 0 => return Ok(None),
            0 => {
                return Err(HybridError::LinkClosed {
                    peer,
                    reason: "stream ended inside a frame header".into(),
                })
            }
            n => got += n,
        }
    }
    let words = u64::from_le_bytes(head);
    if words > MAX_FRAME_WORDS {
        return Err(HybridError::InvalidContent {
            what: "frame length",
            index: 0,
        });
    }
    let total = 8 * words as usize;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK.min(total)];
    while bytes.len() < total {
        let want = (total - bytes.len()).min(buf.len());
        r.read_exact(&mut buf[..want]).map_err(closed)?;
        bytes.extend_from_slice(&buf[..want]);
    }
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect(),
    ))
}

impl TcpLink {
    /// Wraps a connected stream; `peer` names the other side in errors.
    pub fn new(stream: TcpStream, peer: &'static str, timeout: Duration) -> Result<Self> {
        let io = |e: std::io::Error| HybridError::LinkClosed {
            peer,
            reason: e.to_string(),
        };
        stream.set_nodelay(true).map_err(io)?;
        let mut reader = stream.try_clone().map_err(io)?;
        let (tx, rx) = channel();
        std::thread::spawn(move || loop {
            let frame = read_frame(&mut reader, peer);
            let end = !matches!(frame, Ok(Some(_)));
            let msg = match frame {
                Ok(Some(f)) => Ok(f),
                Ok(None) => Err(HybridError::LinkClosed {
                    peer,
                    reason: "the peer closed the connection".into(),
                }),
                Err(e) => Err(e),
            };
            if tx.send(msg).is_err() || end {
                return;
            }
        });
        Ok(Self {
            peer,
            writer: BufWriter::with_capacity(1 << 16, stream),
            rx,
            timeout,
            counter: Counter::default(),
        })
    }
}

impl Link for TcpLink {
    fn send(&mut self, msg: Vec<u64>) -> Result<()> {
        self.counter.sent(msg.len());
        let peer = self.peer;
        let io = |e: std::io::Error| HybridError::LinkClosed {
            peer,
            reason: e.to_string(),
        };
        self.writer
            .write_all(&(msg.len() as u64).to_le_bytes())
            .map_err(io)?;
        for w in &msg {
            self.writer.write_all(&w.to_le_bytes()).map_err(io)?;
        }
        self.writer.flush().map_err(io)
    }

    fn recv(&mut self) -> Result<Vec<u64>> {
        let m = match self.rx.recv_timeout(self.timeout) {
            Ok(m) => m?,
            Err(RecvTimeoutError::Timeout) => {
                return Err(HybridError::Timeout {
                    peer: self.peer,
                    seconds: self.timeout.as_secs(),
                })
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(HybridError::LinkClosed {
                    peer: self.peer,
                    reason: "the connection's reader stopped".into(),
                })
            }
        };
        self.counter.received(m.len());
        Ok(m)
    }

    fn stats(&self) -> LinkStats {
        self.counter.stats()
    }
}

impl Drop for TcpLink {
    fn drop(&mut self) {
        // Wake the reader thread and tell the peer: the session is over.
        let _ = self.writer.flush();
        let _ = self.writer.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn frames_cross_a_socket_and_bad_frames_end_the_session() -> Result<()> {
        let io = |e: std::io::Error| HybridError::LinkClosed {
            peer: "test",
            reason: e.to_string(),
        };
        let l = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let addr = l.local_addr().map_err(io)?;
        let h = std::thread::spawn(move || -> Result<Vec<u64>> {
            let (s, _) = l.accept().map_err(io)?;
            let mut link = TcpLink::new(s, "client", Duration::from_secs(10))?;
            let m = link.recv()?;
            link.send(vec![7; 100_000])?;
            Ok(m)
        });
        let mut c = TcpLink::new(
            TcpStream::connect(addr).map_err(io)?,
            "server",
            Duration::from_secs(10),
        )?;
        c.send(vec![1, 2, 3])?;
        assert_eq!(c.recv()?.len(), 100_000);
        assert_eq!(
            h.join().map_err(|_| io(std::io::Error::other("join")))??,
            vec![1, 2, 3]
        );
        assert!(matches!(c.recv(), Err(HybridError::LinkClosed { .. })));
        // A frame announcing too much, a truncated one, and a clean end.
        let mut huge = (MAX_FRAME_WORDS + 1).to_le_bytes().to_vec();
        huge.extend([0u8; 8]);
        assert!(read_frame(&mut &huge[..], "p").is_err());
        let cut = [2u8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        assert!(read_frame(&mut &cut[..], "p").is_err());
        assert!(matches!(read_frame(&mut &[][..], "p"), Ok(None)));
        Ok(())
    }
}
