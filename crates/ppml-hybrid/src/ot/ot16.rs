//! 1-out-of-16 OT of 2-bit messages from four random 1-out-of-2 OTs of direction A (server
//! sends, client chooses), after Naor and Pinkas ("Oblivious transfer and polynomial
//! evaluation", STOC 1999, section 4.1): message `v` is masked by `XOR_i F(K_i^{v_i ^ d_i}, v)`
//! where `d = b ^ c` is the client's choice `b` hidden by its random choice bits `c`; the client
//! holds `K_i^{c_i}`, i.e. every key of message `b` and, for any other `v`, misses at least one.
//! `F` is the tweakable correlation-robust hash of [`crate::prg::Tccr`], tweaked by `v`.

use crate::error::Result;
use crate::link::{pack, unpack};
use crate::ot::OtPools;
use crate::prg::Tccr;

/// Random 1-of-2 OTs (direction A) one 1-of-16 OT consumes.
pub const OT16_ROTS: usize = 4;

/// Keys the server hashes per 1-of-16 OT: one per base OT and message.
const KEYS_PER_OT: usize = OT16_ROTS * 16;

/// 1-of-16 OTs whose keys the server holds at once (256 KB of keys).
const OTS_PER_BLOCK: usize = 256;

/// What the client keeps between its request and the server's response.
pub struct Ot16Request {
    wanted: Vec<u8>,
    keys: Vec<[u128; 4]>,
}

impl OtPools {
    /// Client: requests message `wanted[j] < 16` of OT `j`; the request is one nibble each.
    pub fn request16(&mut self, wanted: &[u8]) -> Result<(Vec<u64>, Ot16Request)> {
        let (c, p) = self.take_pads(OT16_ROTS * wanted.len())?;
        let mut masked = Vec::with_capacity(wanted.len());
        let mut keys = Vec::with_capacity(wanted.len());
        for (j, &w) in wanted.iter().enumerate() {
            let mut d = 0u64;
            let mut k = [0u128; 4];
            for i in 0..OT16_ROTS {
                let ci = u64::from(c[OT16_ROTS * j + i]);
                d |= ((u64::from(w >> i) & 1) ^ ci) << i;
                k[i] = p[OT16_ROTS * j + i];
            }
            masked.push(d);
            keys.push(k);
        }
        Ok((
            pack::<4>(masked.into_iter()),
            Ot16Request {
                wanted: wanted.to_vec(),
                keys,
            },
        ))
    }

    /// Server: answers a request with `tables[j][v]` (2-bit messages), 32 bits per OT.
    pub fn respond16(&mut self, request: &[u64], tables: &[[u8; 16]]) -> Result<Vec<u64>> {
        let n = tables.len();
        let mut masked = unpack::<4>("OT16 request", request, n)?;
        let hash = Tccr::default();
        let pairs = self.take_pairs(OT16_ROTS * n)?;
        // Key of message v under base OT i, laid out [ot][i][v], hashed with tweak v; a block
        // of OTs at a time, in one buffer that stays in cache (a whole layer's keys would be
        // hundreds of megabytes, paid for in page faults). Each base OT has two keys, each used
        // under eight tweaks: their permutation `pi(key)`, the hash's first half, is made once.
        let mut keys = vec![0u128; OTS_PER_BLOCK.min(n) * KEYS_PER_OT];
        let mut permuted = vec![0u128; OTS_PER_BLOCK.min(n) * OT16_ROTS * 2];
        let mut answers = Vec::with_capacity(n);
        for (tables, pairs) in tables
            .chunks(OTS_PER_BLOCK)
            .zip(pairs.chunks(OTS_PER_BLOCK * OT16_ROTS))
        {
            let keys = &mut keys[..tables.len() * KEYS_PER_OT];
            let permuted = &mut permuted[..pairs.len() * 2];
            for (p, pair) in permuted.chunks_exact_mut(2).zip(pairs) {
                p.copy_from_slice(pair);
            }
            hash.permute(permuted);
            for ((row, d), pis) in keys
                .chunks_exact_mut(KEYS_PER_OT)
                .zip(masked.by_ref())
                .zip(permuted.chunks_exact(OT16_ROTS * 2))
            {
                for (i, (ks, pi)) in row
                    .chunks_exact_mut(16)
                    .zip(pis.chunks_exact(2))
                    .enumerate()
                {
                    for (v, k) in ks.iter_mut().enumerate() {
                        let bit = ((v as u64 >> i) ^ (d >> i)) & 1;
                        *k = pi[bit as usize];
                    }
                }
            }
            hash.hash_permuted_with_tweaks(keys, |k| (k % 16) as u128);
            answers.extend(tables.iter().zip(keys.chunks_exact(KEYS_PER_OT)).map(
                |(table, row)| {
                    let mut answer = 0u64;
                    for (v, m) in table.iter().enumerate() {
                        let pad = (0..OT16_ROTS).fold(0u128, |p, i| p ^ row[16 * i + v]);
                        answer |= u64::from((m & 3) ^ (pad & 3) as u8) << (2 * v);
                    }
                    answer
                },
            ));
        }
        Ok(pack::<32>(answers.into_iter()))
    }
}

impl Ot16Request {
    /// Client: the chosen 2-bit messages from the server's response.
    pub fn finish(self, response: &[u64]) -> Result<Vec<u8>> {
        let answers = unpack::<32>("OT16 response", response, self.wanted.len())?;
        let hash = Tccr::default();
        let mut keys: Vec<u128> = self.keys.iter().flatten().copied().collect();
        let wanted = &self.wanted;
        hash.hash_with_tweaks(&mut keys, |k| u128::from(wanted[k / OT16_ROTS]));
        Ok(wanted
            .iter()
            .zip(keys.chunks_exact(OT16_ROTS))
            .zip(answers)
            .map(|((&w, k), answer)| {
                let m = ((answer >> (2 * usize::from(w))) & 3) as u8;
                m ^ ((k[0] ^ k[1] ^ k[2] ^ k[3]) & 3) as u8
            })
            .collect())
    }
}
