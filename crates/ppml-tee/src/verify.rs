//! The client's verifier: decides whether a quote proves that the expected code holds the
//! channel key of this session.
//!
//! Checks, in order: the quote parses; simulated quotes are refused unless allowed; the quote's
//! signature (a simulated quote's ECDSA signature by its embedded key, or for a real SGX quote
//! the full DCAP chain with `dcap-qvl` against collateral the user supplies, offline); the TCB
//! status; the DEBUG attribute; MRENCLAVE against the expected value; optionally MRSIGNER; and
//! last the report data, which must equal the binding of this session's enclave key and the
//! client's fresh nonce (see [`report_data`]).

use std::time::{SystemTime, UNIX_EPOCH};

use dcap_qvl::QuoteCollateralV3;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AttestationError;
use crate::evidence::TeeMode;
use crate::quote::{Measurement, Quote, HEADER_LEN, REPORT_BODY_LEN};

/// The 64 bytes of report data binding an enclave's channel public key to a client's nonce:
/// `SHA-256("ppml-tee/v1 report-data" || enclave_public_key || client_nonce)`, zero-padded.
pub fn report_data(enclave_public_key: &[u8; 32], client_nonce: &[u8; 32]) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(b"ppml-tee/v1 report-data");
    h.update(enclave_public_key);
    h.update(client_nonce);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&h.finalize());
    out
}

/// What a DCAP verification needs: Intel's collateral for the platform (TCB info, QE identity,
/// CRLs and chains, as fetched once from a PCCS and stored), the time to check validity at, and
/// which TCB statuses are acceptable.
#[derive(Clone, Debug)]
pub struct DcapPolicy {
    /// The collateral (the JSON form `dcap-qvl` reads).
    pub collateral: QuoteCollateralV3,
    /// Seconds since the Unix epoch to verify at; `None` means now.
    pub now_secs: Option<u64>,
    /// TCB statuses accepted (`UpToDate` by default; e.g. add `SWHardeningNeeded` knowingly).
    pub accepted_tcb_statuses: Vec<String>,
}

impl DcapPolicy {
    /// Reads a collateral JSON file; see [`DcapPolicy::from_collateral_json`].
    pub fn from_collateral_file(path: &std::path::Path) -> crate::Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| crate::TeeError::File {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_collateral_json(&bytes)?)
    }

    /// Also accepts platforms whose TCB status is `status` (e.g. `SWHardeningNeeded`).
    pub fn accept_status(mut self, status: impl Into<String>) -> Self {
        self.accepted_tcb_statuses.push(status.into());
        self
    }

    /// Reads collateral JSON, accepting only `UpToDate` platforms, verifying at the current time.
    pub fn from_collateral_json(json: &[u8]) -> Result<Self, AttestationError> {
        let collateral = serde_json::from_slice(json)
            .map_err(|e| AttestationError::Dcap(format!("collateral JSON: {e}")))?;
        Ok(Self {
            collateral,
            now_secs: None,
            accepted_tcb_statuses: vec!["UpToDate".into()],
        })
    }
}

/// What the client requires of the enclave's evidence.
#[derive(Clone, Debug)]
pub struct VerifyPolicy {
    /// MRENCLAVE (or the simulated equivalent: SHA-256 of the enclave binary) the enclave must
    /// report.
    pub expected_measurement: Measurement,
    /// Accept simulated evidence (no hardware isolation). Off by default.
    pub allow_simulated: bool,
    /// If set, MRSIGNER must equal this.
    pub expected_signer: Option<Measurement>,
    /// Collateral and policy for real SGX quotes; without it, SGX quotes are refused.
    pub dcap: Option<DcapPolicy>,
    /// Accept enclaves with the DEBUG attribute (their memory is readable by the host).
    pub allow_debug: bool,
}

impl VerifyPolicy {
    /// Requires `expected_measurement`; simulated evidence only if `allow_simulated`.
    pub fn new(expected_measurement: Measurement, allow_simulated: bool) -> Self {
        Self {
            expected_measurement,
            allow_simulated,
            expected_signer: None,
            dcap: None,
            allow_debug: false,
        }
    }

    /// Adds DCAP collateral for real SGX quotes.
    pub fn with_dcap(mut self, dcap: DcapPolicy) -> Self {
        self.dcap = Some(dcap);
        self
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Simulated or SGX.
    pub mode: TeeMode,
    /// The enclave measurement (equal to the expected one).
    pub measurement: Measurement,
    /// The signer measurement.
    pub signer: Measurement,
    /// The platform's TCB status (SGX only).
    pub tcb_status: Option<String>,
    /// Intel security advisories that apply to the platform (SGX only).
    pub advisory_ids: Vec<String>,
}

/// Verifies `quote_bytes` under `policy`, requiring its report data to be `expected_report_data`.
pub fn verify_quote(
    quote_bytes: &[u8],
    expected_report_data: &[u8; 64],
    policy: &VerifyPolicy,
) -> Result<Verified, AttestationError> {
    let quote = Quote::parse(quote_bytes)?;
    let (mode, tcb_status, advisory_ids) = if quote.is_simulated() {
        if !policy.allow_simulated {
            return Err(AttestationError::SimulatedRefused);
        }
        // The signature covers the header and body exactly as received (reserved fields too).
        let signed = quote_bytes
            .get(..HEADER_LEN + REPORT_BODY_LEN)
            .ok_or_else(|| AttestationError::Malformed("quote shorter than its body".into()))?;
        verify_simulated_signature(&quote, signed)?;
        (TeeMode::Simulated, None, Vec::new())
    } else {
        let dcap = policy.dcap.as_ref().ok_or(AttestationError::NoCollateral)?;
        let (status, advisories) = verify_dcap(quote_bytes, dcap, policy.allow_debug)?;
        (TeeMode::Sgx, Some(status), advisories)
    };
    if quote.body.is_debug() && !policy.allow_debug {
        return Err(AttestationError::DebugEnclave);
    }
    if !bool::from(
        quote
            .body
            .mr_enclave
            .0
            .ct_eq(&policy.expected_measurement.0),
    ) {
        return Err(AttestationError::MeasurementMismatch {
            expected: policy.expected_measurement.to_hex(),
            got: quote.body.mr_enclave.to_hex(),
        });
    }
    if let Some(signer) = policy.expected_signer {
        if !bool::from(quote.body.mr_signer.0.ct_eq(&signer.0)) {
            return Err(AttestationError::SignerMismatch {
                expected: signer.to_hex(),
                got: quote.body.mr_signer.to_hex(),
            });
        }
    }
    if !bool::from(quote.body.report_data.ct_eq(expected_report_data)) {
        return Err(AttestationError::ReportDataMismatch);
    }
    Ok(Verified {
        mode,
        measurement: quote.body.mr_enclave,
        signer: quote.body.mr_signer,
        tcb_status,
        advisory_ids,
    })
}

/// Checks a simulated quote's ECDSA signature over its header and body with the key it carries.
/// This proves integrity only: nothing certifies that key (pin it with `expected_signer`).
fn verify_simulated_signature(quote: &Quote, signed: &[u8]) -> Result<(), AttestationError> {
    let sd = &quote.signature_data;
    let (sig, key) = match (sd.get(..64), sd.get(64..128)) {
        (Some(s), Some(k)) => (s, k),
        _ => {
            return Err(AttestationError::Malformed(
                "signature section shorter than a signature and a key".into(),
            ))
        }
    };
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(0x04);
    sec1.extend_from_slice(key);
    let vk = VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| AttestationError::Malformed("attestation key is not a P-256 point".into()))?;
    let sig = Signature::from_slice(sig).map_err(|_| AttestationError::BadSignature)?;
    vk.verify(signed, &sig)
        .map_err(|_| AttestationError::BadSignature)?;
    // The simulated MRSIGNER is the hash of this key; a quote claiming another is inconsistent.
    let signer: [u8; 32] = Sha256::digest(key).into();
    if !bool::from(signer.ct_eq(&quote.body.mr_signer.0)) {
        return Err(AttestationError::BadSignature);
    }
    Ok(())
}

/// Verifies a real SGX quote with `dcap-qvl` against the supplied collateral (no network), and
/// applies the TCB status policy. Returns the status and advisory ids.
pub fn verify_dcap(
    quote_bytes: &[u8],
    dcap: &DcapPolicy,
    allow_debug: bool,
) -> Result<(String, Vec<String>), AttestationError> {
    let now = match dcap.now_secs {
        Some(t) => t,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|e| AttestationError::Dcap(format!("system clock: {e}")))?,
    };
    let report = dcap_qvl::verify::QuoteVerifier::new_prod()
        .allow_debug(allow_debug)
        .verify(quote_bytes, &dcap.collateral, now)
        .map_err(|e| AttestationError::Dcap(format!("{e:#}")))?;
    if !report.report.is_sgx() {
        return Err(AttestationError::Dcap("not an SGX enclave quote".into()));
    }
    if !dcap
        .accepted_tcb_statuses
        .iter()
        .any(|s| s == &report.status)
    {
        return Err(AttestationError::TcbStatus {
            status: report.status,
            accepted: dcap.accepted_tcb_statuses.join(", "),
        });
    }
    Ok((report.status, report.advisory_ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{EvidenceProvider, SimulatedProvider};

    fn setup() -> (SimulatedProvider, [u8; 64], Vec<u8>) {
        let p = SimulatedProvider::with_measurement(Measurement([5; 32])).unwrap();
        let rd = report_data(&[1; 32], &[2; 32]);
        let q = p.quote(&rd).unwrap();
        (p, rd, q)
    }

    #[test]
    fn a_good_simulated_quote_verifies_only_when_allowed() {
        let (p, rd, q) = setup();
        let v = verify_quote(&q, &rd, &VerifyPolicy::new(Measurement([5; 32]), true)).unwrap();
        assert_eq!(v.mode, TeeMode::Simulated);
        assert_eq!(v.signer, p.signer());
        assert_eq!(
            verify_quote(&q, &rd, &VerifyPolicy::new(Measurement([5; 32]), false)),
            Err(AttestationError::SimulatedRefused)
        );
    }

    #[test]
    fn wrong_measurement_signer_or_binding_is_refused() {
        let (_, rd, q) = setup();
        assert!(matches!(
            verify_quote(&q, &rd, &VerifyPolicy::new(Measurement([6; 32]), true)),
            Err(AttestationError::MeasurementMismatch { .. })
        ));
        let mut pol = VerifyPolicy::new(Measurement([5; 32]), true);
        pol.expected_signer = Some(Measurement([0; 32]));
        assert!(matches!(
            verify_quote(&q, &rd, &pol),
            Err(AttestationError::SignerMismatch { .. })
        ));
        // Another nonce: a replayed quote from an earlier session is stale.
        let stale = report_data(&[1; 32], &[3; 32]);
        assert_eq!(
            verify_quote(&q, &stale, &VerifyPolicy::new(Measurement([5; 32]), true)),
            Err(AttestationError::ReportDataMismatch)
        );
    }

    #[test]
    fn an_edited_simulated_quote_fails_its_signature() {
        let (_, rd, q) = setup();
        let pol = VerifyPolicy::new(Measurement([5; 32]), true);
        // Rewrite MRENCLAVE (offset 112) to the expected value of another binary.
        let mut forged = q.clone();
        forged[112] ^= 1;
        let mut pol2 = pol.clone();
        pol2.expected_measurement.0[0] ^= 1;
        assert_eq!(
            verify_quote(&forged, &rd, &pol2),
            Err(AttestationError::BadSignature)
        );
        // Every byte of header and body is covered.
        for i in 0..432 {
            let mut f = q.clone();
            f[i] ^= 0x10;
            assert!(verify_quote(&f, &rd, &pol).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_real_quote_without_collateral_is_refused() {
        let raw = include_bytes!("../tests/data/sgx_quote");
        let pol = VerifyPolicy::new(Measurement([0; 32]), true);
        assert_eq!(
            verify_quote(raw, &[0; 64], &pol),
            Err(AttestationError::NoCollateral)
        );
    }
}
