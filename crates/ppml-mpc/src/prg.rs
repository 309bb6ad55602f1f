//! Pseudo-random generators: AES-128 in counter mode (AES-NI where the CPU has it), keyed from
//! the OS CSPRNG, one stream per purpose.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use rand::{rngs::OsRng, RngCore};

/// A 256-bit PRG key.
#[derive(Clone)]
pub struct PrgKey([u8; 32]);

impl PrgKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// The PRG of this key on stream `stream` (independent streams for independent purposes):
    /// AES-128 under the key's first half, counter blocks `(nonce ^ stream, i)` with the nonce
    /// taken from its second half.
    pub fn prg(&self, stream: u64) -> Prg {
        let mut key = [0u8; 16];
        key.copy_from_slice(&self.0[..16]);
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&self.0[16..24]);
        Prg {
            cipher: Aes128::new(&Array::from(key)),
            nonce: u64::from_le_bytes(nonce) ^ stream,
            counter: 0,
        }
    }
}

impl PrgKey {
    /// The key as four words (to send it to the party it is shared with).
    pub(crate) fn to_words(&self) -> Vec<u64> {
        ppml_wire::words_from_bytes(&self.0)
    }

    /// The key of four words from [`PrgKey::to_words`] (missing words are zero).
    pub(crate) fn from_words(words: &[u64]) -> Self {
        let mut k = [0u8; 32];
        for (c, w) in k.chunks_exact_mut(8).zip(words) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        Self(k)
    }
}

impl std::fmt::Debug for PrgKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrgKey(..)")
    }
}

/// A deterministic cryptographic PRG whose output two parties holding the same key agree on.
pub struct Prg {
    cipher: Aes128,
    nonce: u64,
    counter: u64,
}

impl Prg {
    /// A PRG keyed from the OS CSPRNG (private randomness).
    pub fn from_os() -> Self {
        PrgKey::random().prg(0)
    }

    /// `n` uniformly random ring elements (two per AES block; an odd count discards a half).
    pub fn u64s(&mut self, n: usize) -> Vec<u64> {
        const CHUNK: usize = 64;
        let mut out = vec![0u64; n + n % 2];
        let nonce = u128::from(self.nonce);
        let mut blocks = [Array::from([0u8; 16]); CHUNK];
        for piece in out.chunks_mut(2 * CHUNK) {
            let nb = piece.len() / 2;
            for b in blocks.iter_mut().take(nb) {
                *b = Array((nonce | (u128::from(self.counter) << 64)).to_le_bytes());
                self.counter = self.counter.wrapping_add(1);
            }
            self.cipher.encrypt_blocks(&mut blocks[..nb]);
            for (pair, b) in piece.chunks_exact_mut(2).zip(&blocks[..nb]) {
                let v = u128::from_le_bytes(b.0);
                pair[0] = v as u64;
                pair[1] = (v >> 64) as u64;
            }
        }
        out.truncate(n);
        out
    }
}

impl std::fmt::Debug for Prg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prg(..)")
    }
}

/// Stream ids: masks of `mpc3`'s truncation, auxiliary correlated randomness.
pub(crate) const STREAM_MASK: u64 = 1;
/// See [`STREAM_MASK`].
pub(crate) const STREAM_AUX: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_sent_as_words_is_the_same_key() {
        let k = PrgKey::random();
        let k2 = PrgKey::from_words(&k.to_words());
        assert_eq!(k.prg(5).u64s(4), k2.prg(5).u64s(4));
    }

    #[test]
    fn same_key_same_stream_agree_and_streams_differ() {
        let k = PrgKey::random();
        assert_eq!(k.prg(1).u64s(8), k.prg(1).u64s(8));
        assert_ne!(k.prg(1).u64s(8), k.prg(2).u64s(8));
        assert_ne!(PrgKey::random().prg(1).u64s(4), k.prg(1).u64s(4));
        // Drawing in pieces continues the stream (even counts).
        let mut p = k.prg(3);
        let mut q = k.prg(3);
        let mut pieces = p.u64s(300);
        pieces.extend(p.u64s(2));
        assert_eq!(pieces, q.u64s(302));
        // Outputs look balanced: 1.92 million bits, so 0.01 is 27 standard deviations of an
        // ideal stream (over 302 words it was 2.8, and a random key failed about 1 run in 200).
        let ones: u32 = k.prg(4).u64s(30_000).iter().map(|v| v.count_ones()).sum();
        assert!((f64::from(ones) / (30_000.0 * 64.0) - 0.5).abs() < 0.01);
        assert_eq!(format!("{k:?}"), "PrgKey(..)");
    }
}
