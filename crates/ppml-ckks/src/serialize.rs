//! A compact binary format for parameters, keys, ciphertexts and plaintexts.
//!
//! Every object starts with the magic `PPCK`, a format version and a kind byte; objects other
//! than parameters carry a fingerprint of their parameters. Residues are bit-packed with the
//! bit width of their prime. Decoding is total: it checks lengths before allocating, moduli,
//! levels, sizes, scales and that every residue is below its prime, rejects trailing bytes, and
//! returns [`CkksError::Malformed`] instead of panicking. Mask polynomials expanded from seeds
//! (public key, key-switching keys, symmetric ciphertexts) are sent as their 32-byte seed.

use std::collections::BTreeMap;
use std::sync::Arc;

use ppml_wire::{Cursor, Writer};

use crate::ciphertext::Ciphertext;
use crate::error::{CkksError, Result};
use crate::keys::{GaloisKeys, KeySwitchingKey, PublicKey, RelinearizationKey};
use crate::params::{CkksParameters, MAX_PRIMES};
use crate::plaintext::Plaintext;
use crate::poly::{mods, RnsPoly};
use crate::sampling;

const MAGIC: &[u8; 4] = b"PPCK";
/// Version 2: seeded masks draw 32-bit words for primes below 2^32.
const VERSION: u8 = 2;

/// What an object is, the byte after the version.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// [`CkksParameters`]: degree, moduli and scale.
    Params = 1,
    /// A [`Ciphertext`] (its mask as a seed when fresh).
    Ciphertext = 2,
    /// A [`Plaintext`].
    Plaintext = 3,
    /// A [`PublicKey`]: `b` and the seed of `a`.
    PublicKey = 4,
    /// A [`RelinearizationKey`].
    RelinKey = 5,
    /// [`GaloisKeys`]: each key after its Galois element.
    GaloisKeys = 6,
}

fn malformed(reason: &'static str) -> CkksError {
    CkksError::Malformed { reason }
}

/// FNV-1a over the degree, moduli and scale.
fn fingerprint(p: &CkksParameters) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(p.degree() as u64);
    p.chain().iter().for_each(|&q| eat(q));
    eat(u64::MAX);
    p.special().iter().for_each(|&q| eat(q));
    eat(p.scale().to_bits());
    h
}

/// A writer that has written the header of a `kind` object (of `params`, if any).
fn writer(kind: Kind, params: Option<&CkksParameters>) -> Writer {
    let mut w = Writer::new();
    w.bytes(MAGIC);
    w.u8(VERSION);
    w.u8(kind as u8);
    if let Some(p) = params {
        w.u64(fingerprint(p));
    }
    w
}

/// Bit-packs values of `bits` bits.
fn write_packed(w: &mut Writer, vals: &[u64], bits: u32) {
    w.reserve(packed_len(vals.len(), bits));
    let mut acc: u128 = 0;
    let mut n = 0u32;
    for &v in vals {
        acc |= u128::from(v) << n;
        n += bits;
        if n >= 64 {
            w.u64(acc as u64);
            acc >>= 64;
            n -= 64;
        }
    }
    while n > 0 {
        w.u8(acc as u8);
        acc >>= 8;
        n = n.saturating_sub(8);
    }
}

fn write_poly(w: &mut Writer, p: &RnsPoly, moduli: &[u64]) {
    for (l, &q) in p.limbs.iter().zip(moduli) {
        write_packed(w, l, bit_width(q));
    }
}

fn bit_width(q: u64) -> u32 {
    64 - q.leading_zeros()
}

fn packed_len(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(8)
}

/// A cursor past the header of a `kind` object, which must belong to `params` (if any).
fn reader<'a>(buf: &'a [u8], kind: Kind, params: Option<&CkksParameters>) -> Result<Cursor<'a>> {
    let mut r = Cursor::new(buf);
    if r.take(4)? != MAGIC {
        return Err(malformed("bad magic"));
    }
    if r.u8()? != VERSION {
        return Err(malformed("unsupported format version"));
    }
    if r.u8()? != kind as u8 {
        return Err(malformed("wrong object kind"));
    }
    if let Some(p) = params {
        if r.u64()? != fingerprint(p) {
            return Err(malformed("object belongs to other parameters"));
        }
    }
    Ok(r)
}

/// `n` values bit-packed with the width of `q`, each below `q`, the padding bits zero.
fn read_packed(r: &mut Cursor<'_>, n: usize, q: u64) -> Result<Vec<u64>> {
    let bits = bit_width(q);
    let bytes = r.take(packed_len(n, bits))?;
    let mask = (1u64 << bits) - 1;
    let mut out = Vec::with_capacity(n);
    let total = n * bits as usize;
    // Each value lies within the 8 bytes from its first one when bits <= 56: read whole words
    // while 8 bytes remain, then finish bit by bit.
    let fast = if bits <= 56 {
        (bytes.len().saturating_sub(8) * 8 / bits as usize).min(n)
    } else {
        0
    };
    for i in 0..fast {
        let bit = i * bits as usize;
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[bit / 8..bit / 8 + 8]);
        out.push((u64::from_le_bytes(w) >> (bit % 8)) & mask);
    }
    let mut acc: u128 = 0;
    let mut have = 0u32;
    let start = fast * bits as usize;
    let mut it = bytes[start / 8..].iter();
    if !start.is_multiple_of(8) {
        let b = it.next().ok_or(malformed("truncated input"))?;
        acc = u128::from(*b >> (start % 8));
        have = 8 - (start % 8) as u32;
    }
    for _ in fast..n {
        while have < bits {
            let b = it.next().ok_or(malformed("truncated input"))?;
            acc |= u128::from(*b) << have;
            have += 8;
        }
        out.push((acc as u64) & mask);
        acc >>= bits;
        have -= bits;
    }
    if acc != 0 || total > bytes.len() * 8 {
        return Err(malformed("non-zero padding bits"));
    }
    if out.iter().any(|&v| v >= q) {
        return Err(malformed("residue not below its modulus"));
    }
    Ok(out)
}

/// A polynomial of `degree` coefficients with one limb per modulus; its whole length is
/// checked before any limb is allocated.
fn read_poly(r: &mut Cursor<'_>, degree: usize, moduli: &[u64]) -> Result<RnsPoly> {
    let need: usize = moduli
        .iter()
        .map(|&q| packed_len(degree, bit_width(q)))
        .sum();
    if r.remaining() < need {
        return Err(malformed("truncated input"));
    }
    let limbs = moduli
        .iter()
        .map(|&q| read_packed(r, degree, q))
        .collect::<Result<_>>()?;
    Ok(RnsPoly { limbs })
}

fn all_moduli(p: &CkksParameters) -> Vec<u64> {
    p.chain().iter().chain(p.special()).copied().collect()
}

fn read_level(r: &mut Cursor<'_>, p: &CkksParameters) -> Result<usize> {
    let level = usize::from(r.u8()?);
    if level > p.max_level() {
        return Err(malformed("level out of range"));
    }
    Ok(level)
}

fn read_scale(r: &mut Cursor<'_>) -> Result<f64> {
    let s = r.f64()?;
    if !s.is_finite() || s <= 0.0 {
        return Err(malformed("scale not finite and positive"));
    }
    Ok(s)
}

impl CkksParameters {
    /// Serialises the parameters (degree, moduli, scale).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = writer(Kind::Params, None);
        w.u32(self.degree() as u32);
        w.u8(self.chain().len() as u8);
        self.chain().iter().for_each(|&q| w.u64(q));
        w.u8(self.special().len() as u8);
        self.special().iter().for_each(|&q| w.u64(q));
        w.f64(self.scale());
        w.into_bytes()
    }

    /// Decodes and fully re-validates parameters (including the security bound).
    pub fn from_bytes(bytes: &[u8]) -> Result<Arc<Self>> {
        let mut r = reader(bytes, Kind::Params, None)?;
        let degree = r.u32()? as usize;
        let nq = usize::from(r.u8()?);
        if nq > MAX_PRIMES {
            return Err(malformed("too many primes"));
        }
        let q = (0..nq)
            .map(|_| r.u64())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let np = usize::from(r.u8()?);
        if np > MAX_PRIMES {
            return Err(malformed("too many primes"));
        }
        let p = (0..np)
            .map(|_| r.u64())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let scale = r.f64()?;
        r.finish()?;
        CkksParameters::new(degree, q, p, scale).map(Arc::new)
    }
}

impl Ciphertext {
    /// Serialises the ciphertext (a fresh symmetric encryption sends its mask as a seed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = self.params();
        let mut w = writer(Kind::Ciphertext, Some(p));
        w.u8(self.level() as u8);
        w.u8(self.size() as u8);
        w.f64(self.scale());
        let moduli = &p.chain()[..=self.level()];
        match self.seed {
            Some(seed) if self.size() == 2 => {
                w.u8(1);
                w.bytes(&seed);
                write_poly(&mut w, &self.polys[0], moduli);
            }
            _ => {
                w.u8(0);
                self.polys
                    .iter()
                    .for_each(|c| write_poly(&mut w, c, moduli));
            }
        }
        w.into_bytes()
    }

    /// Decodes a ciphertext of these parameters.
    pub fn from_bytes(params: &Arc<CkksParameters>, bytes: &[u8]) -> Result<Self> {
        let mut r = reader(bytes, Kind::Ciphertext, Some(params))?;
        let level = read_level(&mut r, params)?;
        let size = usize::from(r.u8()?);
        if !(2..=3).contains(&size) {
            return Err(malformed("ciphertext size must be 2 or 3"));
        }
        let scale = read_scale(&mut r)?;
        let moduli = &params.chain()[..=level];
        let n = params.degree();
        let ct = match r.u8()? {
            1 if size == 2 => {
                let seed = r.array()?;
                let c0 = read_poly(&mut r, n, moduli)?;
                r.finish()?;
                let idx: Vec<usize> = (0..=level).collect();
                let a = sampling::uniform_from_seed(&seed, 0, &mods(params, &idx), n);
                let mut ct = Ciphertext::from_parts(Arc::clone(params), vec![c0, a], level, scale);
                ct.seed = Some(seed);
                ct
            }
            0 => {
                let polys = (0..size)
                    .map(|_| read_poly(&mut r, n, moduli))
                    .collect::<Result<Vec<_>>>()?;
                r.finish()?;
                Ciphertext::from_parts(Arc::clone(params), polys, level, scale)
            }
            _ => return Err(malformed("bad seed flag")),
        };
        Ok(ct)
    }
}

impl Plaintext {
    /// Serialises the plaintext.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = self.params();
        let mut w = writer(Kind::Plaintext, Some(p));
        w.u8(self.level() as u8);
        w.f64(self.scale());
        write_poly(&mut w, &self.poly, &p.chain()[..=self.level()]);
        w.into_bytes()
    }

    /// Decodes a plaintext of these parameters.
    pub fn from_bytes(params: &Arc<CkksParameters>, bytes: &[u8]) -> Result<Self> {
        let mut r = reader(bytes, Kind::Plaintext, Some(params))?;
        let level = read_level(&mut r, params)?;
        let scale = read_scale(&mut r)?;
        let poly = read_poly(&mut r, params.degree(), &params.chain()[..=level])?;
        r.finish()?;
        Ok(Plaintext::from_parts(
            Arc::clone(params),
            poly,
            level,
            scale,
        ))
    }
}

impl PublicKey {
    /// Serialises the public key (b and the seed of a).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let mut w = writer(Kind::PublicKey, Some(p));
        w.bytes(&self.seed);
        write_poly(&mut w, &self.b, &all_moduli(p));
        w.into_bytes()
    }

    /// Decodes a public key of these parameters.
    pub fn from_bytes(params: &Arc<CkksParameters>, bytes: &[u8]) -> Result<Self> {
        let mut r = reader(bytes, Kind::PublicKey, Some(params))?;
        let seed = r.array()?;
        let b = read_poly(&mut r, params.degree(), &all_moduli(params))?;
        r.finish()?;
        let all: Vec<usize> = (0..params.moduli.len()).collect();
        let a = sampling::uniform_from_seed(&seed, 0, &mods(params, &all), params.degree());
        Ok(PublicKey {
            params: Arc::clone(params),
            seed,
            b,
            a,
        })
    }
}

/// The moduli of a key's limbs: `q_0..=q_level` and the special primes.
fn key_moduli(p: &CkksParameters, level: usize) -> (Vec<usize>, Vec<u64>) {
    let idx = p.ext_indices(level);
    let moduli = idx.iter().map(|&i| p.moduli[i].value).collect();
    (idx, moduli)
}

fn write_ksk(w: &mut Writer, k: &KeySwitchingKey) {
    let (idx, moduli) = key_moduli(&k.params, k.level);
    w.u32(k.level as u32);
    w.bytes(&k.seed);
    k.b.iter()
        .for_each(|b| write_poly(w, &b.select(&idx), &moduli));
}

fn read_ksk(r: &mut Cursor<'_>, params: &Arc<CkksParameters>) -> Result<KeySwitchingKey> {
    let level = r.u32()? as usize;
    if level > params.max_level() {
        return Err(malformed("key level above the parameters' chain"));
    }
    let (idx, moduli) = key_moduli(params, level);
    let seed = r.array()?;
    let b = (0..KeySwitchingKey::digits_at(params, level))
        .map(|_| {
            read_poly(r, params.degree(), &moduli)
                .map(|b| crate::packed::PackedPoly::pack_at(params, &idx, &b))
        })
        .collect::<Result<Vec<_>>>()?;
    let a = KeySwitchingKey::expand_a(params, &seed, level);
    Ok(KeySwitchingKey {
        params: Arc::clone(params),
        seed,
        b,
        a,
        level,
    })
}

impl RelinearizationKey {
    /// Serialises the relinearisation key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = writer(Kind::RelinKey, Some(&self.ksk.params));
        write_ksk(&mut w, &self.ksk);
        w.into_bytes()
    }

    /// Decodes a relinearisation key of these parameters.
    pub fn from_bytes(params: &Arc<CkksParameters>, bytes: &[u8]) -> Result<Self> {
        let mut r = reader(bytes, Kind::RelinKey, Some(params))?;
        let ksk = read_ksk(&mut r, params)?;
        r.finish()?;
        if ksk.level != params.max_level() {
            return Err(malformed("a relinearisation key must serve every level"));
        }
        Ok(Self { ksk })
    }
}

impl GaloisKeys {
    /// Serialises the Galois keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = writer(Kind::GaloisKeys, Some(&self.params));
        w.u32(self.keys.len() as u32);
        for (&g, (k, perm)) in &self.keys {
            w.u64(g);
            // Keys are held in the rotated frame; send the canonical form.
            let mut canonical = k.clone();
            canonical.b =
                k.b.iter()
                    .map(|b| {
                        let b = crate::poly::permute(&b.unpack(), perm);
                        crate::packed::PackedPoly::pack(&self.params, &b)
                    })
                    .collect();
            write_ksk(&mut w, &canonical);
        }
        w.into_bytes()
    }

    /// Decodes Galois keys of these parameters (elements odd, below 2N, increasing, not 1).
    pub fn from_bytes(params: &Arc<CkksParameters>, bytes: &[u8]) -> Result<Self> {
        let mut r = reader(bytes, Kind::GaloisKeys, Some(params))?;
        let count = r.u32()? as usize;
        let two_n = 2 * params.degree() as u64;
        if count > params.degree() {
            return Err(malformed("too many Galois keys"));
        }
        let mut keys = BTreeMap::new();
        let mut last = 1u64;
        for _ in 0..count {
            let g = r.u64()?;
            if g <= last || g >= two_n || g % 2 == 0 {
                return Err(malformed("invalid or unordered Galois element"));
            }
            last = g;
            let mut k = read_ksk(&mut r, params)?;
            let perm = params.galois_permutation(g);
            k.enter_rotated_frame(&perm);
            keys.insert(g, (k, perm));
        }
        r.finish()?;
        Ok(Self {
            params: Arc::clone(params),
            keys,
        })
    }
}
