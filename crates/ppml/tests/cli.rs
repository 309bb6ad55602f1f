//! The command line as a user runs it: the JSON contract, clear errors, no panics.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use std::path::Path;
use std::process::Output;

use common::{
    he_certs, he_server_identity, listen_addr, mnist, ppml, stderr, stdout, temp_path, write_pgm,
    Server,
};

/// A PGM file of MNIST test image `i` (named with `tag`), with its label.
fn test_digit(tag: &str, i: usize) -> (String, String) {
    let test = mnist();
    let path = std::env::temp_dir().join(format!("ppml-{tag}-{}-{i}.pgm", std::process::id()));
    (write_pgm(&path, test.image(i)), test.labels[i].to_string())
}

#[test]
fn eval_json_has_the_contract_fields() {
    let o = ppml(&[
        "eval", "--model", "mlp", "--limit", "200", "--batch", "50", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // With --json, stdout is the JSON document alone (the summary goes to stderr).
    let out = stdout(&o);
    let last = out.trim_end();
    let v: serde_json::Value = serde_json::from_str(last).expect("stdout is JSON");
    assert!(stderr(&o).contains("accuracy"));
    for key in [
        "model",
        "backend",
        "n",
        "accuracy",
        "seconds",
        "latency_ms",
        "throughput_img_per_s",
        "setup_seconds",
        "bytes_sent",
        "rounds",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {last}");
    }
    assert_eq!(v["model"], "mlp");
    assert_eq!(v["backend"], "plain");
    assert_eq!(v["n"], 200);
    assert_eq!(v["rounds"], 0);
    assert!(v["accuracy"].as_f64().expect("number") > 0.9);
}

#[test]
fn mpc_comparison_is_selectable() {
    let o = ppml(&[
        "eval",
        "--model",
        "mlp",
        "--backend",
        "mpc2",
        "--comparison",
        "fss",
        "--limit",
        "100",
        "--batch",
        "100",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim_end()).expect("JSON");
    assert!(v["agreement"].as_f64().expect("agreement") >= 0.99);
    assert!(v["notes"].to_string().contains("FSS"), "{}", v["notes"]);
}

#[test]
fn bad_input_gives_a_clear_error_and_no_panic() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "eval",
                "--model",
                "mlp",
                "--backend",
                "mpc2",
                "--comparison",
                "fast",
            ],
            "expected fss or bit-decomposition",
        ),
        (&["eval", "--model", "resnet"], "not a zoo model"),
        (
            &["eval", "--model", "mlp", "--data", "/nonexistent"],
            "/nonexistent",
        ),
        (&["eval", "--model", "mlp", "--limit", "0"], "--limit"),
        (
            &["eval", "--model", "mlp", "--batch", "0", "--limit", "5"],
            "batch",
        ),
    ];
    for (args, needle) in cases {
        let o = ppml(args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn predict_reads_a_pgm_of_the_first_test_digit() {
    let (image, label) = test_digit("predict", 0);
    let path = Path::new(&image);
    let o = ppml(&[
        "predict",
        "--model",
        "lenet",
        "--image",
        path.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), label);
    std::fs::write(path, b"not an image").expect("write");
    let o = ppml(&[
        "predict",
        "--model",
        "lenet",
        "--image",
        path.to_str().expect("utf8"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a PNG"), "{}", stderr(&o));
}

#[test]
fn enclave_and_tee_client_run_as_separate_processes() {
    let mut enclave = Server::start(&["enclave", "--model", "mlp", "--listen", "127.0.0.1:0"]);
    let mut measurement = String::new();
    let addr = enclave
        .find_line(|line| {
            if let Some(m) = line.strip_prefix("measurement: ") {
                measurement = m.to_string();
            }
            line.strip_prefix("listening on ").map(str::to_string)
        })
        .unwrap_or_default();
    assert!(
        measurement.len() == 64 && !addr.is_empty(),
        "{measurement} {addr}"
    );

    let (image, label) = test_digit("tee", 0);
    let image = image.as_str();
    let client_with = |m: &str, allow: bool, extra: &[&str]| {
        let mut args = vec![
            "tee-client",
            "--enclave",
            &addr,
            "--measurement",
            m,
            "--image",
            image,
        ];
        if allow {
            args.push("--allow-simulated");
        }
        args.extend_from_slice(extra);
        ppml(&args)
    };
    let client = |m: &str, allow: bool| client_with(m, allow, &[]);
    let ok = client(&measurement, true);
    // Intel collateral (dcap-qvl's sample) is read and kept for an SGX quote; the simulated
    // enclave's evidence is still accepted only under --allow-simulated.
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ppml-tee/tests/data/sgx_quote_collateral.json"
    );
    let with_collateral = client_with(&measurement, true, &["--collateral", sample]);
    let garbage = temp_path("collateral.json");
    std::fs::write(&garbage, b"{not json").expect("write");
    let garbage = garbage.to_string_lossy().into_owned();
    let bad_collateral = client_with(&measurement, true, &["--collateral", &garbage]);
    let wrong = format!(
        "{}{}",
        if measurement.starts_with('0') {
            "1"
        } else {
            "0"
        },
        &measurement[1..]
    );
    let bad_measurement = client(&wrong, true);
    let no_flag = client(&measurement, false);
    drop(enclave);

    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).trim(), label);
    assert!(stderr(&ok).contains("simulated (no hardware isolation)"));
    assert!(
        with_collateral.status.success(),
        "{}",
        stderr(&with_collateral)
    );
    assert_eq!(stdout(&with_collateral).trim(), label);
    assert!(!bad_collateral.status.success());
    assert!(
        stderr(&bad_collateral).contains("reading the DCAP collateral"),
        "{}",
        stderr(&bad_collateral)
    );
    assert!(stdout(&bad_collateral).is_empty());
    assert!(!bad_measurement.status.success());
    assert!(stderr(&bad_measurement).contains("measurement mismatch"));
    assert!(stdout(&bad_measurement).is_empty());
    assert!(!no_flag.status.success());
    assert!(
        stderr(&no_flag).contains("allow_simulated"),
        "{}",
        stderr(&no_flag)
    );
}

#[test]
fn he_server_and_client_run_as_separate_processes_over_tls() {
    let certs = he_certs("cli");
    let mut args = vec!["he-server", "--model", "cnn", "--listen", "127.0.0.1:0"];
    let identity = he_server_identity(&certs);
    args.extend(identity.iter().map(String::as_str));
    let mut server = Server::start(&args);
    let line = server.line();
    assert!(line.contains("TLS 1.3"), "{line}");
    let addr = listen_addr(&line);
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().expect("utf8");

    let (paths, labels): (Vec<String>, Vec<String>) = (0..2).map(|i| test_digit("he", i)).unzip();
    let one = ppml(&[
        "he-client",
        "--server",
        &addr,
        "--ca",
        ca,
        "--image",
        &paths[0],
    ]);
    let two = ppml(&[
        "he-client",
        "--server",
        &addr,
        "--ca",
        ca,
        "--image",
        &paths[0],
        "--image",
        &paths[1],
    ]);
    // A client that trusts another deployment's CA, or expects another name, is refused before
    // it sends anything.
    let other = he_certs("cli-other");
    let other_ca = other.join("ca.pem");
    let stranger = ppml(&[
        "he-client",
        "--server",
        &addr,
        "--ca",
        other_ca.to_str().expect("utf8"),
        "--image",
        &paths[0],
    ]);
    let renamed = ppml(&[
        "he-client",
        "--server",
        &addr,
        "--ca",
        ca,
        "--server-name",
        "party-0",
        "--image",
        &paths[0],
    ]);
    drop(server);

    assert!(one.status.success(), "{}", stderr(&one));
    assert!(stdout(&one).trim().ends_with(&labels[0]));
    assert!(two.status.success(), "{}", stderr(&two));
    let predicted: Vec<String> = stdout(&two)
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(predicted, labels);
    for (what, out, why) in [
        // Its CA has the same name as the real one: the chain's signature fails to verify.
        ("another CA", &stranger, "invalid peer certificate"),
        ("another name", &renamed, "not valid for name"),
    ] {
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stdout(out).trim().is_empty(), "{what}: {}", stdout(out));
        assert!(stderr(out).contains(why), "{what}: {}", stderr(out));
    }
}

/// The last stdout line of a successful `--json` run, parsed.
fn json_report(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    let out = stdout(o);
    let last = out.lines().last().expect("a last line");
    serde_json::from_str(last).expect("JSON last line")
}

#[test]
fn import_an_onnx_model_then_eval_it_under_plain_and_mpc3() {
    let dir = temp_path("import");
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("mine");
    let out = out.to_str().expect("utf8");
    let onnx = "crates/ppml-onnx/tests/data/cnn_relu.onnx";
    let o = ppml(&["import", onnx, "--out", out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let file = format!("{out}.safetensors");
    assert!(text.contains(&format!("wrote {file}")), "{text}");
    assert!(
        text.contains("conv2d") && text.contains("max_pool2d"),
        "{text}"
    );
    assert!(text.contains("backend mpc3: supported"), "{text}");
    assert!(
        text.contains("backend he: not supported") && text.contains("/relu1/Relu"),
        "{text}"
    );
    // An existing file is kept unless --force.
    let again = ppml(&["import", onnx, "--out", out]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));

    let plain = json_report(&ppml(&[
        "eval", "--model", &file, "--limit", "100", "--batch", "100", "--json",
    ]));
    assert_eq!(plain["model"], "mine");
    assert!(plain["accuracy"].as_f64().expect("number") > 0.5, "{plain}");
    // `--model models/NAME` (no extension) finds the file too.
    let mpc = json_report(&ppml(&[
        "eval",
        "--model",
        out,
        "--backend",
        "mpc3",
        "--limit",
        "20",
        "--batch",
        "20",
        "--json",
    ]));
    assert_eq!(mpc["backend"], "mpc3");
    assert_eq!(mpc["agreement"].as_f64(), Some(1.0), "{mpc}");

    let bad_out = dir.join("bad");
    let bad = ppml(&[
        "import",
        "crates/ppml-onnx/tests/data/unsupported_op.onnx",
        "--out",
        bad_out.to_str().expect("utf8"),
    ]);
    let err = stderr(&bad);
    assert!(!bad.status.success());
    assert!(
        err.contains("/act/Sigmoid") && err.contains("Sigmoid"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.join("bad.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's synopsis of the commands names only flags that `ppml COMMAND --help` lists, so
/// the two cannot drift apart unnoticed.
#[test]
fn the_readme_synopsis_shows_only_flags_the_commands_take() {
    let readme =
        std::fs::read_to_string(Path::new(common::REPO).join("README.md")).expect("README.md");
    let start = readme
        .find("```text\nppml models")
        .expect("the synopsis block");
    let block = &readme[start + 8..];
    let block = &block[..block.find("```").expect("end of the synopsis block")];
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"ppml") {
            commands.push((words[1].to_string(), Vec::new()));
        }
        let (_, flags) = commands.last_mut().expect("a continuation after a command");
        flags.extend(words.iter().filter_map(|w| {
            let w = w.trim_start_matches('[').trim_end_matches([']', ',']);
            w.starts_with("--").then(|| w.to_string())
        }));
    }
    assert!(commands.len() >= 15, "{commands:?}");
    for (command, flags) in commands {
        let help = ppml(&[&command, "--help"]);
        assert!(help.status.success(), "{command}: {}", stderr(&help));
        let text = stdout(&help);
        let listed: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .collect();
        for flag in flags {
            assert!(
                listed.contains(&flag.as_str()),
                "README shows `ppml {command} ... {flag}`, which `ppml {command} --help` does not list"
            );
        }
    }
}
