//! The typed messages of a linear layer: the client's encrypted input shares and the server's
//! masked products, each a batch of RLWE blobs per image.
//!
//! ```text
//! LinearUploads = for each image, for each channel group: seed (4 words) | c0 (poly_words)
//! LinearResults = for each image, for each output block:  c0 (poly_words) | c1 (poly_words)
//! ```
//!
//! Decoding checks once that a frame holds exactly the blobs the layer expects, then hands each
//! image's blobs out by name; the words of every blob are validated by the RLWE decoder that
//! reads them ([`Ciphertext::from_upload`] on the server, [`ppml_rlwe::SecretKey::decrypt`] on
//! the client). The other messages of a session either have their own decoders
//! ([`crate::plan::Plan`], [`crate::session::Request`], [`ppml_rlwe::PublicKey`]) or are ring
//! vectors whose length the protocol fixes, received with [`crate::link::Link::recv_exact`]
//! under their name.

use std::slice::ChunksExact;

use ppml_rlwe::{Ciphertext, Params};

use crate::error::{HybridError, Result};

/// Words of an RLWE upload: the seed of `c1` (4 words), then `c0`.
pub fn upload_words(params: &Params) -> usize {
    params.poly_words() + 4
}

/// Words of an RLWE ciphertext as the server returns it: `c0`, then `c1`.
pub fn result_words(params: &Params) -> usize {
    2 * params.poly_words()
}

/// `images` images of `per_image` blobs of `width` words each.
#[derive(Clone, Debug)]
struct Batch {
    words: Vec<u64>,
    per_image: usize,
    width: usize,
}

impl Batch {
    fn new((per_image, width): (usize, usize), images: usize) -> Self {
        Self {
            words: Vec::with_capacity(images.saturating_mul(per_image).saturating_mul(width)),
            per_image,
            width,
        }
    }

    fn decode(
        what: &'static str,
        (per_image, width): (usize, usize),
        images: usize,
        words: Vec<u64>,
    ) -> Result<Self> {
        let expected = images.saturating_mul(per_image).saturating_mul(width);
        if words.len() != expected || width == 0 {
            return Err(HybridError::Malformed {
                what,
                expected,
                got: words.len(),
            });
        }
        Ok(Self {
            words,
            per_image,
            width,
        })
    }

    /// Each image's blobs (none for an empty layer).
    fn images(&self) -> impl Iterator<Item = ChunksExact<'_, u64>> {
        let image = (self.per_image * self.width).max(1);
        self.words
            .chunks_exact(image)
            .map(|blobs| blobs.chunks_exact(self.width))
    }
}

/// The client's encrypted shares of a linear layer's input: per image, one RLWE upload per
/// group of input channels.
#[derive(Clone, Debug)]
pub struct LinearUploads(Batch);

impl LinearUploads {
    const WHAT: &'static str = "linear uploads";

    /// An empty message with room for `images` images of `groups` uploads.
    pub fn new(params: &Params, groups: usize, images: usize) -> Self {
        Self(Batch::new((groups, upload_words(params)), images))
    }

    /// Appends the next upload (as [`ppml_rlwe::SecretKey::encrypt`] returns it).
    pub fn push(&mut self, upload: &[u64]) {
        self.0.words.extend_from_slice(upload);
    }

    /// The message's words.
    pub fn encode(self) -> Vec<u64> {
        self.0.words
    }

    /// The uploads of `images` images, `groups` each.
    ///
    /// # Errors
    /// [`HybridError::Malformed`] if `words` is not exactly that many uploads.
    pub fn decode(params: &Params, groups: usize, images: usize, words: Vec<u64>) -> Result<Self> {
        let shape = (groups, upload_words(params));
        Batch::decode(Self::WHAT, shape, images, words).map(Self)
    }

    /// Each image's uploads, decoded.
    ///
    /// # Errors
    /// An image's item is [`HybridError::Rlwe`] if one of its uploads is not a valid upload.
    pub fn images<'a>(
        &'a self,
        params: &'a Params,
    ) -> impl Iterator<Item = Result<Vec<Ciphertext>>> + 'a {
        self.0.images().map(move |ups| {
            ups.map(|u| Ciphertext::from_upload(params, u).map_err(HybridError::from))
                .collect()
        })
    }
}

/// The server's masked products of a linear layer: per image, one RLWE ciphertext per block of
/// output channels.
#[derive(Clone, Debug)]
pub struct LinearResults(Batch);

impl LinearResults {
    const WHAT: &'static str = "linear results";

    /// An empty message with room for `images` images of `blocks` ciphertexts.
    pub fn new(params: &Params, blocks: usize, images: usize) -> Self {
        Self(Batch::new((blocks, result_words(params)), images))
    }

    /// Appends the next ciphertext (as [`ppml_rlwe::Accumulator::finish`] returns it).
    pub fn push(&mut self, ciphertext: &[u64]) {
        self.0.words.extend_from_slice(ciphertext);
    }

    /// The message's words.
    pub fn encode(self) -> Vec<u64> {
        self.0.words
    }

    /// The results for `images` images, `blocks` each.
    ///
    /// # Errors
    /// [`HybridError::Malformed`] if `words` is not exactly that many ciphertexts.
    pub fn decode(params: &Params, blocks: usize, images: usize, words: Vec<u64>) -> Result<Self> {
        let shape = (blocks, result_words(params));
        Batch::decode(Self::WHAT, shape, images, words).map(Self)
    }

    /// Each image's ciphertexts, in block order (their words, checked when decrypted).
    pub fn images(&self) -> impl Iterator<Item = ChunksExact<'_, u64>> {
        self.0.images()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_their_images_apart_and_wrong_sizes_are_refused() -> Result<()> {
        let params = Params::default_set()?;
        let mut results = LinearResults::new(&params, 2, 3);
        let w = result_words(&params);
        for blob in 0..6u64 {
            results.push(&vec![blob; w]);
        }
        let words = results.encode();
        let results = LinearResults::decode(&params, 2, 3, words.clone())?;
        let firsts: Vec<Vec<u64>> = results
            .images()
            .map(|cts| cts.map(|ct| ct[0]).collect())
            .collect();
        assert_eq!(firsts, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert!(matches!(
            LinearResults::decode(&params, 2, 4, words.clone()),
            Err(HybridError::Malformed { expected, got, .. }) if expected == 8 * w && got == 6 * w
        ));
        // Results are not uploads: the width differs, and so do the counts.
        assert!(LinearUploads::decode(&params, 2, 3, words).is_err());
        // An upload whose coefficients are not reduced decodes as a frame but not as an image.
        let mut ups = LinearUploads::new(&params, 1, 1);
        ups.push(&vec![u64::MAX; upload_words(&params)]);
        let ups = LinearUploads::decode(&params, 1, 1, ups.encode())?;
        assert!(matches!(
            ups.images(&params).next(),
            Some(Err(HybridError::Rlwe(_)))
        ));
        Ok(())
    }
}
