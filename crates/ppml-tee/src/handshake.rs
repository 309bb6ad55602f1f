//! The attested key exchange: pure functions and state, no sockets.
//!
//! The client sends a [`ClientHello`] (a fresh nonce and key), the enclave answers with a
//! [`ServerHello`] (its evidence mode, a fresh key and a quote; layouts in [`crate::hello`]).
//!
//! The enclave draws a fresh X25519 key pair per session, asks its evidence provider for a quote
//! whose report data is [`report_data`]`(enclave key, client nonce)`, and answers. The client
//! verifies the quote (measurement, signature or DCAP chain, binding to its fresh nonce) before
//! it derives keys or sends anything secret. Both sides derive the session keys with HKDF from
//! the X25519 shared secret, salted with the SHA-256 of the whole transcript, so any change to
//! either hello gives different keys and the first frame fails.

use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::channel::{Opener, Role, Sealer, SessionKeys};
use crate::evidence::EvidenceProvider;
use crate::hello::{ClientHello, ServerHello};
use crate::verify::{report_data, verify_quote, Verified, VerifyPolicy};
use crate::{random_bytes, Result, TeeError};

/// Both halves of an established session.
#[derive(Debug)]
pub struct Session {
    /// Encrypts outgoing frames.
    pub sealer: Sealer,
    /// Checks and decrypts incoming frames.
    pub opener: Opener,
}

fn bad(reason: impl Into<String>) -> TeeError {
    TeeError::Handshake(reason.into())
}

fn transcript_hash(client_hello: &[u8], server_hello: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ppml-tee/v1 transcript");
    h.update((client_hello.len() as u64).to_be_bytes());
    h.update(client_hello);
    h.update((server_hello.len() as u64).to_be_bytes());
    h.update(server_hello);
    h.finalize().into()
}

/// The X25519 shared secret with `peer`, refusing low-order keys (an all-zero secret).
fn shared_secret(secret: &StaticSecret, peer: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
    let shared = secret.diffie_hellman(&PublicKey::from(*peer));
    if !shared.was_contributory() {
        return Err(bad("the peer's X25519 key is of low order"));
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn session(
    shared: &[u8; 32],
    client_hello: &[u8],
    server_hello: &[u8],
    role: Role,
    max_frame: usize,
) -> Result<Session> {
    let keys = SessionKeys::derive(shared, &transcript_hash(client_hello, server_hello));
    let (sealer, opener) = keys.split(role, max_frame);
    Ok(Session { sealer, opener })
}

fn new_secret() -> Result<StaticSecret> {
    Ok(StaticSecret::from(*Zeroizing::new(random_bytes::<32>()?)))
}

/// The client's state between sending its hello and receiving the enclave's.
pub struct ClientHandshake {
    secret: StaticSecret,
    nonce: [u8; 32],
    hello: Vec<u8>,
}

impl std::fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientHandshake(..)")
    }
}

impl ClientHandshake {
    /// Draws a fresh nonce and key pair from the OS RNG; returns the state and the hello to send.
    pub fn start() -> Result<(Self, Vec<u8>)> {
        let secret = new_secret()?;
        let nonce = random_bytes::<32>()?;
        let hello = ClientHello {
            nonce,
            public: *PublicKey::from(&secret).as_bytes(),
        }
        .encode();
        Ok((
            Self {
                secret,
                nonce,
                hello: hello.clone(),
            },
            hello,
        ))
    }

    /// The nonce this handshake sent.
    pub fn nonce(&self) -> &[u8; 32] {
        &self.nonce
    }

    /// Checks the enclave's hello and evidence under `policy`; on success, the session.
    pub fn finish(
        self,
        server_hello: &[u8],
        policy: &VerifyPolicy,
        max_frame: usize,
    ) -> Result<(Session, Verified)> {
        let sh = ServerHello::decode(server_hello)?;
        let verified = verify_quote(sh.quote, &report_data(&sh.public, &self.nonce), policy)?;
        if verified.mode != sh.mode {
            return Err(bad(format!(
                "the enclave claims {} evidence but its quote is {}",
                sh.mode.as_str(),
                verified.mode.as_str()
            )));
        }
        let shared = shared_secret(&self.secret, &sh.public)?;
        let s = session(&shared, &self.hello, server_hello, Role::Client, max_frame)?;
        Ok((s, verified))
    }
}

/// The enclave's side: answers `client_hello` with a fresh key and a quote binding it to the
/// client's nonce. Returns the session and the hello to send.
pub fn enclave_handshake(
    client_hello: &[u8],
    provider: &dyn EvidenceProvider,
    max_frame: usize,
) -> Result<(Session, Vec<u8>)> {
    let ClientHello {
        nonce,
        public: client_public,
    } = ClientHello::decode(client_hello)?;
    let secret = new_secret()?;
    let public = *PublicKey::from(&secret).as_bytes();
    // Refuse a low-order client key before asking for a (possibly costly) quote.
    let shared = shared_secret(&secret, &client_public)?;
    let quote = provider.quote(&report_data(&public, &nonce))?;
    let hello = ServerHello {
        mode: provider.mode(),
        public,
        quote: &quote,
    }
    .encode()?;
    let s = session(&shared, client_hello, &hello, Role::Enclave, max_frame)?;
    Ok((s, hello))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::SimulatedProvider;
    use crate::quote::Measurement;
    use crate::AttestationError;

    const M: Measurement = Measurement([4; 32]);

    fn provider() -> SimulatedProvider {
        SimulatedProvider::with_measurement(M).unwrap()
    }

    #[test]
    fn both_sides_agree_and_talk() {
        let p = provider();
        let (c, ch) = ClientHandshake::start().unwrap();
        let (mut es, sh) = enclave_handshake(&ch, &p, 1 << 20).unwrap();
        let (mut cs, v) = c.finish(&sh, &VerifyPolicy::new(M, true), 1 << 20).unwrap();
        assert_eq!(v.measurement, M);
        let f = cs.sealer.seal(b"image").unwrap();
        assert_eq!(es.opener.open(&f).unwrap(), b"image");
        let g = es.sealer.seal(b"logits").unwrap();
        assert_eq!(cs.opener.open(&g).unwrap(), b"logits");
    }

    #[test]
    fn an_answer_to_another_clients_nonce_is_stale() {
        let p = provider();
        let (_, ch1) = ClientHandshake::start().unwrap();
        let (_, sh1) = enclave_handshake(&ch1, &p, 1 << 20).unwrap();
        let (c2, _) = ClientHandshake::start().unwrap();
        let err = c2
            .finish(&sh1, &VerifyPolicy::new(M, true), 1 << 20)
            .unwrap_err();
        assert!(
            matches!(
                err,
                TeeError::Attestation(AttestationError::ReportDataMismatch)
            ),
            "{err}"
        );
    }

    #[test]
    fn a_substituted_enclave_key_is_caught() {
        let p = provider();
        let (c, ch) = ClientHandshake::start().unwrap();
        let (_, mut sh) = enclave_handshake(&ch, &p, 1 << 20).unwrap();
        sh[10] ^= 1; // a man in the middle's key in place of the enclave's
        let err = c
            .finish(&sh, &VerifyPolicy::new(M, true), 1 << 20)
            .unwrap_err();
        assert!(
            matches!(
                err,
                TeeError::Attestation(AttestationError::ReportDataMismatch)
            ),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_client_hello_gives_keys_that_do_not_match() {
        let p = provider();
        let (c, mut ch) = ClientHandshake::start().unwrap();
        ch[9] ^= 1; // the nonce the enclave sees differs from the client's
        let (_, sh) = enclave_handshake(&ch, &p, 1 << 20).unwrap();
        assert!(c.finish(&sh, &VerifyPolicy::new(M, true), 1 << 20).is_err());
    }

    #[test]
    fn low_order_keys_and_garbage_are_refused() {
        let p = provider();
        let (_, mut ch) = ClientHandshake::start().unwrap();
        ch[41..73].copy_from_slice(&[0; 32]);
        assert!(matches!(
            enclave_handshake(&ch, &p, 1 << 20),
            Err(TeeError::Handshake(_))
        ));
        assert!(enclave_handshake(b"short", &p, 1 << 20).is_err());
        let (c, _) = ClientHandshake::start().unwrap();
        assert!(c.finish(b"", &VerifyPolicy::new(M, true), 1 << 20).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_are_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = ServerHello::decode(&bytes);
            let (c, _) = ClientHandshake::start().unwrap();
            let _ = c.finish(&bytes, &VerifyPolicy::new(M, true), 1024);
        }
    }
}
