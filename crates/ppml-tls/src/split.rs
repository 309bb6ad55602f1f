//! A TLS connection over TCP split into a reading half and a writing half that two threads use
//! at once, for protocols where both peers may send large messages at the same time (a single
//! blocking stream would deadlock once both sockets' buffers are full).
//!
//! The halves share the rustls connection state behind a mutex held only while records are
//! decrypted or encrypted, never during socket I/O. Only the writer puts records on the socket,
//! in the order rustls produced them (a record rustls queues while reading, such as a key-update
//! answer, goes out with the next write).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::Connection;

/// Plaintext bytes taken per `write` call.
const WRITE_CHUNK: usize = 1 << 16;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 1 << 16;

type Shared = Arc<Mutex<Connection>>;

fn lock(conn: &Mutex<Connection>) -> io::Result<MutexGuard<'_, Connection>> {
    conn.lock()
        .map_err(|_| io::Error::other("the other half of the TLS connection panicked"))
}

/// The reading half: decrypted bytes from the peer.
pub struct TlsReader {
    conn: Shared,
    sock: TcpStream,
    raw: Vec<u8>,
    plain: Vec<u8>,
    start: usize,
    closed: bool,
}

/// The writing half: bytes encrypted and written to the peer.
pub struct TlsWriter {
    conn: Shared,
    sock: TcpStream,
}

/// Splits an established TLS stream (after [`crate::Connector::connect`] or
/// [`crate::Acceptor::accept`]) into halves that can live on different threads.
///
/// # Errors
/// If the socket cannot be duplicated.
pub fn split<C: Into<Connection>>(
    stream: rustls::StreamOwned<C, TcpStream>,
) -> io::Result<(TlsReader, TlsWriter)> {
    let rustls::StreamOwned { conn, sock } = stream;
    let conn = Arc::new(Mutex::new(conn.into()));
    let reader = TlsReader {
        conn: Arc::clone(&conn),
        sock: sock.try_clone()?,
        raw: vec![0; READ_CHUNK],
        plain: Vec::new(),
        start: 0,
        closed: false,
    };
    Ok((reader, TlsWriter { conn, sock }))
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsReader {
    /// Decrypts `n` bytes just read from the socket (0: the socket's end) into `self.plain`.
    /// Returns false once the peer has closed the TLS session.
    fn absorb(&mut self, n: usize) -> io::Result<bool> {
        let mut conn = lock(&self.conn)?;
        let mut input = &self.raw[..n];
        loop {
            let took = conn.read_tls(&mut input)?;
            conn.process_new_packets().map_err(tls_error)?;
            self.plain.drain(..self.start);
            self.start = 0;
            match conn.reader().read_to_end(&mut self.plain) {
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if input.is_empty() || took == 0 {
                return Ok(true);
            }
        }
    }
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.start < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.start);
                buf[..n].copy_from_slice(&self.plain[self.start..self.start + n]);
                self.start += n;
                return Ok(n);
            }
            if self.closed {
                // The peer's close_notify: a clean end of the stream (a socket that ends
                // without one is an error from rustls, in `absorb`).
                return Ok(0);
            }
            let n = self.sock.read(&mut self.raw)?;
            self.closed = !self.absorb(n)?;
        }
    }
}

impl TlsWriter {
    /// Encrypts `plain` and writes the records (with any rustls queued before them), without
    /// holding the connection during the socket write.
    fn send(&mut self, mut plain: &[u8]) -> io::Result<()> {
        loop {
            let mut records = Vec::new();
            {
                let mut conn = lock(&self.conn)?;
                if !plain.is_empty() {
                    // rustls takes what its outgoing buffer has room for.
                    let n = conn.writer().write(plain)?;
                    plain = &plain[n..];
                }
                while conn.wants_write() {
                    conn.write_tls(&mut records)?;
                }
            }
            if records.is_empty() && !plain.is_empty() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sock.write_all(&records)?;
            if plain.is_empty() {
                return Ok(());
            }
        }
    }

    /// Ends this direction: sends TLS's close_notify and shuts the socket's writing side down.
    /// The peer reads the end of the stream after everything sent before; this side can still
    /// read what the peer sends.
    pub fn close(&mut self) {
        if let Ok(mut conn) = lock(&self.conn) {
            conn.send_close_notify();
        }
        let _ = self.send(&[]);
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    /// The socket both halves use (to set timeouts, or to shut reading down so that a thread
    /// blocked in [`TlsReader`] returns).
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

impl Write for TlsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(WRITE_CHUNK);
        self.send(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

    use super::*;
    use crate::{Acceptor, Ca, Connector, Trust};
    use std::net::TcpListener;

    #[test]
    fn both_peers_send_large_messages_at_once_and_a_close_is_an_end_of_stream() {
        let ca = Ca::generate("test CA").expect("ca");
        let acceptor = Acceptor::new(&ca.identity("server").expect("id"), None).expect("acceptor");
        let connector = Connector::new(&Trust::Roots(vec![ca.cert().clone()]), None, "server")
            .expect("connector");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        // 8 MB each way, sent by both sides before either reads: far beyond socket buffers.
        const LEN: usize = 8 << 20;
        let message: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let expected = message.clone();
        let peer = |(mut r, mut w): (TlsReader, TlsWriter), msg: Vec<u8>| {
            let sender = std::thread::spawn(move || {
                w.write_all(&msg).expect("write");
                w
            });
            let mut got = vec![0; LEN];
            r.read_exact(&mut got).expect("read");
            let mut w = sender.join().expect("sender");
            w.close();
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).expect("clean end");
            assert!(rest.is_empty());
            got
        };
        let server = std::thread::spawn({
            let message = message.clone();
            move || {
                let (s, _) = listener.accept().expect("accept");
                let stream = acceptor.accept(s).expect("handshake");
                peer(split(stream).expect("split"), message)
            }
        });
        let sock = TcpStream::connect(addr).expect("connect");
        let stream = connector.connect(sock).expect("handshake");
        let got = peer(split(stream).expect("split"), message);
        assert_eq!(got, expected);
        assert_eq!(server.join().expect("server"), expected);
    }
}
