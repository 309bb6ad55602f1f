//! The real SGX quote path, offline: dcap-qvl's sample quote and collateral (see data/README.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use ppml_tee::quote::Quote;
use ppml_tee::verify::{verify_dcap, verify_quote, DcapPolicy, VerifyPolicy};
use ppml_tee::{AttestationError, Measurement, TeeMode};

const QUOTE: &[u8] = include_bytes!("data/sgx_quote");
const COLLATERAL: &[u8] = include_bytes!("data/sgx_quote_collateral.json");
/// The status Intel's collateral gives the sample platform.
const SAMPLE_STATUS: &str = "ConfigurationAndSWHardeningNeeded";

/// Seconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch(s: &str) -> u64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) as u64
}

/// The validity window the collateral's TCB info and QE identity declare.
fn window() -> (u64, u64) {
    let c: serde_json::Value = serde_json::from_slice(COLLATERAL).unwrap();
    let dates = |k: &str| {
        let v: serde_json::Value = serde_json::from_str(c[k].as_str().unwrap()).unwrap();
        (
            epoch(v["issueDate"].as_str().unwrap()),
            epoch(v["nextUpdate"].as_str().unwrap()),
        )
    };
    let (a, b) = dates("tcb_info");
    let (c2, d) = dates("qe_identity");
    (a.max(c2), b.min(d))
}

fn policy_at(now: u64) -> DcapPolicy {
    let mut p = DcapPolicy::from_collateral_json(COLLATERAL).unwrap();
    p.now_secs = Some(now);
    p.accepted_tcb_statuses.push(SAMPLE_STATUS.into());
    p
}

fn inside() -> u64 {
    let (from, to) = window();
    assert!(from < to);
    from + (to - from) / 2
}

#[test]
fn epoch_is_right() {
    assert_eq!(epoch("1970-01-01T00:00:00Z"), 0);
    assert_eq!(epoch("2025-07-01T00:00:00Z"), 1_751_328_000);
}

#[test]
fn the_sample_quote_verifies_inside_the_collateral_validity() {
    let (status, advisories) = verify_dcap(QUOTE, &policy_at(inside()), false).unwrap();
    assert_eq!(status, SAMPLE_STATUS);
    assert!(!advisories.is_empty());
}

#[test]
fn the_full_client_check_accepts_the_sample_with_its_own_measurement() {
    let q = Quote::parse(QUOTE).unwrap();
    let mut pol = VerifyPolicy::new(q.body.mr_enclave, false).with_dcap(policy_at(inside()));
    pol.allow_debug = q.body.is_debug();
    let v = verify_quote(QUOTE, &q.body.report_data, &pol).unwrap();
    assert_eq!(v.mode, TeeMode::Sgx);
    assert_eq!(v.tcb_status.as_deref(), Some(SAMPLE_STATUS));
    // Another expected MRENCLAVE is refused even though the chain verifies.
    pol.expected_measurement = Measurement([0; 32]);
    assert!(matches!(
        verify_quote(QUOTE, &q.body.report_data, &pol),
        Err(AttestationError::MeasurementMismatch { .. })
    ));
    // As is other report data (the binding to this session's key and nonce).
    pol.expected_measurement = q.body.mr_enclave;
    assert_eq!(
        verify_quote(QUOTE, &[0; 64], &pol),
        Err(AttestationError::ReportDataMismatch)
    );
}

#[test]
fn a_flipped_byte_fails() {
    let now = inside();
    // In the report body (MRENCLAVE), in the report data, and in the signature section.
    for pos in [112, 400, 48 + 384 + 4 + 10] {
        let mut q = QUOTE.to_vec();
        q[pos] ^= 0x01;
        let err = verify_dcap(&q, &policy_at(now), false).unwrap_err();
        assert!(
            matches!(err, AttestationError::Dcap(_)),
            "byte {pos}: {err}"
        );
    }
}

#[test]
fn an_expired_time_fails() {
    let (_, to) = window();
    let err = verify_dcap(QUOTE, &policy_at(to + 86_400), false).unwrap_err();
    assert!(matches!(err, AttestationError::Dcap(_)), "{err}");
}

#[test]
fn the_default_policy_refuses_a_platform_that_is_not_up_to_date() {
    let mut p = DcapPolicy::from_collateral_json(COLLATERAL).unwrap();
    p.now_secs = Some(inside());
    let err = verify_dcap(QUOTE, &p, false).unwrap_err();
    assert!(
        matches!(&err, AttestationError::TcbStatus { status, .. } if status == SAMPLE_STATUS),
        "{err}"
    );
}
