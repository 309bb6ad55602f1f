//! The link over TLS 1.3 on TCP (`ppml-tls`: the server proves a certificate of the deployment's
//! CA and its name; the client is anonymous, as an HE client is). Frames are `ppml-wire`'s word
//! frames: an 8-byte little-endian word count and the words. A reader thread drains incoming frames into a
//! channel, so that both parties sending large messages at once cannot deadlock; a frame
//! announcing more than [`MAX_FRAME_WORDS`] ends the session (memory grows with bytes
//! received, never with an announced size).

use std::io::{BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use ppml_tls::{Acceptor, Connector, TlsWriter};
use ppml_wire::frame::{read_word_frame, write_word_frame};
use ppml_wire::WireError;

use crate::error::{HybridError, Result};
use crate::link::{Counter, Link, LinkStats};

/// Largest frame accepted (1 GiB).
pub const MAX_FRAME_WORDS: u64 = 1 << 27;
/// Longest wait for a TCP connection and a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// One party's end of a TLS connection to the other.
pub struct TlsLink {
    peer: &'static str,
    writer: BufWriter<TlsWriter>,
    rx: Receiver<Result<Vec<u64>>>,
    timeout: Duration,
    counter: Counter,
}

/// Reads one frame (`ppml-wire`'s word frame of at most [`MAX_FRAME_WORDS`]); `Ok(None)` at a
/// clean end of stream before a frame.
pub fn read_frame(r: &mut impl Read, peer: &'static str) -> Result<Option<Vec<u64>>> {
    read_word_frame(r, MAX_FRAME_WORDS).map_err(|e| match e {
        WireError::TooLarge { .. } => HybridError::InvalidContent {
            what: "frame length",
            index: 0,
        },
        e => HybridError::LinkClosed {
            peer,
            reason: e.to_string(),
        },
    })
}

fn io_error(peer: &'static str) -> impl Fn(std::io::Error) -> HybridError {
    move |e| HybridError::LinkClosed {
        peer,
        reason: e.to_string(),
    }
}

impl TlsLink {
    /// Connects to the server at `addr` and runs the TLS handshake: the server must prove the
    /// identity `tls` checks. `timeout`: how long to wait for the server once connected.
    pub fn connect(addr: &str, tls: &Connector, timeout: Duration) -> Result<Self> {
        let peer = "server";
        let unreachable = |reason: String| HybridError::LinkClosed {
            peer,
            reason: format!("connecting to {addr}: {reason}"),
        };
        let target = addr
            .to_socket_addrs()
            .map_err(|e| unreachable(e.to_string()))?
            .next()
            .ok_or_else(|| unreachable("no address".into()))?;
        let sock = TcpStream::connect_timeout(&target, HANDSHAKE_TIMEOUT)
            .map_err(|e| unreachable(e.to_string()))?;
        Self::handshake(sock, peer, timeout, |s| {
            ppml_tls::split(tls.connect(s)?).map_err(io_error(peer))
        })
    }

    /// Runs the server's TLS handshake on an accepted connection.
    pub fn accept(sock: TcpStream, tls: &Acceptor, timeout: Duration) -> Result<Self> {
        Self::handshake(sock, "client", timeout, |s| {
            ppml_tls::split(tls.accept(s)?).map_err(io_error("client"))
        })
    }

    fn handshake(
        sock: TcpStream,
        peer: &'static str,
        timeout: Duration,
        tls: impl FnOnce(TcpStream) -> Result<(ppml_tls::TlsReader, TlsWriter)>,
    ) -> Result<Self> {
        let io = io_error(peer);
        sock.set_nodelay(true).map_err(&io)?;
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(&io)?;
        sock.set_write_timeout(Some(HANDSHAKE_TIMEOUT))
            .map_err(&io)?;
        let (mut reader, writer) = tls(sock)?;
        // After the handshake, the reader waits as long as the peer takes (the channel's
        // timeout decides), a write at most `timeout`.
        writer.socket().set_read_timeout(None).map_err(&io)?;
        writer
            .socket()
            .set_write_timeout(Some(timeout))
            .map_err(&io)?;
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
            writer: BufWriter::with_capacity(1 << 16, writer),
            rx,
            timeout,
            counter: Counter::default(),
        })
    }
}

impl Link for TlsLink {
    fn send(&mut self, msg: Vec<u64>) -> Result<()> {
        self.counter.sent(msg.len());
        write_word_frame(&mut self.writer, &[], &msg).map_err(io_error(self.peer))
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

impl Drop for TlsLink {
    fn drop(&mut self) {
        // Tell the peer the session is over (close_notify), and wake the reader thread.
        let _ = self.writer.flush();
        let w = self.writer.get_mut();
        w.close();
        let _ = w.socket().shutdown(Shutdown::Read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_tls::{Ca, Trust};
    use std::net::TcpListener;

    fn tls_err(e: ppml_tls::TlsError) -> HybridError {
        HybridError::Tls(e)
    }

    #[test]
    fn frames_cross_tls_both_ways_at_once_and_bad_frames_end_the_session() -> Result<()> {
        let io = io_error("test");
        let ca = Ca::generate("test CA").map_err(tls_err)?;
        let acceptor = Acceptor::new(&ca.identity("hybrid-server").map_err(tls_err)?, None)
            .map_err(tls_err)?;
        let trust = Trust::Roots(vec![ca.cert().clone()]);
        let l = TcpListener::bind("127.0.0.1:0").map_err(&io)?;
        let addr = l.local_addr().map_err(&io)?.to_string();
        let h = std::thread::spawn(move || -> Result<Vec<u64>> {
            let (s, _) = l.accept().map_err(io_error("test"))?;
            let mut link = TlsLink::accept(s, &acceptor, Duration::from_secs(10))?;
            // Both sides send 16 MB before reading.
            link.exchange("big", vec![7; 1 << 21])?;
            link.recv()
        });
        let connector = Connector::new(&trust, None, "hybrid-server").map_err(tls_err)?;
        let mut c = TlsLink::connect(&addr, &connector, Duration::from_secs(10))?;
        assert_eq!(c.exchange("big", vec![9; 1 << 21])?, vec![7; 1 << 21]);
        c.send(vec![1, 2, 3])?;
        assert_eq!(
            h.join().map_err(|_| io(std::io::Error::other("join")))??,
            vec![1, 2, 3]
        );
        assert!(matches!(c.recv(), Err(HybridError::LinkClosed { .. })));
        // A server whose certificate carries another name is refused.
        let wrong = Connector::new(&trust, None, "other-name").map_err(tls_err)?;
        let l = TcpListener::bind("127.0.0.1:0").map_err(&io)?;
        let addr = l.local_addr().map_err(&io)?.to_string();
        let acceptor = Acceptor::new(&ca.identity("hybrid-server").map_err(tls_err)?, None)
            .map_err(tls_err)?;
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().map_err(io_error("test"))?;
            TlsLink::accept(s, &acceptor, Duration::from_secs(10)).map(|_| ())
        });
        assert!(matches!(
            TlsLink::connect(&addr, &wrong, Duration::from_secs(10)),
            Err(HybridError::Tls(_))
        ));
        assert!(h
            .join()
            .map_err(|_| io(std::io::Error::other("join")))?
            .is_err());
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
