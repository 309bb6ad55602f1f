//! Symmetric primitives on AES-128 (AES-NI where the CPU has it): a counter-mode PRG and the
//! tweakable correlation-robust hash of Guo, Katz, Wang and Yu ("Efficient and secure multiparty
//! computation from fixed-key block ciphers", IEEE S&P 2020, section 7.2), which IKNP needs to
//! break the correlation between its outputs.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use rand::{rngs::OsRng, RngCore};

/// AES-128 in counter mode under a 128-bit key; the stream continues across calls.
pub struct Prg {
    cipher: Aes128,
    counter: u128,
}

impl Prg {
    /// The PRG of `key`.
    pub fn new(key: u128) -> Self {
        Self {
            cipher: Aes128::new(&Array::from(key.to_le_bytes())),
            counter: 0,
        }
    }

    /// A PRG keyed from the operating system's CSPRNG (private randomness).
    pub fn from_os() -> Self {
        let mut k = [0u8; 16];
        OsRng.fill_bytes(&mut k);
        Self::new(u128::from_le_bytes(k))
    }

    /// Fills `out` with the next blocks of the stream.
    pub fn fill_blocks(&mut self, out: &mut [u128]) {
        const CHUNK: usize = 64;
        let mut blocks = [Array::from([0u8; 16]); CHUNK];
        for piece in out.chunks_mut(CHUNK) {
            for b in blocks.iter_mut().take(piece.len()) {
                *b = Array(self.counter.to_le_bytes());
                self.counter = self.counter.wrapping_add(1);
            }
            self.cipher.encrypt_blocks(&mut blocks[..piece.len()]);
            for (o, b) in piece.iter_mut().zip(&blocks) {
                *o = u128::from_le_bytes(b.0);
            }
        }
    }

    /// `n` uniformly random words.
    pub fn u64s(&mut self, n: usize) -> Vec<u64> {
        let mut blocks = vec![0u128; n.div_ceil(2)];
        self.fill_blocks(&mut blocks);
        blocks
            .iter()
            .flat_map(|b| [*b as u64, (*b >> 64) as u64])
            .take(n)
            .collect()
    }

    /// `n` uniformly random bits.
    pub fn bits(&mut self, n: usize) -> Vec<bool> {
        let words = self.u64s(n.div_ceil(64));
        (0..n)
            .map(|i| (words[i / 64] >> (i % 64)) & 1 == 1)
            .collect()
    }
}

impl std::fmt::Debug for Prg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prg(..)")
    }
}

/// The fixed, public key of the permutation behind [`Tccr`] (any constant will do: the hash is
/// secure in the ideal-permutation model; these are the first digits of pi).
const FIXED_KEY: u128 = 0x243f_6a88_85a3_08d3_1319_8a2e_0370_7344;

/// The tweakable circular correlation-robust hash `H(i, x) = pi(pi(x) ^ i) ^ pi(x)` with `pi`
/// AES-128 under a fixed public key (Guo et al. 2020).
pub struct Tccr {
    cipher: Aes128,
}

impl Default for Tccr {
    fn default() -> Self {
        Self {
            cipher: Aes128::new(&Array::from(FIXED_KEY.to_le_bytes())),
        }
    }
}

impl Tccr {
    /// Hashes `xs[j]` in place under tweak `first_tweak + j`.
    pub fn hash_in_place(&self, first_tweak: u128, xs: &mut [u128]) {
        self.hash_with_tweaks(xs, |j| first_tweak.wrapping_add(j as u128));
    }

    /// Hashes `xs[j]` in place under tweak `tweak(j)`.
    pub fn hash_with_tweaks(&self, xs: &mut [u128], tweak: impl Fn(usize) -> u128) {
        self.permute(xs);
        self.hash_permuted_with_tweaks(xs, tweak);
    }

    /// Replaces each `x` by `pi(x)`, the first half of the hash: a caller that hashes one input
    /// under several tweaks permutes it once and passes copies of `pi(x)` to
    /// [`Tccr::hash_permuted_with_tweaks`] (the outputs are the same as [`Tccr::hash_with_tweaks`]'s).
    pub fn permute(&self, xs: &mut [u128]) {
        self.blockwise(xs, |_, x| x, |_, x, y| *x = y);
    }

    /// Hashes inputs given as `pis[j] = pi(x_j)` in place under tweak `tweak(j)`.
    pub fn hash_permuted_with_tweaks(&self, pis: &mut [u128], tweak: impl Fn(usize) -> u128) {
        self.blockwise(pis, |j, p| p ^ tweak(j), |_, p, y| *p ^= y);
    }

    /// For each `xs[j]`, encrypts `input(j, xs[j])` and stores the result with `output`, a chunk of
    /// blocks at a time.
    fn blockwise(
        &self,
        xs: &mut [u128],
        input: impl Fn(usize, u128) -> u128,
        output: impl Fn(usize, &mut u128, u128),
    ) {
        const CHUNK: usize = 64;
        let mut blocks = [Array::from([0u8; 16]); CHUNK];
        for (c, piece) in xs.chunks_mut(CHUNK).enumerate() {
            let n = piece.len();
            for (k, (b, x)) in blocks.iter_mut().zip(piece.iter()).enumerate() {
                *b = Array(input(c * CHUNK + k, *x).to_le_bytes());
            }
            self.cipher.encrypt_blocks(&mut blocks[..n]);
            for (k, (b, x)) in blocks.iter().zip(piece.iter_mut()).enumerate() {
                output(c * CHUNK + k, x, u128::from_le_bytes(b.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prg_is_deterministic_per_key_and_continues_across_calls() {
        let (mut a, mut b) = (Prg::new(7), Prg::new(7));
        let mut x = a.u64s(6);
        x.extend(a.u64s(4));
        assert_eq!(x, b.u64s(10));
        assert_ne!(Prg::new(8).u64s(4), Prg::new(7).u64s(4));
        let ones: u32 = Prg::from_os()
            .u64s(20_000)
            .iter()
            .map(|v| v.count_ones())
            .sum();
        // 1.28 million bits: 0.01 is 22 standard deviations of an ideal stream.
        assert!((f64::from(ones) / (20_000.0 * 64.0) - 0.5).abs() < 0.01);
    }

    #[test]
    fn hash_depends_on_tweak_and_input() {
        let h = Tccr::default();
        let mut a = [5u128, 5, 6];
        h.hash_in_place(0, &mut a);
        assert_ne!(a[0], a[1]); // same input, different tweaks
        let mut b = [5u128];
        h.hash_in_place(0, &mut b);
        assert_eq!(a[0], b[0]);
        let mut c = [6u128];
        h.hash_in_place(2, &mut c);
        assert_eq!(a[2], c[0]);
    }

    #[test]
    fn hash_is_the_two_permutation_formula_and_may_be_split_at_pi() {
        // H(i, x) = pi(pi(x) ^ i) ^ pi(x), pi = AES-128 under the fixed key, over more than
        // one chunk of blocks; hashing pi(x) prepared by `permute` gives the same outputs.
        let cipher = Aes128::new(&Array::from(FIXED_KEY.to_le_bytes()));
        let pi = |x: u128| {
            let mut b = Array(x.to_le_bytes());
            cipher.encrypt_block(&mut b);
            u128::from_le_bytes(b.0)
        };
        let xs: Vec<u128> = (0..150u128)
            .map(|j| j.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let tweak = |j: usize| (j as u128) << 3 | 5;
        let want: Vec<u128> = xs
            .iter()
            .enumerate()
            .map(|(j, &x)| pi(pi(x) ^ tweak(j)) ^ pi(x))
            .collect();
        let h = Tccr::default();
        let mut direct = xs.clone();
        h.hash_with_tweaks(&mut direct, tweak);
        assert_eq!(direct, want);
        let mut split = xs;
        h.permute(&mut split);
        h.hash_permuted_with_tweaks(&mut split, tweak);
        assert_eq!(split, want);
    }
}
