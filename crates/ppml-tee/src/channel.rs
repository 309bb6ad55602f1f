//! The record layer of the secure channel: pure state machines, no sockets.
//!
//! After the handshake each direction has its own ChaCha20-Poly1305 key and a 64-bit sequence
//! counter. A frame is
//!
//! ```text
//! len: u32 BE (ciphertext + tag) | seq: u64 BE | ciphertext | tag (16)
//! ```
//!
//! The 12-byte header and the direction are authenticated as associated data, and the nonce is
//! `direction || 0 0 0 || seq`, so a nonce is never reused under a key. The receiver accepts only
//! the next sequence number: a smaller one is a replay, a larger one a reordering (or a dropped
//! frame), and either is rejected before decryption with a typed [`FrameError`]. Any rejection
//! should end the session (the service and the client both do).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::FrameError;

/// Bytes of a frame header: a `u32` length and a `u64` sequence number.
pub const HEADER_LEN: usize = 12;
/// Bytes of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// The default bound on one frame's ciphertext (64 MiB: a batch of ~20,000 MNIST images).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Which end of the channel a party is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The party that verifies the evidence and sends images.
    Client,
    /// The party inside the enclave.
    Enclave,
}

/// The direction byte of frames sent by `role`.
fn direction(role: Role) -> u8 {
    match role {
        Role::Client => 0x43,  // 'C': client to enclave
        Role::Enclave => 0x45, // 'E': enclave to client
    }
}

/// The two directional keys of one session, derived from the X25519 shared secret and bound to
/// the handshake transcript.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    client_to_enclave: [u8; 32],
    enclave_to_client: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// HKDF-SHA256 with the transcript hash as salt and the shared secret as input key material.
    pub fn derive(shared_secret: &[u8; 32], transcript_hash: &[u8; 32]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(transcript_hash), shared_secret);
        let mut keys = Self {
            client_to_enclave: [0; 32],
            enclave_to_client: [0; 32],
        };
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail; a failure
        // would leave the keys zero, which the caller never uses because both ends derive alike.
        let ok_c = hk
            .expand(b"ppml-tee/v1 client->enclave", &mut keys.client_to_enclave)
            .is_ok();
        let ok_e = hk
            .expand(b"ppml-tee/v1 enclave->client", &mut keys.enclave_to_client)
            .is_ok();
        debug_assert!(ok_c && ok_e);
        keys
    }

    /// The sealer (sending half) and opener (receiving half) for `role`.
    pub fn split(&self, role: Role, max_frame: usize) -> (Sealer, Opener) {
        let (send, recv, peer) = match role {
            Role::Client => (
                &self.client_to_enclave,
                &self.enclave_to_client,
                Role::Enclave,
            ),
            Role::Enclave => (
                &self.enclave_to_client,
                &self.client_to_enclave,
                Role::Client,
            ),
        };
        (
            Sealer {
                cipher: ChaCha20Poly1305::new(&Key::from(*send)),
                dir: direction(role),
                seq: 0,
            },
            Opener {
                cipher: ChaCha20Poly1305::new(&Key::from(*recv)),
                dir: direction(peer),
                next: 0,
                max_frame,
            },
        )
    }
}

fn nonce(dir: u8, seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = dir;
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::from(n)
}

fn aad(header: &[u8; HEADER_LEN], dir: u8) -> [u8; HEADER_LEN + 1] {
    let mut a = [0u8; HEADER_LEN + 1];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN] = dir;
    a
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of ciphertext and tag that follow.
    pub len: usize,
    /// The sender's sequence number.
    pub seq: u64,
}

/// Parses and bounds-checks a frame header.
pub fn parse_header(
    header: &[u8; HEADER_LEN],
    max_frame: usize,
) -> Result<FrameHeader, FrameError> {
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[4..]);
    let len = u32::from_be_bytes(len) as usize;
    if len > max_frame {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: max_frame as u64,
        });
    }
    if len < TAG_LEN {
        return Err(FrameError::TooShort {
            len: len as u64,
            min: TAG_LEN as u64,
        });
    }
    Ok(FrameHeader {
        len,
        seq: u64::from_be_bytes(seq),
    })
}

/// The sending half: encrypts messages into frames with increasing sequence numbers.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    dir: u8,
    seq: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("seq", &self.seq).finish()
    }
}

impl Sealer {
    /// Encrypts `plaintext` into one complete frame (header included).
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, FrameError> {
        if self.seq == u64::MAX {
            return Err(FrameError::CounterExhausted);
        }
        let ct_len = plaintext.len() + TAG_LEN;
        let len = u32::try_from(ct_len).map_err(|_| FrameError::TooLarge {
            len: ct_len as u64,
            max: u64::from(u32::MAX),
        })?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4..].copy_from_slice(&self.seq.to_be_bytes());
        let ct = self
            .cipher
            .encrypt(
                &nonce(self.dir, self.seq),
                Payload {
                    msg: plaintext,
                    aad: &aad(&header, self.dir),
                },
            )
            .map_err(|_| FrameError::TooLarge {
                len: ct_len as u64,
                max: u64::from(u32::MAX),
            })?;
        self.seq += 1;
        let mut frame = Vec::with_capacity(HEADER_LEN + ct.len());
        frame.extend_from_slice(&header);
        frame.extend_from_slice(&ct);
        Ok(frame)
    }

    /// The sequence number the next frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }
}

/// The receiving half: accepts exactly the next frame in sequence and decrypts it.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    dir: u8,
    next: u64,
    max_frame: usize,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("next", &self.next)
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

impl Opener {
    /// The bound on one frame's ciphertext.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Checks and decrypts one complete frame (header included). The state advances only when
    /// the frame is accepted.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
        let header: &[u8; HEADER_LEN] = frame
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(FrameError::Truncated {
                got: frame.len(),
                expected: HEADER_LEN,
            })?;
        let h = parse_header(header, self.max_frame)?;
        let body = &frame[HEADER_LEN..];
        if body.len() < h.len {
            return Err(FrameError::Truncated {
                got: frame.len(),
                expected: HEADER_LEN + h.len,
            });
        }
        if body.len() > h.len {
            return Err(FrameError::TooLarge {
                len: body.len() as u64,
                max: h.len as u64,
            });
        }
        self.open_parts(header, h, body)
    }

    /// Checks and decrypts a frame given as its header (already parsed by [`parse_header`]) and
    /// body; used by the stream reader to avoid a copy.
    pub fn open_parts(
        &mut self,
        header: &[u8; HEADER_LEN],
        h: FrameHeader,
        body: &[u8],
    ) -> Result<Vec<u8>, FrameError> {
        if self.next == u64::MAX {
            return Err(FrameError::CounterExhausted);
        }
        if h.seq < self.next {
            return Err(FrameError::Replayed {
                got: h.seq,
                expected: self.next,
            });
        }
        if h.seq > self.next {
            return Err(FrameError::OutOfOrder {
                got: h.seq,
                expected: self.next,
            });
        }
        if body.len() != h.len {
            return Err(FrameError::Truncated {
                got: HEADER_LEN + body.len(),
                expected: HEADER_LEN + h.len,
            });
        }
        let pt = self
            .cipher
            .decrypt(
                &nonce(self.dir, h.seq),
                Payload {
                    msg: body,
                    aad: &aad(header, self.dir),
                },
            )
            .map_err(|_| FrameError::BadTag)?;
        self.next += 1;
        Ok(pt)
    }

    /// The sequence number the next accepted frame must carry.
    pub fn next_seq(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealer, Opener, Sealer, Opener) {
        let keys = SessionKeys::derive(&[7; 32], &[9; 32]);
        let (cs, co) = keys.split(Role::Client, 1 << 20);
        let (es, eo) = keys.split(Role::Enclave, 1 << 20);
        (cs, eo, es, co)
    }

    #[test]
    fn frames_round_trip_in_both_directions() {
        let (mut cs, mut eo, mut es, mut co) = pair();
        for i in 0..3u8 {
            let f = cs.seal(&[i; 40]).unwrap();
            assert_eq!(eo.open(&f).unwrap(), vec![i; 40]);
            let g = es.seal(&[]).unwrap();
            assert_eq!(co.open(&g).unwrap(), Vec::<u8>::new());
        }
    }

    #[test]
    fn a_frame_is_not_accepted_in_the_other_direction() {
        let (mut cs, _eo, _es, mut co) = pair();
        let f = cs.seal(b"hello").unwrap();
        assert_eq!(co.open(&f), Err(FrameError::BadTag));
    }

    #[test]
    fn replay_reorder_tamper_truncation_are_typed() {
        let (mut cs, mut eo, _, _) = pair();
        let f0 = cs.seal(b"zero").unwrap();
        let f1 = cs.seal(b"one").unwrap();
        let f2 = cs.seal(b"two").unwrap();
        assert!(matches!(
            eo.open(&f1),
            Err(FrameError::OutOfOrder {
                got: 1,
                expected: 0
            })
        ));
        assert_eq!(eo.open(&f0).unwrap(), b"zero");
        assert!(matches!(
            eo.open(&f0),
            Err(FrameError::Replayed {
                got: 0,
                expected: 1
            })
        ));
        let mut bad = f1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(eo.open(&bad), Err(FrameError::BadTag));
        // The header is authenticated too: claim another sequence number with a valid body.
        assert!(matches!(
            eo.open(&f1[..f1.len() - 1]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            eo.open(&f1[..5]),
            Err(FrameError::Truncated { .. })
        ));
        // Rejections did not advance the state: f1 and f2 still open in order.
        assert_eq!(eo.open(&f1).unwrap(), b"one");
        assert_eq!(eo.open(&f2).unwrap(), b"two");
    }

    #[test]
    fn oversized_and_undersized_lengths_are_refused_before_reading() {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_header(&h, 1024),
            Err(FrameError::TooLarge { .. })
        ));
        h[..4].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            parse_header(&h, 1024),
            Err(FrameError::TooShort { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn open_is_total_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let (_, mut eo, _, _) = pair();
            let _ = eo.open(&bytes);
        }

        #[test]
        fn any_single_bit_flip_is_rejected(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..64), pos in 0usize..1000, bit in 0u8..8) {
            let (mut cs, mut eo, _, _) = pair();
            let mut f = cs.seal(&msg).unwrap();
            let p = pos % f.len();
            f[p] ^= 1 << bit;
            proptest::prop_assert!(eo.open(&f).is_err());
        }
    }
}
