//! The model sealed at rest: the model file encrypted with an AEAD key that only the enclave
//! obtains.
//!
//! Format: `"PPMLSEAL" | version (1) | XChaCha20 nonce (24) | ciphertext | tag (16)`, with the
//! first 9 bytes authenticated as associated data. The plaintext is the model's safetensors
//! bytes ([`ppml_nn::io::to_bytes`]).
//!
//! Where the key comes from:
//! - Simulated mode: HKDF-SHA256 of a 32-byte sealing key file ([`SealingKey`]). Whoever can read
//!   that file can unseal the model; on a host without a TEE that includes the host's root. It
//!   keeps the model confidential from anyone who holds only the sealed file (a backup, a copy
//!   in an artefact store), nothing more.
//! - Gramine/SGX: do not use this format. Mount the model directory as a Gramine encrypted
//!   file system keyed with `_sgx_mrenclave` (see `deploy/gramine/`): the CPU derives the key
//!   from the enclave's measurement, Gramine decrypts transparently inside the enclave, and the
//!   enclave reads a plain model file through [`crate::ModelSource::File`].

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use ppml_nn::Model;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{random_bytes, Result, TeeError};

/// Magic bytes of a sealed model file.
pub const MAGIC: [u8; 8] = *b"PPMLSEAL";
/// The sealed format version.
pub const VERSION: u8 = 1;
const PREFIX: usize = 8 + 1;
const NONCE: usize = 24;

/// A 32-byte sealing key (zeroised on drop, never printed).
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// A fresh key from the OS RNG.
    pub fn generate() -> Result<Self> {
        Ok(Self(Zeroizing::new(random_bytes::<32>()?)))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Reads a key file (exactly 32 bytes).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| TeeError::File {
            path: path.to_path_buf(),
            source,
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            TeeError::Seal(format!(
                "{}: a sealing key file holds exactly 32 bytes, this one {}",
                path.display(),
                bytes.len()
            ))
        })?;
        Ok(Self::from_bytes(arr))
    }

    /// Writes the key to a new file (owner-only permissions on Unix); refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file_err = |source| TeeError::File {
            path: path.to_path_buf(),
            source,
        };
        let mut f = opts.open(path).map_err(file_err)?;
        f.write_all(self.0.as_slice()).map_err(file_err)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let hk = Hkdf::<Sha256>::new(None, self.0.as_slice());
        let mut k = Zeroizing::new([0u8; 32]);
        // 32 bytes never exceeds HKDF's output limit.
        let _ = hk.expand(b"ppml-tee/v1 model sealing", k.as_mut_slice());
        XChaCha20Poly1305::new(&(*k).into())
    }
}

/// Seals `model` under `key`.
pub fn seal_model(model: &Model, key: &SealingKey) -> Result<Vec<u8>> {
    let plain = Zeroizing::new(ppml_nn::io::to_bytes(model)?);
    let nonce = random_bytes::<NONCE>()?;
    let mut out = Vec::with_capacity(PREFIX + NONCE + plain.len() + 16);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let ct = key
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &out[..PREFIX],
            },
        )
        .map_err(|_| TeeError::Seal("encryption failed".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a sealed model; `source` only names it in errors.
pub fn unseal_model(sealed: &[u8], key: &SealingKey, source: &Path) -> Result<Model> {
    if sealed.len() < PREFIX + NONCE + 16 || sealed[..8] != MAGIC {
        return Err(TeeError::Seal(format!(
            "{}: not a sealed ppml model",
            source.display()
        )));
    }
    if sealed[8] != VERSION {
        return Err(TeeError::Seal(format!(
            "{}: sealed format version {}, expected {VERSION}",
            source.display(),
            sealed[8]
        )));
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&sealed[PREFIX..PREFIX + NONCE]);
    let plain = Zeroizing::new(
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[PREFIX + NONCE..],
                    aad: &sealed[..PREFIX],
                },
            )
            .map_err(|_| {
                TeeError::Seal(format!(
                    "{}: wrong sealing key or the file was modified",
                    source.display()
                ))
            })?,
    );
    Ok(ppml_nn::io::from_bytes(&plain, source)?)
}

/// Seals the model at `model_path` into `out_path` under the key file `key_path`.
pub fn seal_file(model_path: &Path, key_path: &Path, out_path: &Path) -> Result<()> {
    let model = ppml_nn::io::load(model_path)?;
    let sealed = seal_model(&model, &SealingKey::read(key_path)?)?;
    std::fs::write(out_path, sealed).map_err(|source| TeeError::File {
        path: out_path.to_path_buf(),
        source,
    })
}

/// Reads and opens a sealed model file.
pub fn unseal_file(path: &Path, key_path: &Path) -> Result<Model> {
    let len = std::fs::metadata(path)
        .map_err(|source| TeeError::File {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len > ppml_nn::io::MAX_MODEL_BYTES + 64 {
        return Err(TeeError::Seal(format!(
            "{}: {len} bytes is larger than any model",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|source| TeeError::File {
        path: path.to_path_buf(),
        source,
    })?;
    unseal_model(&bytes, &SealingKey::read(key_path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let mut m = ppml_nn::zoo::architecture("mlp").unwrap();
        ppml_nn::zoo::init_weights(&mut m, 3);
        m
    }

    #[test]
    fn sealing_round_trips_and_hides_the_weights() {
        let key = SealingKey::generate().unwrap();
        let m = model();
        let sealed = seal_model(&m, &key).unwrap();
        assert_eq!(unseal_model(&sealed, &key, Path::new("m")).unwrap(), m);
        let plain = ppml_nn::io::to_bytes(&m).unwrap();
        // No 16-byte window of the plaintext weights appears in the sealed file.
        let w = &plain[plain.len() - 16..];
        assert!(!sealed.windows(16).any(|x| x == w));
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let key = SealingKey::generate().unwrap();
        let sealed = seal_model(&model(), &key).unwrap();
        let other = SealingKey::generate().unwrap();
        assert!(unseal_model(&sealed, &other, Path::new("m")).is_err());
        let mut t = sealed.clone();
        t[100] ^= 1;
        assert!(unseal_model(&t, &key, Path::new("m")).is_err());
        let mut v = sealed.clone();
        v[8] = 2;
        assert!(unseal_model(&v, &key, Path::new("m")).is_err());
        assert!(unseal_model(&sealed[..20], &key, Path::new("m")).is_err());
    }

    #[test]
    fn key_files_are_exact_and_not_overwritten() {
        let dir = std::env::temp_dir().join(format!("ppml-tee-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k");
        let _ = std::fs::remove_file(&p);
        let key = SealingKey::generate().unwrap();
        key.write_new(&p).unwrap();
        assert!(key.write_new(&p).is_err());
        assert_eq!(SealingKey::read(&p).unwrap().0.as_slice(), key.0.as_slice());
        std::fs::write(&p, [0u8; 31]).unwrap();
        assert!(SealingKey::read(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
