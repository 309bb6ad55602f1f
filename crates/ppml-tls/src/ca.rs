//! [`Ca`]: a deployment's own certificate authority. It signs the identities of servers,
//! parties and clients; its key stays with whoever deploys (`ca.key`, mode 0600), so that new
//! identities can be issued later without a new deployment.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Result, TlsError};
use crate::pem::{read_bounded_text, write_file, Identity};

/// How long a CA made by [`Ca::generate`] is valid: ten years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long an identity issued by [`Ca::issue`] is valid: about two years (825 days, the
/// longest the CA/Browser Forum allowed for server certificates).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(825 * 86_400);
/// Validity starts this long before issuance, for peers whose clocks run a little behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// A certificate authority: its certificate and its signing key (ECDSA P-256).
pub struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn offset(t: SystemTime) -> Result<time::OffsetDateTime> {
    let bad = TlsError::Validity {
        reason: "a time before 1970 or too far ahead",
    };
    let secs = t.duration_since(UNIX_EPOCH).map_err(|_| bad)?.as_secs();
    let secs = i64::try_from(secs).map_err(|_| TlsError::Validity {
        reason: "a time too far ahead",
    })?;
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| TlsError::Validity {
        reason: "a time too far ahead",
    })
}

/// From `CLOCK_SKEW` before now to `length` after now.
fn from_now(length: Duration) -> (SystemTime, SystemTime) {
    let now = SystemTime::now();
    (
        now.checked_sub(CLOCK_SKEW).unwrap_or(UNIX_EPOCH),
        now.checked_add(length).unwrap_or(now),
    )
}

fn set_validity(p: &mut CertificateParams, from: SystemTime, until: SystemTime) -> Result<()> {
    if until <= from {
        return Err(TlsError::Validity {
            reason: "it ends before it starts",
        });
    }
    p.not_before = offset(from)?;
    p.not_after = offset(until)?;
    Ok(())
}

/// Checks that `name` can be a DNS name in a certificate and a file name beside it: 1 to 63
/// characters, lowercase ASCII letters, digits and `-`, not starting or ending with `-`.
pub fn check_name(name: &str) -> Result<()> {
    let refuse = |reason| {
        Err(TlsError::Name {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return refuse("1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return refuse("lowercase letters, digits and '-' only");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return refuse("it may not start or end with '-'");
    }
    Ok(())
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

impl Ca {
    /// A fresh CA named `common_name`, valid for [`CA_VALIDITY`] from now (less
    /// [`CLOCK_SKEW`]), allowed to sign end-entity certificates only (path length 0).
    ///
    /// # Errors
    /// [`TlsError::Certificate`] if key generation or signing fails.
    pub fn generate(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (from, until) = from_now(CA_VALIDITY);
        set_validity(&mut params, from, until)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Reads a CA written by [`Self::write`]: its certificate (PEM) and its key (PEM), and checks
    /// that the key is the certificate's.
    ///
    /// # Errors
    /// [`TlsError::File`], [`TlsError::Pem`] for unreadable files, [`TlsError::KeyMismatch`]
    /// when the key does not belong to the certificate.
    pub fn load(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Self> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let pem = read_bounded_text(cert_path)?;
        let key = KeyPair::from_pem(&read_bounded_text(key_path)?).map_err(|e| TlsError::Pem {
            path: key_path.to_path_buf(),
            what: format!("no usable private key ({e})"),
        })?;
        let cert = crate::pem::read_certs(cert_path)?
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "no certificate in the file".into(),
            })?;
        // The subject public key info sits verbatim in the certificate's DER.
        let spki = key.subject_public_key_info();
        if !cert.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert, key).map_err(|e| TlsError::Pem {
            path: cert_path.to_path_buf(),
            what: format!("not a CA certificate ({e})"),
        })?;
        Ok(Self { cert, pem, issuer })
    }

    /// Writes `dir/ca.pem` (the certificate, for everyone who must trust the CA) and
    /// `dir/ca.key` (its signing key, mode 0600: keep it offline once the identities are
    /// issued). Creates `dir`. Returns both paths.
    ///
    /// # Errors
    /// [`TlsError::File`] if a file cannot be written.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| TlsError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok((
            write_file(dir, "ca.pem", &self.pem, false)?,
            write_file(dir, "ca.key", &self.issuer.key().serialize_pem(), true)?,
        ))
    }

    /// The CA's certificate: the root a peer trusts.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A fresh identity for DNS name `name` (checked by [`check_name`]), valid from now (less
    /// [`CLOCK_SKEW`]) for [`LEAF_VALIDITY`], usable as TLS server and as TLS client. Its
    /// chain is its own certificate (peers trust the CA).
    ///
    /// # Errors
    /// [`TlsError::Name`] for a bad name, [`TlsError::Certificate`] if signing fails.
    pub fn identity(&self, name: &str) -> Result<Identity> {
        let (from, until) = from_now(LEAF_VALIDITY);
        self.identity_valid(name, from, until)
    }

    /// [`Self::identity`] valid from `not_before` to `not_after`.
    ///
    /// # Errors
    /// As [`Self::identity`], and [`TlsError::Validity`] for a period that ends before it starts.
    pub fn identity_valid(
        &self,
        name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Identity> {
        let (cert, key) = self.leaf(name, not_before, not_after)?;
        Ok(Identity::new(vec![cert.der().clone()], key_der(&key)))
    }

    fn leaf(
        &self,
        name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<(rcgen::Certificate, KeyPair)> {
        check_name(name)?;
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![name.to_string()])?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        set_validity(&mut p, not_before, not_after)?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok((cert, key))
    }

    /// Issues an identity for `name` ([`Self::identity`]) and writes it to `dir/NAME.pem`
    /// (certificate) and `dir/NAME.key` (private key, mode 0600). Returns both paths.
    ///
    /// # Errors
    /// As [`Self::identity`], and [`TlsError::File`] if a file cannot be written.
    pub fn issue(&self, name: &str, dir: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        let (from, until) = from_now(LEAF_VALIDITY);
        let (cert, key) = self.leaf(name, from, until)?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| TlsError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok((
            write_file(dir, &format!("{name}.pem"), &cert.pem(), false)?,
            write_file(dir, &format!("{name}.key"), &key.serialize_pem(), true)?,
        ))
    }
}
