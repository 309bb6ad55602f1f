//! PEM files: certificates, private keys, and an [`Identity`] (a chain and its key).

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, TlsError};

/// Largest PEM file read (a chain of a few certificates is a few KiB).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file_err = |source| TlsError::File {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(file_err)?.len();
    if len > MAX_PEM_BYTES {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("{len} bytes, more than the {MAX_PEM_BYTES} a PEM file may have"),
        });
    }
    std::fs::read(path).map_err(file_err)
}

/// The PEM file at `path` as text, bounded by [`MAX_PEM_BYTES`].
pub(crate) fn read_bounded_text(path: &Path) -> Result<String> {
    String::from_utf8(read_bounded(path)?).map_err(|_| TlsError::Pem {
        path: path.to_path_buf(),
        what: "not text".into(),
    })
}

/// Every certificate in the PEM file at `path`, in order (at least one).
///
/// # Errors
/// [`TlsError::File`] if it cannot be read, [`TlsError::Pem`] if it is too large, not PEM, or
/// holds no certificate.
pub fn read_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    parse_certs(&read_bounded(path)?, path)
}

/// Every certificate in `pem` (the text of a PEM file; `path` names it in errors).
///
/// # Errors
/// [`TlsError::Pem`] if it is not PEM or holds no certificate.
pub fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("unreadable certificate PEM ({e})"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// The private key in the PEM file at `path` (PKCS#8, SEC1 or PKCS#1).
///
/// # Errors
/// [`TlsError::File`] if it cannot be read, [`TlsError::Pem`] if it holds no key.
pub fn read_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    parse_key(&read_bounded(path)?, path)
}

/// The first private key in `pem` (the text of a PEM file; `path` names it in errors).
///
/// # Errors
/// [`TlsError::Pem`] if it holds no key.
pub fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: format!("no usable private key ({e})"),
    })
}

/// What a node shows its peers: its certificate chain (its own certificate first) and the
/// private key of that certificate. `Debug` never prints the key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// An identity from its chain and key (checked when a configuration is built from it).
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self { chain, key }
    }

    /// Reads the chain from `cert` and the key from `key` (PEM files, as [`crate::Ca::issue`]
    /// writes them).
    ///
    /// # Errors
    /// As [`read_certs`] and [`read_key`].
    pub fn load(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            chain: read_certs(cert)?,
            key: read_key(key)?,
        })
    }

    /// The certificate chain, this identity's own certificate first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// This identity's own certificate (what a peer may pin); `None` for an empty chain.
    pub fn cert(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// Writes `text` to `dir/name`, readable by its owner only when `secret` (Unix mode 0600, set
/// before any byte is written).
pub(crate) fn write_file(dir: &Path, name: &str, text: &str, secret: bool) -> Result<PathBuf> {
    use std::io::Write as _;
    let path = dir.join(name);
    let file_err = |source| TlsError::File {
        path: path.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&path).map_err(file_err)?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its mode on open: narrow it explicitly.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(file_err)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    file.write_all(text.as_bytes()).map_err(file_err)?;
    Ok(path)
}
