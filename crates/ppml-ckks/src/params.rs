//! Parameters: ring degree, RNS prime chain, special primes, scale; presets; the security check.

use std::collections::HashMap;
use std::sync::Arc;

use tfhe_ntt::prime64::Plan;

use crate::arith::{mul_mod, pow_mod, Modulus};
use crate::embedding::EncoderTables;
use crate::error::{CkksError, Result};

/// Smallest supported ring degree.
pub const MIN_DEGREE: usize = 1 << 12;
/// Largest supported ring degree.
pub const MAX_DEGREE: usize = 1 << 16;
/// Smallest supported prime size in bits.
pub const MIN_PRIME_BITS: u32 = 20;
/// Largest supported prime size in bits.
pub const MAX_PRIME_BITS: u32 = 61;
/// Largest number of primes (ciphertext and special) in one parameter set.
pub const MAX_PRIMES: usize = 64;

/// Largest total modulus (log2, ciphertext and special primes together) that keeps 128-bit
/// classical security for a uniform ternary secret and error of standard deviation 3.2.
///
/// N = 4096..32768 are Table 1 of the HomomorphicEncryption.org standard (Albrecht et al., 2018).
/// The standard stops at N = 32768; for N = 65536 we use 1770 bits, the usual extrapolation of
/// the same lattice-estimator methodology (roughly twice the N = 32768 bound).
pub fn max_total_modulus_bits(degree: usize) -> Option<u32> {
    match degree {
        4096 => Some(109),
        8192 => Some(218),
        16384 => Some(438),
        32768 => Some(881),
        65536 => Some(1770),
        _ => None,
    }
}

/// Named parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// N = 4096, chain [39, 31] + special [39] bits (109 bits), scale 2^31, depth 1.
    N4096Depth1,
    /// N = 8192, chain [60, 40, 40] + special [60] (200 bits), scale 2^40, depth 2: TenSEAL's
    /// general tutorial preset `coeff_mod_bit_sizes=[60, 40, 40, 60]`.
    N8192Depth2,
    /// N = 8192, chain [31, 26 x 6] + special [31] (218 bits), scale 2^26, depth 6: the 7 + 1 primes
    /// of TenSEAL's encrypted-MNIST tutorial (`[31, 26, 26, 26, 26, 26, 26, 31]`).
    N8192Depth6,
    /// N = 16384, chain [50, 40 x 8] + special [50] (420 bits), scale 2^40, depth 8.
    N16384Depth8,
    /// N = 32768, chain [50, 40 x 19] + special [50] (860 bits), scale 2^40, depth 19.
    N32768Depth19,
}

impl Preset {
    /// All presets, smallest first.
    pub const ALL: [Preset; 5] = [
        Preset::N4096Depth1,
        Preset::N8192Depth2,
        Preset::N8192Depth6,
        Preset::N16384Depth8,
        Preset::N32768Depth19,
    ];

    /// The builder this preset stands for.
    pub fn builder(self) -> CkksParametersBuilder {
        let b = CkksParameters::builder();
        match self {
            Preset::N4096Depth1 => b
                .degree(4096)
                .chain_bits(&[39, 31])
                .special_bits(&[39])
                .scale_bits(31),
            Preset::N8192Depth2 => b
                .degree(8192)
                .chain_bits(&[60, 40, 40])
                .special_bits(&[60])
                .scale_bits(40),
            Preset::N8192Depth6 => b
                .degree(8192)
                .chain_bits(&[31, 26, 26, 26, 26, 26, 26])
                .special_bits(&[31])
                .scale_bits(26),
            Preset::N16384Depth8 => {
                let mut chain = vec![50];
                chain.extend([40; 8]);
                b.degree(16384)
                    .chain_bits(&chain)
                    .special_bits(&[50])
                    .scale_bits(40)
            }
            Preset::N32768Depth19 => {
                let mut chain = vec![50];
                chain.extend([40; 19]);
                b.degree(32768)
                    .chain_bits(&chain)
                    .special_bits(&[50])
                    .scale_bits(40)
            }
        }
    }

    /// Builds the validated parameters of this preset.
    pub fn build(self) -> Result<Arc<CkksParameters>> {
        self.builder().build_arc()
    }
}

/// Builder of [`CkksParameters`].
#[derive(Debug, Clone, Default)]
pub struct CkksParametersBuilder {
    degree: usize,
    chain_bits: Vec<u32>,
    special_bits: Vec<u32>,
    chain_moduli: Option<Vec<u64>>,
    special_moduli: Option<Vec<u64>>,
    scale: f64,
}

impl CkksParametersBuilder {
    /// Sets the ring degree N (a power of two in 2^12..=2^16).
    pub fn degree(mut self, degree: usize) -> Self {
        self.degree = degree;
        self
    }

    /// Sets the bit sizes of the ciphertext primes q_0, ..., q_L (q_0 first: it is never rescaled
    /// away, so it should exceed the scale by the bits of the largest decrypted value).
    pub fn chain_bits(mut self, bits: &[u32]) -> Self {
        self.chain_bits = bits.to_vec();
        self
    }

    /// Sets the bit sizes of the special primes used by hybrid key switching; their number is
    /// also the number of ciphertext primes in one key-switching digit.
    pub fn special_bits(mut self, bits: &[u32]) -> Self {
        self.special_bits = bits.to_vec();
        self
    }

    /// Uses explicit ciphertext and special moduli instead of generated primes.
    pub fn moduli(mut self, chain: &[u64], special: &[u64]) -> Self {
        self.chain_moduli = Some(chain.to_vec());
        self.special_moduli = Some(special.to_vec());
        self
    }

    /// Sets the default encoding scale to 2^bits.
    pub fn scale_bits(mut self, bits: u32) -> Self {
        self.scale = 2f64.powi(bits as i32);
        self
    }

    /// Sets the default encoding scale.
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Validates and builds the parameters.
    pub fn build(self) -> Result<CkksParameters> {
        let degree = self.degree;
        if !degree.is_power_of_two() || !(MIN_DEGREE..=MAX_DEGREE).contains(&degree) {
            return Err(CkksError::InvalidDegree {
                degree,
                min: MIN_DEGREE,
                max: MAX_DEGREE,
            });
        }
        let (q, p) = match (self.chain_moduli, self.special_moduli) {
            (Some(q), Some(p)) => (q, p),
            _ => {
                check_bits(&self.chain_bits)?;
                check_bits(&self.special_bits)?;
                check_counts(self.chain_bits.len(), self.special_bits.len())?;
                let mut all_bits = self.chain_bits.clone();
                all_bits.extend(&self.special_bits);
                let primes = generate_primes(degree, &all_bits)?;
                let (q, p) = primes.split_at(self.chain_bits.len());
                (q.to_vec(), p.to_vec())
            }
        };
        CkksParameters::new(degree, q, p, self.scale)
    }

    /// Validates and builds the parameters, shared by `Arc`.
    pub fn build_arc(self) -> Result<Arc<CkksParameters>> {
        self.build().map(Arc::new)
    }
}

fn check_bits(bits: &[u32]) -> Result<()> {
    for &b in bits {
        if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&b) {
            return Err(CkksError::InvalidPrimeBits {
                bits: b,
                min: MIN_PRIME_BITS,
                max: MAX_PRIME_BITS,
            });
        }
    }
    Ok(())
}

fn check_counts(chain: usize, special: usize) -> Result<()> {
    if chain == 0 {
        return Err(CkksError::InvalidChain {
            reason: "no ciphertext prime",
        });
    }
    if special == 0 {
        return Err(CkksError::InvalidChain {
            reason: "no special prime for key switching",
        });
    }
    if chain + special > MAX_PRIMES {
        return Err(CkksError::InvalidChain {
            reason: "more than 64 primes",
        });
    }
    Ok(())
}

/// Deterministically generates distinct primes p ≡ 1 (mod 2N) with exactly the requested bit
/// sizes: for each size, the largest unused such primes below 2^bits, in order.
pub fn generate_primes(degree: usize, bits: &[u32]) -> Result<Vec<u64>> {
    let two_n = 2 * degree as u64;
    let mut next_hi: HashMap<u32, u64> = HashMap::new();
    let mut out = Vec::with_capacity(bits.len());
    for &b in bits {
        check_bits(&[b])?;
        let lo = 1u64 << (b - 1);
        let hi = next_hi.get(&b).copied().unwrap_or((1u64 << b) - 1);
        let prime = if hi < lo {
            None
        } else {
            tfhe_ntt::prime::largest_prime_in_arithmetic_progression64(two_n, 1, lo, hi)
        };
        let prime = prime.ok_or(CkksError::NotEnoughPrimes { bits: b, two_n })?;
        next_hi.insert(b, prime.saturating_sub(1));
        out.push(prime);
    }
    Ok(out)
}

/// Validated CKKS parameters. Build with [`CkksParameters::builder`] or [`Preset::build`], share
/// with `Arc`.
#[derive(Debug)]
pub struct CkksParameters {
    degree: usize,
    chain: Vec<u64>,
    special: Vec<u64>,
    scale: f64,
    /// Ciphertext moduli then special moduli.
    pub(crate) moduli: Vec<Modulus>,
    /// Exponent e_j such that NTT slot j evaluates at psi^{e_j} (psi of the first prime).
    pub(crate) ntt_exponents: Vec<u32>,
    /// Inverse of `ntt_exponents` (indexed by odd exponents mod 2N).
    pub(crate) ntt_slot_of_exponent: Vec<u32>,
    /// Encoder tables.
    pub(crate) encoder: EncoderTables,
}

impl PartialEq for CkksParameters {
    fn eq(&self, other: &Self) -> bool {
        self.degree == other.degree
            && self.chain == other.chain
            && self.special == other.special
            && self.scale.to_bits() == other.scale.to_bits()
    }
}

impl CkksParameters {
    /// A builder.
    pub fn builder() -> CkksParametersBuilder {
        CkksParametersBuilder::default()
    }

    /// Validates explicit moduli and builds the parameters.
    pub fn new(degree: usize, chain: Vec<u64>, special: Vec<u64>, scale: f64) -> Result<Self> {
        if !degree.is_power_of_two() || !(MIN_DEGREE..=MAX_DEGREE).contains(&degree) {
            return Err(CkksError::InvalidDegree {
                degree,
                min: MIN_DEGREE,
                max: MAX_DEGREE,
            });
        }
        check_counts(chain.len(), special.len())?;
        let two_n = 2 * degree as u64;
        let mut all: Vec<u64> = chain.clone();
        all.extend(&special);
        for (i, &m) in all.iter().enumerate() {
            let bits = 64 - m.leading_zeros();
            if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits) {
                return Err(CkksError::InvalidPrimeBits {
                    bits,
                    min: MIN_PRIME_BITS,
                    max: MAX_PRIME_BITS,
                });
            }
            if m % two_n != 1 || !tfhe_ntt::prime::is_prime64(m) {
                return Err(CkksError::InvalidModulus { modulus: m, degree });
            }
            if all[..i].contains(&m) {
                return Err(CkksError::InvalidChain {
                    reason: "repeated modulus",
                });
            }
        }
        // Security: log2 of the total modulus, rounded up.
        let total: f64 = all.iter().map(|&m| (m as f64).log2()).sum();
        let total_bits = total.ceil() as u32;
        let max_bits = max_total_modulus_bits(degree).unwrap_or(0);
        if total_bits > max_bits {
            return Err(CkksError::InsecureParameters {
                degree,
                total_bits,
                max_bits,
            });
        }
        // Each key-switching digit (as many chain primes as there are special primes) must not
        // exceed the special modulus, or key switching noise would swamp the message.
        let p_bits: f64 = special.iter().map(|&m| (m as f64).log2()).sum();
        for digit in chain.chunks(special.len()) {
            let d_bits: f64 = digit.iter().map(|&m| (m as f64).log2()).sum();
            if d_bits > p_bits + 1.0 {
                return Err(CkksError::InvalidChain {
                    reason: "a key-switching digit exceeds the special modulus",
                });
            }
        }
        if !scale.is_finite() || scale < 2.0 {
            return Err(CkksError::InvalidScale {
                scale,
                reason: "must be finite and at least 2",
            });
        }
        if scale.log2() >= (chain[0] as f64).log2() {
            return Err(CkksError::InvalidScale {
                scale,
                reason: "must be smaller than the first prime",
            });
        }
        let mut moduli = Vec::with_capacity(all.len());
        for &m in &all {
            let plan =
                Plan::try_new(degree, m).ok_or(CkksError::InvalidModulus { modulus: m, degree })?;
            moduli.push(Modulus { value: m, plan });
        }
        let (ntt_exponents, ntt_slot_of_exponent) = ntt_exponent_tables(&moduli[0], degree)?;
        let encoder = EncoderTables::new(degree);
        raise_allocator_thresholds();
        Ok(Self {
            degree,
            chain,
            special,
            scale,
            moduli,
            ntt_exponents,
            ntt_slot_of_exponent,
            encoder,
        })
    }

    /// Ring degree N.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// Number of complex slots, N/2.
    pub fn slots(&self) -> usize {
        self.degree / 2
    }

    /// The ciphertext primes q_0, ..., q_L.
    pub fn chain(&self) -> &[u64] {
        &self.chain
    }

    /// The special primes of hybrid key switching.
    pub fn special(&self) -> &[u64] {
        &self.special
    }

    /// Highest level L (a fresh ciphertext has L + 1 primes).
    pub fn max_level(&self) -> usize {
        self.chain.len() - 1
    }

    /// Default encoding scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// log2 of the product of all primes (ciphertext and special).
    pub fn total_modulus_bits(&self) -> f64 {
        self.chain
            .iter()
            .chain(&self.special)
            .map(|&m| (m as f64).log2())
            .sum()
    }

    /// Number of chain primes per key-switching digit (= number of special primes).
    pub(crate) fn digit_size(&self) -> usize {
        self.special.len()
    }

    /// Indices (into `moduli`) of the limbs at `level` followed by the special limbs.
    pub(crate) fn ext_indices(&self, level: usize) -> Vec<usize> {
        (0..=level)
            .chain(self.chain.len()..self.moduli.len())
            .collect()
    }

    /// Indices of the special limbs.
    pub(crate) fn special_indices(&self) -> std::ops::Range<usize> {
        self.chain.len()..self.moduli.len()
    }

    /// Galois element for a left rotation by `step` slots (negative: right).
    pub fn galois_element_for_rotation(&self, step: i64) -> u64 {
        let slots = self.slots() as i64;
        let two_n = 2 * self.degree as u64;
        let k = step.rem_euclid(slots) as u64;
        pow_mod(5, k, two_n)
    }

    /// Galois element of complex conjugation (2N - 1).
    pub fn galois_element_conjugate(&self) -> u64 {
        2 * self.degree as u64 - 1
    }

    /// Permutation of NTT slots realising X -> X^g: `out[j] = in[perm[j]]`.
    pub(crate) fn galois_permutation(&self, g: u64) -> Vec<u32> {
        let two_n = 2 * self.degree as u64;
        self.ntt_exponents
            .iter()
            .map(|&e| {
                let t = (u64::from(e) * g) % two_n;
                self.ntt_slot_of_exponent[t as usize]
            })
            .collect()
    }

    /// Checks that two parameter handles describe the same parameters.
    pub(crate) fn check_same(a: &Arc<Self>, b: &Arc<Self>) -> Result<()> {
        if Arc::ptr_eq(a, b) || **a == **b {
            Ok(())
        } else {
            Err(CkksError::ParametersMismatch)
        }
    }

    /// P mod q_i for the chain primes.
    pub(crate) fn special_product_mod(&self, i: usize) -> u64 {
        let q = self.moduli[i].value;
        self.special
            .iter()
            .fold(1u64, |acc, &p| mul_mod(acc, p % q, q))
    }
}

/// Operations allocate and free many limb-sized buffers. With glibc's default thresholds, freed
/// heap memory is handed back to the kernel (trim/madvise) and faulted in again on the next
/// operation, which cost about a third of the time of a key switch. Allocating and freeing one
/// buffer above the mmap threshold makes glibc raise its mmap and trim thresholds dynamically
/// (to 16 MiB and 32 MiB); with other allocators this is a harmless 16 MiB allocation.
fn raise_allocator_thresholds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let v: Vec<u8> = vec![1u8; 16 << 20];
        std::hint::black_box(&v);
    });
}

/// Finds, for the negacyclic NTT of tfhe-ntt, which odd power of a primitive 2N-th root each
/// output slot evaluates at, by transforming X.
fn ntt_exponent_tables(m: &Modulus, degree: usize) -> Result<(Vec<u32>, Vec<u32>)> {
    let p = m.value;
    let mut x = vec![0u64; degree];
    x[1] = 1;
    m.plan.fwd(&mut x);
    let psi = x[0];
    let two_n = 2 * degree;
    let mut log: HashMap<u64, u32> = HashMap::with_capacity(degree);
    let psi2 = mul_mod(psi, psi, p);
    let mut cur = psi;
    for e in (1..two_n).step_by(2) {
        log.insert(cur, e as u32);
        cur = mul_mod(cur, psi2, p);
    }
    let mut exps = Vec::with_capacity(degree);
    let mut slot_of = vec![u32::MAX; two_n];
    for (j, v) in x.iter().enumerate() {
        let e = *log
            .get(v)
            .ok_or(CkksError::InvalidModulus { modulus: p, degree })?;
        exps.push(e);
        slot_of[e as usize] = j as u32;
    }
    Ok((exps, slot_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_within_the_128_bit_security_bound() {
        for preset in Preset::ALL {
            let p = preset.build().unwrap();
            let max = max_total_modulus_bits(p.degree()).unwrap();
            assert!(p.total_modulus_bits() <= max as f64, "{preset:?}");
        }
    }

    #[test]
    fn primes_are_ntt_friendly_and_distinct() {
        let primes = generate_primes(8192, &[31, 26, 26, 26, 31]).unwrap();
        for (i, &p) in primes.iter().enumerate() {
            assert_eq!(p % 16384, 1);
            assert!(!primes[..i].contains(&p));
        }
        assert_eq!(64 - primes[1].leading_zeros(), 26);
    }

    #[test]
    fn insecure_sets_are_refused() {
        let e = CkksParameters::builder()
            .degree(8192)
            .chain_bits(&[60, 40, 40, 40, 40])
            .special_bits(&[60])
            .scale_bits(40)
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            CkksError::InsecureParameters {
                degree: 8192,
                max_bits: 218,
                ..
            }
        ));
        assert!(e.to_string().contains("HomomorphicEncryption.org"));
        let e = CkksParameters::builder()
            .degree(2048)
            .chain_bits(&[30])
            .special_bits(&[30])
            .build();
        assert!(matches!(e, Err(CkksError::InvalidDegree { .. })));
        let e = CkksParameters::builder()
            .degree(4096)
            .chain_bits(&[40, 30])
            .special_bits(&[])
            .build();
        assert!(matches!(e, Err(CkksError::InvalidChain { .. })));
        let e = CkksParameters::builder()
            .degree(4096)
            .chain_bits(&[62])
            .special_bits(&[30])
            .build();
        assert!(matches!(e, Err(CkksError::InvalidPrimeBits { .. })));
        let e = CkksParameters::new(4096, vec![1_000_003], vec![40961], 1024.0);
        assert!(e.is_err());
    }
}
