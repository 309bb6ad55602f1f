//! Single images for `ppml predict`: 8-bit grayscale PNG (or RGB, averaged) and binary PGM (P5).
//! The image must already be 28x28 with white ink on black, as in MNIST.

use std::path::Path;

use crate::{NnError, Result};

/// The largest image file accepted.
const MAX_IMAGE_BYTES: usize = 16 << 20;

/// Reads `path` as `(width, height, pixels)` with one `u8` per pixel.
pub fn load_gray(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|source| NnError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_gray(&bytes).map_err(|reason| NnError::Image {
        path: path.to_path_buf(),
        reason,
    })
}

/// Decodes a PNG or binary PGM file's bytes as `(width, height, pixels)`, one `u8` per pixel.
pub fn decode_gray(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(format!("larger than {MAX_IMAGE_BYTES} bytes"));
    }
    if bytes.starts_with(b"P5") {
        parse_pgm(bytes)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        decode_png(bytes)
    } else {
        Err("not a PNG or binary PGM (P5) file".into())
    }
}

fn decode_png(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    if size > MAX_IMAGE_BYTES * 4 {
        return Err("image too large".into());
    }
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let gray = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|px| match channels {
            // Gray+alpha and RGBA: drop alpha.
            2 => px[0],
            3 | 4 => ((u16::from(px[0]) + u16::from(px[1]) + u16::from(px[2])) / 3) as u8,
            _ => px[0],
        })
        .collect();
    Ok((w, h, gray))
}

/// Parses a binary PGM (`P5`, maxval <= 255).
pub fn parse_pgm(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), String> {
    if !bytes.starts_with(b"P5") {
        return Err("not a binary PGM (P5) file".into());
    }
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'#') {
            if bytes[i] == b'#' {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let v: usize = std::str::from_utf8(&bytes[start..i])
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PGM header")?;
        fields.push(v);
    }
    let (w, h, max) = (fields[0], fields[1], fields[2]);
    if max == 0 || max > 255 {
        return Err(format!("PGM maxval {max} unsupported (1..=255)"));
    }
    let data = bytes.get(i + 1..).ok_or("PGM has no pixel data")?;
    let n = w.checked_mul(h).ok_or("PGM dimensions overflow")?;
    if data.len() < n {
        return Err(format!("PGM truncated: {} of {n} pixels", data.len()));
    }
    // Samples above maxval are out of spec; they saturate at white.
    let scale = |p: u8| ((usize::from(p) * 255) / max).min(255) as u8;
    Ok((w, h, data[..n].iter().map(|&p| scale(p)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_parses_and_rejects_truncation() {
        let mut f = b"P5\n# comment\n2 2\n255\n".to_vec();
        f.extend([0, 10, 200, 255]);
        assert_eq!(parse_pgm(&f).expect("pgm"), (2, 2, vec![0, 10, 200, 255]));
        assert!(parse_pgm(&f[..f.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_pgm(b"P5 2 x 255\n").is_err());
        // Found by the `pgm` fuzz target: inputs shorter than the magic number.
        for short in [&b""[..], b"P", b"P5", b"P5 1 1"] {
            assert!(parse_pgm(short).is_err());
            assert!(decode_gray(short).is_err());
        }
    }

    #[test]
    fn png_round_trip() {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 3, 2);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&[1, 2, 3, 4, 5, 6]).expect("data");
        }
        assert_eq!(
            decode_png(&out).expect("png"),
            (3, 2, vec![1, 2, 3, 4, 5, 6])
        );
        assert!(decode_png(&out[..20]).is_err());
    }
}
