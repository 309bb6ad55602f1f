//! `ppml bench --quick` as CI's smoke test: the report has its structure and every secure
//! backend agrees with plain inference.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use std::ffi::OsStr;

use common::{ppml, stderr, stdout, temp_path};

#[test]
fn quick_bench_reports_every_pair_and_secure_backends_agree_with_plain() {
    let out = temp_path("bench");
    let o = ppml(&[
        OsStr::new("bench"),
        OsStr::new("--quick"),
        OsStr::new("--network"),
        OsStr::new("loopback,lan"),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("| model | backend |"), "{table}");

    for file in [
        "results.csv",
        "report.md",
        "slowdown.svg",
        "accuracy.svg",
        "throughput.svg",
        "communication.svg",
    ] {
        let body = std::fs::read_to_string(out.join(file)).expect(file);
        assert!(!body.is_empty(), "{file} is empty");
    }
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert!(report["machine"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(report["commit"].as_str().is_some());
    let results = report["results"].as_array().expect("results");
    // mlp, cnn and lenet under plain, he, mpc2, mpc3 and tee.
    assert_eq!(results.len(), 15, "{json}");
    let mut ran = 0;
    for r in results {
        let (model, backend) = (&r["model"], &r["backend"]);
        if let Some(why) = r["skipped"].as_str() {
            // Only HE may decline, and only for a model it cannot evaluate.
            assert_eq!(backend, "he", "{model} under {backend} skipped: {why}");
            continue;
        }
        ran += 1;
        for run in ["latency", "throughput"] {
            let m = &r[run];
            // Every backend has a latency mode for every zoo model (HE lays lenet-sq out over
            // several ciphertexts).
            assert!(
                !m.is_null(),
                "{model} under {backend}: no {run}: {}",
                r["latency_skipped"]
            );
            assert!(m["n"].as_u64().expect("n") > 0, "{model} {backend} {run}");
            assert!(m["latency_ms"].as_f64().expect("latency") > 0.0);
            if backend != "plain" {
                let agreement = m["agreement"].as_f64().expect("agreement");
                assert!(
                    agreement >= 0.99,
                    "{model} under {backend} ({run}): agreement {agreement}"
                );
                assert!(r[format!("{run}_slowdown")].as_f64().expect("slowdown") > 0.0);
            }
        }
    }
    // Every pair ran (HE runs lenet-sq for lenet).
    assert_eq!(ran, 15, "only {ran} pairs ran");
    // lenet deployed under mpc2 and mpc3, parties as processes, over both link profiles.
    let deployed = report["deployed"].as_array().expect("deployed");
    assert_eq!(deployed.len(), 4, "{json}");
    for d in deployed {
        for run in ["latency", "throughput"] {
            let agreement = d[run]["agreement"].as_f64().expect("agreement");
            assert!(agreement >= 0.99, "{d}");
            assert!(
                d[run]["bytes_sent"].as_u64().expect("bytes")
                    > d[run]["client_bytes"].as_u64().expect("client")
            );
        }
        // One-image queries use material made ahead.
        assert!(
            d["latency"]["offline_bytes"].as_u64().expect("offline") > 0,
            "{d}"
        );
    }
    assert!(table.contains("Deployed:"), "{table}");
    let _ = std::fs::remove_dir_all(&out);
}
