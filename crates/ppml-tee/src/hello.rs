//! The two handshake messages, typed, with their encoders and total decoders.
//!
//! ```text
//! ClientHello = "PPMLTEE1" | version | nonce (32) | client X25519 key (32)
//! ServerHello = "PPMLTEE1" | version | mode | enclave X25519 key (32) | quote length (u32 BE) | quote
//! ```
//!
//! Both arrive before any key exists, so the decoders read them through a bounded
//! [`Cursor`]: every length is checked, trailing bytes are refused, and every failure is a
//! [`TeeError::Handshake`] (or an unknown evidence mode) rather than a panic.

use ppml_wire::{Cursor, WireError, Writer};

use crate::evidence::TeeMode;
use crate::quote::MAX_QUOTE_LEN;
use crate::{AttestationError, Result, TeeError};

/// Magic bytes opening both hellos.
pub const MAGIC: [u8; 8] = *b"PPMLTEE1";
/// The protocol version.
pub const VERSION: u8 = 1;
/// Bytes of a client hello.
pub const CLIENT_HELLO_LEN: usize = 8 + 1 + 32 + 32;
/// Bytes of a server hello before the quote.
const SERVER_HELLO_FIXED: usize = 8 + 1 + 1 + 32 + 4;
/// The bound on a handshake message.
pub const MAX_HANDSHAKE_LEN: usize = SERVER_HELLO_FIXED + MAX_QUOTE_LEN;

fn bad(reason: impl Into<String>) -> TeeError {
    TeeError::Handshake(reason.into())
}

/// A hello cut short or followed by stray bytes, named after the message it was to be.
fn malformed(which: &str, e: WireError) -> TeeError {
    bad(format!("malformed {which}: {e}"))
}

/// Reads and checks the magic and the version both hellos open with.
fn read_preamble(c: &mut Cursor<'_>, which: &str) -> Result<()> {
    if c.array::<8>().map_err(|e| malformed(which, e))? != MAGIC {
        return Err(bad(format!("not a ppml-tee {which}")));
    }
    let version = c.u8().map_err(|e| malformed(which, e))?;
    if version != VERSION {
        return Err(bad(format!(
            "protocol version {version}, expected {VERSION}"
        )));
    }
    Ok(())
}

fn write_preamble(w: &mut Writer) {
    w.bytes(&MAGIC);
    w.u8(VERSION);
}

/// What the client sends first: a fresh nonce the enclave's quote must bind, and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The client's fresh nonce.
    pub nonce: [u8; 32],
    /// The client's X25519 public key.
    pub public: [u8; 32],
}

impl ClientHello {
    const NAME: &'static str = "client hello";

    /// The hello's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.reserve(CLIENT_HELLO_LEN);
        write_preamble(&mut w);
        w.bytes(&self.nonce);
        w.bytes(&self.public);
        w.into_bytes()
    }

    /// Parses a client hello.
    ///
    /// # Errors
    /// [`TeeError::Handshake`] for a wrong length, magic or version.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != CLIENT_HELLO_LEN {
            return Err(bad(format!(
                "client hello of {} bytes, expected {CLIENT_HELLO_LEN}",
                b.len()
            )));
        }
        let mut c = Cursor::new(b);
        read_preamble(&mut c, Self::NAME)?;
        let fields = (|| {
            let hello = Self {
                nonce: c.array()?,
                public: c.array()?,
            };
            c.finish().map(|()| hello)
        })();
        fields.map_err(|e| malformed(Self::NAME, e))
    }
}

/// The enclave's answer: its evidence mode, its fresh key and the quote binding that key to
/// the client's nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// The kind of evidence the enclave claims to send.
    pub mode: TeeMode,
    /// The enclave's X25519 public key.
    pub public: [u8; 32],
    /// The attestation quote (at most [`MAX_QUOTE_LEN`] bytes).
    pub quote: &'a [u8],
}

impl<'a> ServerHello<'a> {
    const NAME: &'static str = "server hello";

    /// The hello's bytes.
    ///
    /// # Errors
    /// [`TeeError::Handshake`] if the quote is above [`MAX_QUOTE_LEN`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let quote_len = u32::try_from(self.quote.len())
            .ok()
            .filter(|&l| l as usize <= MAX_QUOTE_LEN)
            .ok_or_else(|| bad(format!("quote of {} bytes is too large", self.quote.len())))?;
        let mut w = Writer::new();
        w.reserve(SERVER_HELLO_FIXED + self.quote.len());
        write_preamble(&mut w);
        w.u8(self.mode.code());
        w.bytes(&self.public);
        // Big-endian, as the handshake's length prefixes.
        w.bytes(&quote_len.to_be_bytes());
        w.bytes(self.quote);
        Ok(w.into_bytes())
    }

    /// Parses a server hello.
    ///
    /// # Errors
    /// [`TeeError::Handshake`] for a short hello, a wrong magic or version, or a quote whose
    /// length is not the one declared or is above [`MAX_QUOTE_LEN`];
    /// [`AttestationError::UnknownMode`] for an unknown evidence mode.
    pub fn decode(b: &'a [u8]) -> Result<Self> {
        if b.len() < SERVER_HELLO_FIXED {
            return Err(bad(format!(
                "server hello of {} bytes is too short",
                b.len()
            )));
        }
        let mut c = Cursor::new(b);
        read_preamble(&mut c, Self::NAME)?;
        let (code, public, len) = (|| Ok::<_, WireError>((c.u8()?, c.array()?, c.array()?)))()
            .map_err(|e| malformed(Self::NAME, e))?;
        let mode = TeeMode::from_code(code).ok_or(AttestationError::UnknownMode(code))?;
        let len = u32::from_be_bytes(len) as usize;
        if c.remaining() != len || len > MAX_QUOTE_LEN {
            return Err(bad(format!(
                "server hello declares a {len}-byte quote and carries {}",
                c.remaining()
            )));
        }
        let quote = c.take(len).map_err(|e| malformed(Self::NAME, e))?;
        Ok(Self {
            mode,
            public,
            quote,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellos_round_trip_and_bad_ones_are_refused() -> Result<()> {
        let client = ClientHello {
            nonce: [3; 32],
            public: [5; 32],
        };
        let bytes = client.encode();
        assert_eq!(bytes.len(), CLIENT_HELLO_LEN);
        assert_eq!(ClientHello::decode(&bytes)?, client);
        let server = ServerHello {
            mode: TeeMode::Simulated,
            public: [7; 32],
            quote: b"quote",
        };
        let bytes = server.encode()?;
        assert_eq!(ServerHello::decode(&bytes)?, server);

        // A wrong magic, a wrong version, a quote longer or shorter than declared.
        let mut wrong = bytes.clone();
        wrong[0] ^= 1;
        assert!(
            matches!(ServerHello::decode(&wrong), Err(TeeError::Handshake(m)) if m.contains("not a"))
        );
        let mut wrong = client.encode();
        wrong[8] = VERSION + 1;
        assert!(
            matches!(ClientHello::decode(&wrong), Err(TeeError::Handshake(m)) if m.contains("version"))
        );
        for cut in [bytes.len() - 1, SERVER_HELLO_FIXED] {
            assert!(
                matches!(ServerHello::decode(&bytes[..cut]), Err(TeeError::Handshake(m)) if m.contains("declares"))
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(ServerHello::decode(&long).is_err());
        let mut mode = bytes;
        mode[9] = 0xee;
        assert!(matches!(
            ServerHello::decode(&mode),
            Err(TeeError::Attestation(AttestationError::UnknownMode(0xee)))
        ));
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn decoders_are_total_and_exact(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(h) = ClientHello::decode(&bytes) {
                proptest::prop_assert_eq!(h.encode(), bytes.clone());
            }
            if let Ok(h) = ServerHello::decode(&bytes) {
                proptest::prop_assert_eq!(h.encode().ok(), Some(bytes.clone()));
            }
        }
    }
}
