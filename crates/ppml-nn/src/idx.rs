//! MNIST IDX files, raw or gzip-compressed, validated.
//!
//! Layout: a big-endian `u32` magic (`0x00000803` for images, `0x00000801` for labels), one
//! big-endian `u32` per dimension, then the `u8` data.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{NnError, Result};

/// The largest IDX file accepted after decompression (the MNIST training images are 47 MB).
const MAX_IDX_BYTES: u64 = 512 << 20;

/// A set of labelled `u8` images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `len() * rows * cols` pixels, image-major.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let k = self.rows * self.cols;
        &self.pixels[i * k..(i + 1) * k]
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.rows * self.cols);
    }
}

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// The MNIST folder: `data/mnist` under the current directory if it exists, else the one in the
/// repository this binary was built from.
pub fn default_data_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }
}

/// Loads the MNIST `split` from `dir`, which holds the standard file names (`*-idx3-ubyte` and
/// `*-idx1-ubyte`, with or without `.gz`).
pub fn load_mnist(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let find = |stem: &str| -> PathBuf {
        let raw = dir.join(stem);
        let gz = dir.join(format!("{stem}.gz"));
        if raw.exists() || !gz.exists() {
            raw
        } else {
            gz
        }
    };
    load_pair(
        &find(&format!("{prefix}-images-idx3-ubyte")),
        &find(&format!("{prefix}-labels-idx1-ubyte")),
    )
}

/// Loads an images file and a labels file and checks that they have the same count.
pub fn load_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let (dims, pixels) = read_idx(images, 3)?;
    let (ldims, labels_data) = read_idx(labels, 1)?;
    if dims[0] != ldims[0] {
        return Err(NnError::Idx {
            path: labels.to_path_buf(),
            reason: format!(
                "{} labels for {} images in {}",
                ldims[0],
                dims[0],
                images.display()
            ),
        });
    }
    Ok(Dataset {
        rows: dims[1],
        cols: dims[2],
        pixels,
        labels: labels_data,
    })
}

/// Reads an IDX file of `u8` data with `rank` dimensions; gzip is detected by its magic bytes.
pub fn read_idx(path: &Path, rank: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&bytes[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| idx_err(path, format!("gzip: {e}")))?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(idx_err(path, format!("larger than {MAX_IDX_BYTES} bytes")));
        }
        out
    } else {
        bytes
    };
    parse_idx(&bytes, rank).map_err(|reason| idx_err(path, reason))
}

fn idx_err(path: &Path, reason: String) -> NnError {
    NnError::Idx {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses IDX bytes of `u8` data with `rank` dimensions.
pub fn parse_idx(bytes: &[u8], rank: usize) -> Result<(Vec<usize>, Vec<u8>), String> {
    let word = |i: usize| -> Option<u32> {
        bytes
            .get(4 * i..4 * i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    let magic = word(0).ok_or("shorter than its 4-byte magic")?;
    let want = 0x0800 | rank as u32;
    if magic != want {
        return Err(format!(
            "wrong magic 0x{magic:08x}, expected 0x{want:08x} (u8 data of rank {rank})"
        ));
    }
    let dims: Vec<usize> = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or("truncated header")?;
    let header = 4 * (rank + 1);
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("dimensions overflow")?;
    let data = &bytes[header..];
    if data.len() != count {
        return Err(format!(
            "header {dims:?} announces {count} bytes of data, file has {}{}",
            data.len(),
            if data.len() < count {
                " (truncated)"
            } else {
                ""
            }
        ));
    }
    Ok((dims, data.to_vec()))
}

/// Encodes `u8` data with `dims` as IDX bytes (for tests and tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = (0x0800u32 | dims.len() as u32).to_be_bytes().to_vec();
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ppml-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    #[test]
    fn raw_and_gzip_round_trip() {
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
        let raw = encode_idx(&[2, 3, 4], &pixels);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).expect("gz");
        let gz = gz.finish().expect("gz");
        let labels = tmp("l-raw", &encode_idx(&[2], &[7, 1]));
        for img in [tmp("i-raw", &raw), tmp("i-gz", &gz)] {
            let d = load_pair(&img, &labels).expect("valid");
            assert_eq!((d.rows, d.cols, d.len()), (3, 4, 2));
            assert_eq!(d.image(1), &pixels[12..]);
            assert_eq!(d.labels, [7, 1]);
        }
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let good = encode_idx(&[2, 2, 2], &[0; 8]);
        assert!(parse_idx(&good, 3).is_ok());
        assert!(parse_idx(&good, 1).unwrap_err().contains("wrong magic"));
        assert!(parse_idx(&good[..good.len() - 1], 3)
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_idx(&good[..10], 3).unwrap_err().contains("header"));
        assert!(parse_idx(&[], 3).unwrap_err().contains("magic"));
        let mut long = good.clone();
        long.push(0);
        assert!(parse_idx(&long, 3).is_err());
        let huge = encode_idx(&[u32::MAX as usize, u32::MAX as usize, 2], &[]);
        assert!(parse_idx(&huge, 3).is_err());

        let images = tmp("i-count", &good);
        let labels = tmp("l-count", &encode_idx(&[3], &[0; 3]));
        let err = load_pair(&images, &labels).unwrap_err().to_string();
        assert!(err.contains("3 labels for 2 images"), "{err}");
        let missing = load_pair(Path::new("/nonexistent/x"), &labels).unwrap_err();
        assert!(matches!(missing, NnError::Io { .. }));
    }

    #[test]
    fn the_embedded_mnist_test_set_has_its_documented_contents() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        let test = load_mnist(&dir, Split::Test).expect("embedded MNIST");
        assert_eq!((test.len(), test.rows, test.cols), (10_000, 28, 28));
        assert_eq!(test.labels[0], 7);
    }
}
