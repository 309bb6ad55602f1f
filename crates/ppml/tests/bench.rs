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

#[test]
fn hybrid_runs_deployed_when_named_and_the_mpc_rows_only_when_their_backends_are() {
    let out = temp_path("bench-hybrid-deployed");
    // A temporary folder of its own: the deployment's folders must be gone afterwards.
    let tmp = temp_path("bench-hybrid-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ppml"))
        .args(["bench", "--models", "mlp", "--backends", "plain,hybrid"])
        .args(["--network", "loopback", "--deployed-models", "mlp"])
        .args(["--latency-images", "3", "--limit", "4", "--out"])
        .arg(&out)
        .env("TMPDIR", &tmp)
        .current_dir(common::REPO)
        .output()
        .expect("run ppml");
    assert!(o.status.success(), "{}", stderr(&o));
    let json = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    // No mpc2/mpc3 in --backends: the one deployed row is hybrid's.
    let deployed = report["deployed"].as_array().expect("deployed");
    assert_eq!(deployed.len(), 1, "{json}");
    let d = &deployed[0];
    assert_eq!(d["backend"], "hybrid", "{d}");
    assert_eq!(d["network"], "loopback", "{d}");
    assert_eq!(d["latency"]["n"], 3, "{d}");
    assert_eq!(d["throughput"]["n"], 4, "{d}");
    assert_eq!(d["throughput"]["batch"], 4, "{d}");
    for run in ["latency", "throughput"] {
        assert_eq!(d[run]["agreement"], 1.0, "{d}");
        // Two parties only: every byte is the client's.
        assert_eq!(d[run]["bytes_sent"], d[run]["client_bytes"], "{d}");
        // Every query found its random OTs made ahead, reported apart.
        assert_eq!(d[run]["on_demand_calls"], 0, "{d}");
        assert!(
            d[run]["offline_bytes"].as_u64().expect("offline") > 0,
            "{d}"
        );
    }
    let notes = d["latency"]["notes"].to_string();
    assert!(
        notes.contains("TLS 1.3 to the server at 127.0.0.1:"),
        "{notes}"
    );
    // The in-process row ran too, online only as well (its OTs made at setup), and the
    // deployed row is compared with it.
    let in_process = &report["results"][1];
    assert_eq!(in_process["backend"], "hybrid", "{json}");
    assert_eq!(in_process["latency"]["on_demand_calls"], 0, "{in_process}");
    let table = stdout(&o);
    assert!(table.contains("| mlp | hybrid | as is |"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("| mlp | hybrid | loopback | ot / ot |"))
        .unwrap_or_else(|| panic!("no deployed hybrid row in\n{table}"));
    let vs_in_process = row.split(" | ").nth(7).expect("vs in-process");
    assert!(vs_in_process.parse::<f64>().is_ok(), "{row}");
    // The server was stopped and its folder (certificates, log) removed.
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&tmp);
}
