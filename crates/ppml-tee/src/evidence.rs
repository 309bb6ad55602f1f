//! Evidence providers: who makes the quote that binds the channel key to the enclave.
//!
//! - [`SgxProvider`]: under Gramine with SGX, writes the 64-byte report data to
//!   `/dev/attestation/user_report_data` and reads the DCAP quote from `/dev/attestation/quote`.
//! - [`SimulatedProvider`]: no hardware. It makes a quote in the same SGX v3 layout, with the
//!   SHA-256 of the running binary in place of MRENCLAVE, signed by a local P-256 key. Every
//!   check the client does runs for real, but nothing isolates the process from the host: see
//!   `docs/tee.md`. It is always labelled "simulated (no hardware isolation)".
//!
//! [`detect`] picks `sgx` when `/dev/attestation` exists and `simulated` otherwise.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

use crate::error::TeeError;
use crate::quote::{
    Measurement, Quote, QuoteHeader, ReportBody, ATT_KEY_TYPE_ECDSA_P256, QUOTE_VERSION,
    SIMULATED_QE_VENDOR_ID, TEE_TYPE_SGX,
};
use crate::{random_bytes, Result};

/// Where Gramine exposes its attestation pseudo-files.
pub const GRAMINE_ATTESTATION_DIR: &str = "/dev/attestation";

/// Which kind of evidence an enclave offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeMode {
    /// A software stand-in with no hardware isolation.
    Simulated,
    /// Intel SGX with a DCAP quote.
    Sgx,
}

impl TeeMode {
    /// The short name reported as `tee_mode`: `simulated` or `sgx`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TeeMode::Simulated => "simulated",
            TeeMode::Sgx => "sgx",
        }
    }

    /// The label every output carries.
    pub fn label(&self) -> &'static str {
        match self {
            TeeMode::Simulated => "simulated (no hardware isolation)",
            TeeMode::Sgx => "sgx (DCAP quote)",
        }
    }

    pub(crate) fn code(&self) -> u8 {
        match self {
            TeeMode::Simulated => 1,
            TeeMode::Sgx => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(TeeMode::Simulated),
            2 => Some(TeeMode::Sgx),
            _ => None,
        }
    }
}

impl fmt::Display for TeeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Makes quotes over chosen report data.
pub trait EvidenceProvider: Send + Sync + fmt::Debug {
    /// Which kind of evidence this is.
    fn mode(&self) -> TeeMode;
    /// A quote whose report body carries `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>>;
    /// The measurement the quotes carry, when the provider knows it in advance (for display).
    fn measurement(&self) -> Option<Measurement>;
}

/// SHA-256 of a file: the simulated equivalent of MRENCLAVE for an enclave binary.
pub fn measure_file(path: &Path) -> Result<Measurement> {
    let io = |source| TeeError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Measurement(h.finalize().into()))
}

/// The simulated measurement of the running binary (SHA-256 of `std::env::current_exe()`),
/// computed once per process.
pub fn self_measurement() -> Result<Measurement> {
    static CACHE: OnceLock<Measurement> = OnceLock::new();
    if let Some(m) = CACHE.get() {
        return Ok(*m);
    }
    let m = measure_file(&std::env::current_exe()?)?;
    Ok(*CACHE.get_or_init(|| m))
}

/// The software stand-in: quotes in the SGX v3 layout signed by a local P-256 key.
pub struct SimulatedProvider {
    key: SigningKey,
    mr_enclave: Measurement,
    mr_signer: Measurement,
}

impl fmt::Debug for SimulatedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedProvider")
            .field("mr_enclave", &self.mr_enclave)
            .field("mr_signer", &self.mr_signer)
            .finish_non_exhaustive()
    }
}

impl SimulatedProvider {
    /// Measures the running binary and makes a fresh signing key from the OS RNG.
    pub fn new() -> Result<Self> {
        Self::with_measurement(self_measurement()?)
    }

    /// A provider reporting `mr_enclave` (tests, or a binary measured elsewhere), with a fresh
    /// signing key.
    pub fn with_measurement(mr_enclave: Measurement) -> Result<Self> {
        // A uniformly random 32-byte string is a valid P-256 scalar except with negligible
        // probability; retry in that case.
        for _ in 0..8 {
            let bytes = zeroize::Zeroizing::new(random_bytes::<32>()?);
            if let Ok(key) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(Self::from_key(key, mr_enclave));
            }
        }
        Err(TeeError::Rng("could not draw a P-256 signing key".into()))
    }

    fn from_key(key: SigningKey, mr_enclave: Measurement) -> Self {
        let mr_signer = Measurement(Sha256::digest(raw_public_key(&key)).into());
        Self {
            key,
            mr_enclave,
            mr_signer,
        }
    }

    /// The simulated MRSIGNER: SHA-256 of the signing key's raw public point.
    pub fn signer(&self) -> Measurement {
        self.mr_signer
    }
}

/// The 64-byte `x || y` form of a P-256 public key, as SGX quotes carry it.
fn raw_public_key(key: &SigningKey) -> Vec<u8> {
    let point = key.verifying_key().to_sec1_point(false);
    // Uncompressed SEC1: 0x04 || x || y.
    point
        .as_bytes()
        .get(1..)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Bytes of a QE report in the signature section.
const QE_REPORT_LEN: usize = 384;

impl EvidenceProvider for SimulatedProvider {
    fn mode(&self) -> TeeMode {
        TeeMode::Simulated
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        let mut attributes = [0u8; 16];
        attributes[0] = 0x05; // INIT | MODE64BIT, not DEBUG.
        let mut quote = Quote {
            header: QuoteHeader {
                version: QUOTE_VERSION,
                att_key_type: ATT_KEY_TYPE_ECDSA_P256,
                tee_type: TEE_TYPE_SGX,
                qe_svn: 0,
                pce_svn: 0,
                qe_vendor_id: SIMULATED_QE_VENDOR_ID,
                user_data: [0; 20],
            },
            body: ReportBody {
                cpu_svn: [0; 16],
                misc_select: 0,
                attributes,
                mr_enclave: self.mr_enclave,
                mr_signer: self.mr_signer,
                isv_prod_id: 0,
                isv_svn: 0,
                report_data: *report_data,
            },
            signature_data: Vec::new(),
        };
        let sig: Signature = self.key.sign(&quote.signed_bytes());
        // The ECDSA v3 signature section: signature, attestation key, then an (empty, here) QE
        // report, its signature, QE authentication data and certification data.
        let mut s = Vec::with_capacity(64 + 64 + QE_REPORT_LEN + 64 + 2 + 6);
        s.extend_from_slice(&sig.to_bytes());
        s.extend_from_slice(&raw_public_key(&self.key));
        s.extend_from_slice(&[0; QE_REPORT_LEN]);
        s.extend_from_slice(&[0; 64]);
        s.extend_from_slice(&0u16.to_le_bytes()); // QE authentication data: none
        s.extend_from_slice(&0u16.to_le_bytes()); // certification data type: none
        s.extend_from_slice(&0u32.to_le_bytes()); // certification data: none
        quote.signature_data = s;
        Ok(quote.to_bytes())
    }

    fn measurement(&self) -> Option<Measurement> {
        Some(self.mr_enclave)
    }
}

/// Gramine's SGX attestation interface (`/dev/attestation`), DCAP flavour.
#[derive(Debug)]
pub struct SgxProvider {
    dir: PathBuf,
    /// Writing the report data and reading the quote must not interleave between sessions.
    lock: Mutex<()>,
}

impl SgxProvider {
    /// Opens the attestation directory and checks that its `attestation_type` is `dcap`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("attestation_type");
        let kind = std::fs::read_to_string(&path).map_err(|source| TeeError::File {
            path: path.clone(),
            source,
        })?;
        let kind = kind.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if kind != "dcap" {
            return Err(TeeError::Evidence {
                provider: "sgx",
                reason: format!(
                    "attestation_type is `{kind}`, expected `dcap` (set sgx.remote_attestation = \"dcap\" in the manifest)"
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            lock: Mutex::new(()),
        })
    }
}

impl EvidenceProvider for SgxProvider {
    fn mode(&self) -> TeeMode {
        TeeMode::Sgx
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        let _guard = self.lock.lock().map_err(|_| TeeError::Evidence {
            provider: "sgx",
            reason: "attestation lock poisoned".into(),
        })?;
        let rd = self.dir.join("user_report_data");
        std::fs::write(&rd, report_data).map_err(|source| TeeError::File { path: rd, source })?;
        let qp = self.dir.join("quote");
        let mut quote = std::fs::read(&qp).map_err(|source| TeeError::File { path: qp, source })?;
        // Check that Gramine's quote carries what we asked for before offering it, and drop any
        // padding after it.
        let (parsed, used) = Quote::parse_prefix(&quote).map_err(|e| TeeError::Evidence {
            provider: "sgx",
            reason: e.to_string(),
        })?;
        quote.truncate(used);
        if parsed.body.report_data != *report_data {
            return Err(TeeError::Evidence {
                provider: "sgx",
                reason: "the quote does not carry the report data just written".into(),
            });
        }
        Ok(quote)
    }

    fn measurement(&self) -> Option<Measurement> {
        None
    }
}

/// Which provider to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProviderChoice {
    /// `sgx` if `/dev/attestation` exists, else `simulated`.
    #[default]
    Auto,
    /// Always the simulated provider.
    Simulated,
    /// Always Gramine's SGX interface (fails outside an enclave).
    Sgx,
}

/// Builds the provider for `choice`.
pub fn detect(choice: ProviderChoice) -> Result<Box<dyn EvidenceProvider>> {
    let dir = Path::new(GRAMINE_ATTESTATION_DIR);
    match choice {
        ProviderChoice::Sgx => Ok(Box::new(SgxProvider::open(dir)?)),
        ProviderChoice::Simulated => Ok(Box::new(SimulatedProvider::new()?)),
        ProviderChoice::Auto if dir.exists() => Ok(Box::new(SgxProvider::open(dir)?)),
        ProviderChoice::Auto => Ok(Box::new(SimulatedProvider::new()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_quotes_have_the_sgx_layout_and_are_labelled() {
        let p = SimulatedProvider::with_measurement(Measurement([1; 32])).unwrap();
        let q = Quote::parse(&p.quote(&[2; 64]).unwrap()).unwrap();
        assert!(q.is_simulated());
        assert_eq!(q.body.mr_enclave, Measurement([1; 32]));
        assert_eq!(q.body.mr_signer, p.signer());
        assert_eq!(q.body.report_data, [2; 64]);
        assert!(!q.body.is_debug());
        assert_eq!(p.mode().label(), "simulated (no hardware isolation)");
    }

    #[test]
    fn a_fake_gramine_directory_is_driven_like_the_real_one() {
        let dir = std::env::temp_dir().join(format!("ppml-tee-att-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("attestation_type"), "none").unwrap();
        assert!(SgxProvider::open(&dir).is_err());
        std::fs::write(dir.join("attestation_type"), "dcap").unwrap();
        let p = SgxProvider::open(&dir).unwrap();
        // A stand-in `quote` file that does not carry the report data is refused.
        let sim = SimulatedProvider::with_measurement(Measurement([3; 32])).unwrap();
        std::fs::write(dir.join("quote"), sim.quote(&[0; 64]).unwrap()).unwrap();
        assert!(p.quote(&[9; 64]).is_err());
        assert_eq!(
            std::fs::read(dir.join("user_report_data")).unwrap(),
            [9; 64]
        );
        // A quote that carries it, padded as a device buffer may be, is offered trimmed.
        let real = sim.quote(&[9; 64]).unwrap();
        let mut padded = real.clone();
        padded.extend_from_slice(&[0; 100]);
        std::fs::write(dir.join("quote"), padded).unwrap();
        assert_eq!(p.quote(&[9; 64]).unwrap(), real);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn self_measurement_is_stable() {
        assert_eq!(self_measurement().unwrap(), self_measurement().unwrap());
    }
}
