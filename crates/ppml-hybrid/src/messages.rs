//! The typed messages of a linear layer: the client's encrypted input shares and the server's
//! masked products, each a batch of RLWE blobs per image.
//!
//! ```text
//! LinearUploads = for each image, for each channel group: seed (4 words) | c0 (poly_words)
//! LinearResults = for each image, for each output block:  c1 (poly_words) | c0 at the kept
//!                  coefficients (k per prime)
//! ```
//!
//! Decoding checks once that a frame holds exactly the blobs the layer expects, then hands each
//! image's blobs out by name; the words of every blob are validated by the RLWE decoder that
//! reads them ([`Ciphertext::from_upload`] on the server, [`ppml_rlwe::SecretKey::decrypt_kept`]
//! on the client). The other messages of a session either have their own decoders
//! ([`crate::plan::Plan`], [`crate::session::Request`], [`ppml_rlwe::PublicKey`]) or are ring
//! vectors whose length the protocol fixes, received with [`crate::link::Link::recv_exact`]
//! under their name.

use std::marker::PhantomData;
use std::slice::ChunksExact;

use ppml_rlwe::{Ciphertext, Params};

use crate::error::{HybridError, Result};

/// Words of an RLWE upload: the seed of `c1` (4 words), then `c0`.
pub fn upload_words(params: &Params) -> usize {
    params.poly_words() + 4
}

/// Words of an RLWE result as the server returns it, kept at `kept` coefficients: `c1`, then
/// `c0` at those ([`ppml_rlwe::keep_coefficients`]).
pub fn result_words(params: &Params, kept: usize) -> usize {
    ppml_rlwe::kept_words(params, kept)
}

/// What a linear layer's message is a batch of.
pub trait Blob {
    /// The message's name in errors.
    const WHAT: &'static str;
}

/// An RLWE upload: the client's encrypted share of a group of input channels.
#[derive(Clone, Copy, Debug)]
pub struct Upload;

impl Blob for Upload {
    const WHAT: &'static str = "linear uploads";
}

/// An RLWE ciphertext: the server's masked product for a block of output channels.
#[derive(Clone, Copy, Debug)]
pub struct Product;

impl Blob for Product {
    const WHAT: &'static str = "linear results";
}

/// A linear layer's message: `images` images of `per_image` blobs `B` each.
#[derive(Clone, Debug)]
pub struct Batch<B> {
    words: Vec<u64>,
    per_image: usize,
    width: usize,
    blob: PhantomData<B>,
}

/// The client's encrypted shares of a linear layer's input: per image, one RLWE upload per
/// group of input channels.
pub type LinearUploads = Batch<Upload>;

/// The server's masked products of a linear layer: per image, one RLWE ciphertext per block of
/// output channels.
pub type LinearResults = Batch<Product>;

impl<B: Blob> Batch<B> {
    /// An empty message with room for `images` images of `per_image` blobs of `width` words
    /// ([`upload_words`], [`result_words`]).
    pub fn new(width: usize, per_image: usize, images: usize) -> Self {
        Self {
            words: Vec::with_capacity(images.saturating_mul(per_image).saturating_mul(width)),
            per_image,
            width,
            blob: PhantomData,
        }
    }

    /// Appends the next blob (as [`ppml_rlwe::SecretKey::encrypt`] or
    /// [`ppml_rlwe::Accumulator::finish`] returns it).
    pub fn push(&mut self, blob: &[u64]) {
        self.words.extend_from_slice(blob);
    }

    /// The message's words.
    pub fn encode(self) -> Vec<u64> {
        self.words
    }

    /// The message of `images` images, `per_image` blobs of `width` words each.
    ///
    /// # Errors
    /// [`HybridError::Malformed`] if `words` is not exactly that many blobs.
    pub fn decode(width: usize, per_image: usize, images: usize, words: Vec<u64>) -> Result<Self> {
        let expected = images.saturating_mul(per_image).saturating_mul(width);
        if words.len() != expected || width == 0 {
            return Err(HybridError::Malformed {
                what: B::WHAT,
                expected,
                got: words.len(),
            });
        }
        Ok(Self {
            words,
            per_image,
            width,
            blob: PhantomData,
        })
    }

    /// Each image's blobs, in order (none for an empty layer).
    pub fn images(&self) -> impl Iterator<Item = ChunksExact<'_, u64>> {
        let image = (self.per_image * self.width).max(1);
        self.words
            .chunks_exact(image)
            .map(|blobs| blobs.chunks_exact(self.width))
    }
}

impl LinearUploads {
    /// Each image's uploads, decoded.
    ///
    /// # Errors
    /// An image's item is [`HybridError::Rlwe`] if one of its uploads is not a valid upload.
    pub fn ciphertexts<'a>(
        &'a self,
        params: &'a Params,
    ) -> impl Iterator<Item = Result<Vec<Ciphertext>>> + 'a {
        self.images().map(move |ups| {
            ups.map(|u| Ciphertext::from_upload(params, u).map_err(HybridError::from))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_their_images_apart_and_wrong_sizes_are_refused() -> Result<()> {
        let params = Params::default_set()?;
        let w = result_words(&params, 5);
        let mut results = LinearResults::new(w, 2, 3);
        for blob in 0..6u64 {
            results.push(&vec![blob; w]);
        }
        let words = results.encode();
        let results = LinearResults::decode(w, 2, 3, words.clone())?;
        let firsts: Vec<Vec<u64>> = results
            .images()
            .map(|cts| cts.map(|ct| ct[0]).collect())
            .collect();
        assert_eq!(firsts, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert!(matches!(
            LinearResults::decode(w, 2, 4, words.clone()),
            Err(HybridError::Malformed { expected, got, .. }) if expected == 8 * w && got == 6 * w
        ));
        // Results are not uploads: the width differs, and so do the counts.
        assert!(LinearUploads::decode(upload_words(&params), 2, 3, words).is_err());
        // An upload whose coefficients are not reduced decodes as a frame but not as an image.
        let mut ups = LinearUploads::new(upload_words(&params), 1, 1);
        ups.push(&vec![u64::MAX; upload_words(&params)]);
        let ups = LinearUploads::decode(upload_words(&params), 1, 1, ups.encode())?;
        assert!(matches!(
            ups.ciphertexts(&params).next(),
            Some(Err(HybridError::Rlwe(_)))
        ));
        Ok(())
    }
}
