//! The SGX ECDSA quote, version 3 layout: a 48-byte header, a 384-byte ISV enclave report body
//! and a length-prefixed signature section (all integers little-endian).
//!
//! Real quotes come from the Quoting Enclave and are verified with `dcap-qvl`; this module only
//! encodes and decodes the layout, so that simulated quotes have exactly the same shape and the
//! client parses them with the same code. Decoding is total: any byte string gives a quote or a
//! [`AttestationError::Malformed`], never a panic.

use std::fmt;
use std::str::FromStr;

use ppml_wire::Cursor;

use crate::error::AttestationError;

/// Bytes of the quote header.
pub const HEADER_LEN: usize = 48;
/// Bytes of the enclave report body.
pub const REPORT_BODY_LEN: usize = 384;
/// The largest quote this crate accepts (real DCAP quotes with their certification chain are
/// about 5 KiB).
pub const MAX_QUOTE_LEN: usize = 64 << 10;
/// Quote version 3 (SGX ECDSA).
pub const QUOTE_VERSION: u16 = 3;
/// Attestation key type 2: ECDSA-256 with P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// TEE type 0: SGX.
pub const TEE_TYPE_SGX: u32 = 0;
/// The QE vendor id written into simulated quotes. It is not Intel's, so a DCAP verifier can never
/// take a simulated quote for a real one, and this crate recognises simulated quotes by it.
pub const SIMULATED_QE_VENDOR_ID: [u8; 16] = *b"ppml-SIMULATED!!";
/// The DEBUG bit of the report's attributes (an enclave whose memory the host can read).
pub const ATTRIBUTE_DEBUG: u8 = 0x02;

/// A 32-byte enclave measurement (MRENCLAVE, MRSIGNER, or their simulated equivalents).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Measurement(pub [u8; 32]);

impl Measurement {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Measurement({})", self.to_hex())
    }
}

impl FromStr for Measurement {
    type Err = crate::TeeError;

    /// Parses 64 hex digits (case-insensitive, an optional `0x` prefix).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        let bad = || crate::TeeError::Invalid(format!("a measurement is 64 hex digits, got `{s}`"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The quote header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteHeader {
    /// Quote format version (3).
    pub version: u16,
    /// Attestation key type (2 = ECDSA P-256).
    pub att_key_type: u16,
    /// TEE type (0 = SGX).
    pub tee_type: u32,
    /// Security version of the Quoting Enclave.
    pub qe_svn: u16,
    /// Security version of the Provisioning Certification Enclave.
    pub pce_svn: u16,
    /// Who made the Quoting Enclave.
    pub qe_vendor_id: [u8; 16],
    /// Free data (the first 16 bytes are the QE identity's platform id on real quotes).
    pub user_data: [u8; 20],
}

/// The ISV enclave report body (the reserved fields are zero when encoding, ignored when
/// decoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportBody {
    /// CPU security version.
    pub cpu_svn: [u8; 16],
    /// Extended SSA frame features.
    pub misc_select: u32,
    /// Enclave attributes (flags and XFRM); bit 1 of byte 0 is DEBUG.
    pub attributes: [u8; 16],
    /// The enclave's measurement (MRENCLAVE).
    pub mr_enclave: Measurement,
    /// The hash of the enclave signer's key (MRSIGNER).
    pub mr_signer: Measurement,
    /// Product id.
    pub isv_prod_id: u16,
    /// Security version.
    pub isv_svn: u16,
    /// 64 bytes chosen by the enclave: here, the binding of the channel key and client nonce.
    pub report_data: [u8; 64],
}

impl ReportBody {
    /// True when the DEBUG attribute is set.
    pub fn is_debug(&self) -> bool {
        self.attributes[0] & ATTRIBUTE_DEBUG != 0
    }
}

/// A parsed quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The header.
    pub header: QuoteHeader,
    /// The enclave report body.
    pub body: ReportBody,
    /// The signature section (ECDSA signature, attestation key, QE report, certification data).
    pub signature_data: Vec<u8>,
}

impl Quote {
    /// True when this is a quote made by [`crate::evidence::SimulatedProvider`].
    pub fn is_simulated(&self) -> bool {
        self.header.qe_vendor_id == SIMULATED_QE_VENDOR_ID
    }

    /// The header and report body, the bytes the attestation key signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + REPORT_BODY_LEN);
        encode_header(&self.header, &mut out);
        encode_body(&self.body, &mut out);
        out
    }

    /// The whole quote in wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&(self.signature_data.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.signature_data);
        out
    }

    /// Parses a quote, checking the version, key type, TEE type and lengths; trailing bytes
    /// are refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        let (quote, used) = Self::parse_prefix(bytes)?;
        if used != bytes.len() {
            return Err(malformed(format!(
                "{} trailing bytes after the signature section",
                bytes.len() - used
            )));
        }
        Ok(quote)
    }

    /// Parses the quote at the start of `bytes` and returns it with the bytes it spans (a buffer
    /// read from a device may carry padding after the quote).
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Self, usize), AttestationError> {
        if bytes.len() > MAX_QUOTE_LEN {
            return Err(malformed(format!(
                "{} bytes, more than the {MAX_QUOTE_LEN} accepted",
                bytes.len()
            )));
        }
        let mut r = Cursor::new(bytes);
        let header = QuoteHeader {
            version: r.u16()?,
            att_key_type: r.u16()?,
            tee_type: r.u32()?,
            qe_svn: r.u16()?,
            pce_svn: r.u16()?,
            qe_vendor_id: r.array()?,
            user_data: r.array()?,
        };
        if header.version != QUOTE_VERSION {
            return Err(malformed(format!(
                "version {}, only {QUOTE_VERSION} is supported",
                header.version
            )));
        }
        if header.att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
            return Err(malformed(format!(
                "attestation key type {}, expected ECDSA P-256 ({ATT_KEY_TYPE_ECDSA_P256})",
                header.att_key_type
            )));
        }
        if header.tee_type != TEE_TYPE_SGX {
            return Err(malformed(format!(
                "TEE type {:#x}, expected SGX",
                header.tee_type
            )));
        }
        let cpu_svn = r.array()?;
        let misc_select = r.u32()?;
        r.skip(28)?;
        let attributes = r.array()?;
        let mr_enclave = Measurement(r.array()?);
        r.skip(32)?;
        let mr_signer = Measurement(r.array()?);
        r.skip(96)?;
        let isv_prod_id = r.u16()?;
        let isv_svn = r.u16()?;
        r.skip(60)?;
        let report_data = r.array()?;
        let sig_len = r.u32()? as usize;
        let signature_data = r.take(sig_len)?.to_vec();
        let quote = Self {
            header,
            body: ReportBody {
                cpu_svn,
                misc_select,
                attributes,
                mr_enclave,
                mr_signer,
                isv_prod_id,
                isv_svn,
                report_data,
            },
            signature_data,
        };
        Ok((quote, r.position()))
    }
}

fn malformed(reason: String) -> AttestationError {
    AttestationError::Malformed(reason)
}

fn encode_header(h: &QuoteHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(&h.version.to_le_bytes());
    out.extend_from_slice(&h.att_key_type.to_le_bytes());
    out.extend_from_slice(&h.tee_type.to_le_bytes());
    out.extend_from_slice(&h.qe_svn.to_le_bytes());
    out.extend_from_slice(&h.pce_svn.to_le_bytes());
    out.extend_from_slice(&h.qe_vendor_id);
    out.extend_from_slice(&h.user_data);
}

fn encode_body(b: &ReportBody, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.cpu_svn);
    out.extend_from_slice(&b.misc_select.to_le_bytes());
    out.extend_from_slice(&[0; 28]);
    out.extend_from_slice(&b.attributes);
    out.extend_from_slice(&b.mr_enclave.0);
    out.extend_from_slice(&[0; 32]);
    out.extend_from_slice(&b.mr_signer.0);
    out.extend_from_slice(&[0; 96]);
    out.extend_from_slice(&b.isv_prod_id.to_le_bytes());
    out.extend_from_slice(&b.isv_svn.to_le_bytes());
    out.extend_from_slice(&[0; 60]);
    out.extend_from_slice(&b.report_data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Quote {
        Quote {
            header: QuoteHeader {
                version: 3,
                att_key_type: 2,
                tee_type: 0,
                qe_svn: 1,
                pce_svn: 2,
                qe_vendor_id: SIMULATED_QE_VENDOR_ID,
                user_data: [3; 20],
            },
            body: ReportBody {
                cpu_svn: [4; 16],
                misc_select: 5,
                attributes: [6; 16],
                mr_enclave: Measurement([7; 32]),
                mr_signer: Measurement([8; 32]),
                isv_prod_id: 9,
                isv_svn: 10,
                report_data: [11; 64],
            },
            signature_data: vec![12; 100],
        }
    }

    #[test]
    fn layout_sizes_and_offsets_match_sgx() {
        let q = sample();
        let bytes = q.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + REPORT_BODY_LEN + 4 + 100);
        // MRENCLAVE at 48 + 64, MRSIGNER at 48 + 128, report data at 48 + 320.
        assert_eq!(&bytes[112..144], &[7; 32]);
        assert_eq!(&bytes[176..208], &[8; 32]);
        assert_eq!(&bytes[368..432], &[11; 64]);
        assert_eq!(Quote::parse(&bytes).unwrap(), q);
    }

    #[test]
    fn the_dcap_sample_quote_parses_with_the_same_layout() {
        let raw = include_bytes!("../tests/data/sgx_quote");
        let q = Quote::parse(raw).unwrap();
        assert!(!q.is_simulated());
        assert_eq!(q.to_bytes(), raw.to_vec());
    }

    #[test]
    fn measurements_parse_from_hex() {
        let m = Measurement([0xab; 32]);
        assert_eq!(m.to_hex().parse::<Measurement>().unwrap(), m);
        assert!("abc".parse::<Measurement>().is_err());
        assert!("zz".repeat(32).parse::<Measurement>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_is_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Quote::parse(&bytes);
        }
    }
}
