//! Random-OT extension of Ishai, Kilian, Nissim and Petrank ("Extending oblivious transfers
//! efficiently", CRYPTO 2003), semi-honest, with `kappa = 128` base OTs and the correlation-robust
//! hash of [`crate::prg::Tccr`] (the ROT variant as in Asharov et al., CCS 2013, section 5).
//!
//! The extension receiver picks random choices `r` (one bit per OT), expands each base key pair
//! with AES-CTR into `t_i = G(k_i^0)` and sends `u_i = t_i ^ G(k_i^1) ^ r` for `i < 128`. The
//! extension sender, which chose `s` in the base OTs, computes `q_i = G(k_i^{s_i}) ^ s_i u_i`;
//! the rows of the transposed matrices satisfy `q_j = t_j ^ r_j s`. The sender outputs
//! `(H(j, q_j), H(j, q_j ^ s))`, the receiver `H(j, t_j) `, the message of its choice `r_j`.

use crate::error::{HybridError, Result};
use crate::link::Link;
use crate::ot::base;
use crate::prg::{Prg, Tccr};

/// The security parameter: base OTs and matrix width.
pub const KAPPA: usize = 128;
/// OTs per message (bounds the receiver's matrix in memory: 2 MiB per batch).
const BATCH_BLOCKS: usize = 1024;

/// Transposes a 128x128 bit matrix held as 128 rows, bit `c` of row `r` being entry `(r, c)`
/// (Eklundh's recursive block swap, as in Hacker's Delight 7-3).
pub fn transpose128(a: &mut [u128; 128]) {
    let mut j = 64usize;
    let mut m: u128 = u128::from(u64::MAX);
    while j != 0 {
        let mut k = 0usize;
        while k < 128 {
            let t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

/// The receiver's message of one batch: the rows `u_i` (`i < KAPPA`) of `blocks` 128-bit blocks
/// each, row after row, a block as two words (low half first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionMatrix {
    blocks: usize,
    words: Vec<u64>,
}

impl ExtensionMatrix {
    const WHAT: &'static str = "IKNP matrix";

    /// The matrix of `KAPPA` rows held row after row in `u`.
    fn from_rows(u: &[u128]) -> Self {
        Self {
            blocks: u.len() / KAPPA,
            words: u
                .iter()
                .flat_map(|b| [*b as u64, (*b >> 64) as u64])
                .collect(),
        }
    }

    /// The message's words.
    pub fn encode(self) -> Vec<u64> {
        self.words
    }

    /// The matrix of a batch of `blocks` blocks per row.
    ///
    /// # Errors
    /// [`HybridError::Malformed`] unless `words` holds exactly `KAPPA` rows of `blocks` blocks.
    pub fn decode(words: Vec<u64>, blocks: usize) -> Result<Self> {
        let expected = KAPPA.saturating_mul(blocks).saturating_mul(2);
        if words.len() != expected {
            return Err(HybridError::Malformed {
                what: Self::WHAT,
                expected,
                got: words.len(),
            });
        }
        Ok(Self { blocks, words })
    }

    /// The blocks of row `u_i` (none past the last row).
    pub fn row(&self, i: usize) -> impl Iterator<Item = u128> + '_ {
        let row = 2 * i * self.blocks..2 * (i + 1) * self.blocks;
        self.words
            .get(row)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|w| u128::from(w[0]) | (u128::from(w[1]) << 64))
    }
}

/// The extension sender: outputs pairs of random 128-bit messages.
pub struct IknpSender {
    s: u128,
    prgs: Vec<Prg>,
    next_index: u128,
    hash: Tccr,
}

/// The extension receiver: outputs random choices and the chosen messages.
pub struct IknpReceiver {
    prgs: Vec<[Prg; 2]>,
    next_index: u128,
    hash: Tccr,
}

impl IknpSender {
    /// Runs the base OTs (as their receiver, with random choices `s`).
    pub fn setup(link: &mut dyn Link) -> Result<Self> {
        let mut rng = Prg::from_os();
        let s_bits = rng.bits(KAPPA);
        let keys = base::receive(link, &s_bits)?;
        let s = s_bits
            .iter()
            .enumerate()
            .fold(0u128, |acc, (i, &b)| acc | (u128::from(b) << i));
        Ok(Self {
            s,
            prgs: keys.into_iter().map(Prg::new).collect(),
            next_index: 0,
            hash: Tccr::default(),
        })
    }

    /// `n` random OTs: the pairs `(m_0, m_1)`.
    pub fn extend(&mut self, link: &mut dyn Link, n: usize) -> Result<Vec<[u128; 2]>> {
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let blocks = left.div_ceil(KAPPA).min(BATCH_BLOCKS);
            let u = ExtensionMatrix::decode(link.recv()?, blocks)?;
            let mut q = vec![0u128; KAPPA * blocks];
            for (i, row) in q.chunks_exact_mut(blocks).enumerate() {
                self.prgs[i].fill_blocks(row);
                if (self.s >> i) & 1 == 1 {
                    for (qb, ub) in row.iter_mut().zip(u.row(i)) {
                        *qb ^= ub;
                    }
                }
            }
            for b in 0..blocks {
                let mut m = [0u128; KAPPA];
                for (i, mi) in m.iter_mut().enumerate() {
                    *mi = q[i * blocks + b];
                }
                transpose128(&mut m);
                let take = left.min(KAPPA);
                let mut m0 = m[..take].to_vec();
                let mut m1: Vec<u128> = m0.iter().map(|x| x ^ self.s).collect();
                self.hash.hash_in_place(self.next_index, &mut m0);
                self.hash.hash_in_place(self.next_index, &mut m1);
                self.next_index += take as u128;
                out.extend(m0.into_iter().zip(m1).map(|(a, b)| [a, b]));
                left -= take;
            }
        }
        Ok(out)
    }
}

impl IknpReceiver {
    /// Runs the base OTs (as their sender).
    pub fn setup(link: &mut dyn Link) -> Result<Self> {
        let keys = base::send(link, KAPPA)?;
        Ok(Self {
            prgs: keys
                .into_iter()
                .map(|[k0, k1]| [Prg::new(k0), Prg::new(k1)])
                .collect(),
            next_index: 0,
            hash: Tccr::default(),
        })
    }

    /// `n` random OTs: the random choices and the chosen messages.
    pub fn extend(&mut self, link: &mut dyn Link, n: usize) -> Result<(Vec<bool>, Vec<u128>)> {
        let mut rng = Prg::from_os();
        let mut choices = Vec::with_capacity(n);
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let blocks = left.div_ceil(KAPPA).min(BATCH_BLOCKS);
            let mut r = vec![0u128; blocks];
            rng.fill_blocks(&mut r);
            let mut t = vec![0u128; KAPPA * blocks];
            let mut u = vec![0u128; KAPPA * blocks];
            for i in 0..KAPPA {
                let (ti, ui) = (
                    &mut t[i * blocks..(i + 1) * blocks],
                    &mut u[i * blocks..(i + 1) * blocks],
                );
                self.prgs[i][0].fill_blocks(ti);
                self.prgs[i][1].fill_blocks(ui);
                for ((ub, tb), rb) in ui.iter_mut().zip(ti.iter()).zip(&r) {
                    *ub ^= tb ^ rb;
                }
            }
            link.send(ExtensionMatrix::from_rows(&u).encode())?;
            for (b, rb) in r.iter().enumerate() {
                let mut m = [0u128; KAPPA];
                for (i, mi) in m.iter_mut().enumerate() {
                    *mi = t[i * blocks + b];
                }
                transpose128(&mut m);
                let take = left.min(KAPPA);
                let mut mc = m[..take].to_vec();
                self.hash.hash_in_place(self.next_index, &mut mc);
                self.next_index += take as u128;
                choices.extend((0..take).map(|j| (rb >> j) & 1 == 1));
                out.extend(mc);
                left -= take;
            }
        }
        Ok((choices, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HybridError;
    use crate::link::memory_pair;
    use std::time::Duration;

    #[test]
    fn the_matrix_crosses_the_wire_row_by_row_and_wrong_sizes_are_refused() -> Result<()> {
        let u: Vec<u128> = (0..2 * KAPPA as u128).map(|i| i << 64 | (i + 1)).collect();
        let words = ExtensionMatrix::from_rows(&u).encode();
        assert_eq!(words[..2], [1, 0]);
        let m = ExtensionMatrix::decode(words.clone(), 2)?;
        assert!(m.row(1).eq(u[2..4].iter().copied()));
        assert_eq!(m.row(KAPPA).count(), 0);
        assert!(matches!(
            ExtensionMatrix::decode(words, 3),
            Err(HybridError::Malformed { expected, got, .. }) if expected == 6 * KAPPA && got == 4 * KAPPA
        ));
        Ok(())
    }

    #[test]
    fn transpose_matches_the_definition() {
        let mut rng = Prg::new(3);
        let mut a = [0u128; 128];
        rng.fill_blocks(&mut a);
        let orig = a;
        transpose128(&mut a);
        for (r, row) in a.iter().enumerate() {
            for (c, col) in orig.iter().enumerate() {
                assert_eq!((row >> c) & 1, (col >> r) & 1, "entry {r},{c}");
            }
        }
    }

    #[test]
    fn extended_ots_are_correct_random_and_fresh() -> Result<()> {
        let (mut a, mut b) = memory_pair(Duration::from_secs(30));
        let h = std::thread::spawn(move || -> Result<_> {
            let mut r = IknpReceiver::setup(&mut b)?;
            let first = r.extend(&mut b, 300)?;
            let second = r.extend(&mut b, 129)?;
            Ok((first, second))
        });
        let mut s = IknpSender::setup(&mut a)?;
        let p1 = s.extend(&mut a, 300)?;
        let p2 = s.extend(&mut a, 129)?;
        let ((c1, m1), (c2, m2)) = h.join().map_err(|_| HybridError::InvalidContent {
            what: "join",
            index: 0,
        })??;
        for (pairs, choices, got) in [(&p1, &c1, &m1), (&p2, &c2, &m2)] {
            assert_eq!(
                (pairs.len(), choices.len(), got.len()),
                (choices.len(), got.len(), got.len())
            );
            for ((p, &c), g) in pairs.iter().zip(choices).zip(got) {
                assert_eq!(*g, p[usize::from(c)]);
                assert_ne!(*g, p[usize::from(!c)]);
            }
        }
        let ones = c1.iter().filter(|&&c| c).count();
        assert!((100..200).contains(&ones), "{ones} of 300 choices set");
        // Fresh: no message of the second extension repeats one of the first.
        let first: std::collections::HashSet<u128> = p1.iter().flatten().copied().collect();
        assert_eq!(
            first.len(),
            2 * p1.len(),
            "a message repeats within an extension"
        );
        assert!(
            p2.iter().flatten().all(|m| !first.contains(m)),
            "the second extension repeats a message of the first"
        );
        Ok(())
    }
}
