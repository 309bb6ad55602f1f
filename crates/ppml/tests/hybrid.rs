//! The hybrid backend as two processes: `ppml hybrid-server` holds the model, `ppml eval
//! --backend hybrid --server ADDR --ca FILE` holds the images; they talk over TLS 1.3 and
//! nobody else takes part.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{listen_addr, no_hang, ppml, stderr, stdout, temp_path, Server};

/// `ppml he-certs --out DIR --name hybrid-server`: a CA and the server's identity.
fn certs(tag: &str) -> PathBuf {
    let dir = temp_path(&format!("hybrid-certs-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let out = ppml(&[
        OsStr::new("he-certs"),
        OsStr::new("--out"),
        dir.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("hybrid-server"),
    ]);
    assert!(out.status.success(), "he-certs: {}", stderr(&out));
    dir
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().expect("utf8").to_string()
}

fn server(dir: &Path, model: &str) -> Server {
    Server::start(&[
        "hybrid-server",
        "--model",
        model,
        "--cert",
        &path(dir, "hybrid-server.pem"),
        "--key",
        &path(dir, "hybrid-server.key"),
        "--listen",
        "127.0.0.1:0",
        "--sessions",
        "1",
    ])
}

#[test]
fn client_and_server_as_separate_processes_over_tls_agree_with_plain_and_need_no_third_party() {
    let dir = certs("run");
    // One session, then the server exits: the client's session is the only one it serves.
    let mut server = server(&dir, "lenet");
    let line = server.line();
    assert!(line.contains("over TLS 1.3"), "{line}");
    let addr = listen_addr(&line);
    let out = ppml(&[
        "eval",
        "--model",
        "lenet",
        "--backend",
        "hybrid",
        "--server",
        &addr,
        "--ca",
        &path(&dir, "ca.pem"),
        "--limit",
        "3",
        "--pool-depth",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "eval failed: {}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().expect("json")).expect("json");
    assert_eq!(json["backend"], "hybrid");
    assert_eq!(json["n"], 3);
    assert_eq!(json["agreement"], 1.0, "{json}");
    // Two queries found their random OTs made at setup (reported apart), the third made its
    // own while it ran.
    assert!(
        json["offline_bytes"].as_u64().expect("offline bytes") > 0,
        "{json}"
    );
    assert_eq!(json["on_demand_calls"], 1, "{json}");
    assert_eq!(json["bytes_sent"], json["client_bytes"], "{json}");
    let notes = json["notes"].to_string();
    assert!(
        notes.contains(&format!("TLS 1.3 to the server at {addr}")),
        "{notes}"
    );
    // The server saw exactly this client's three images, then stopped by itself: the two
    // processes were the whole computation.
    let ended = server
        .find_line(|l| l.contains("ended after").then(|| l.to_string()))
        .expect("the server's session ended");
    assert!(ended.ends_with("after 3 images"), "{ended}");
    // Its one session is over: it exits well within the time it would wait for a peer.
    let status = server.wait(no_hang(ppml_hybrid::backend::TIMEOUT));
    assert!(status.success(), "server did not exit cleanly: {status}");
}

/// `ppml eval` of one `mlp` image under hybrid against the server at `addr`, trusting the CA
/// certificate `ca` (none: no `--ca` flag).
fn eval_one_image(addr: &str, ca: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "eval",
        "--model",
        "mlp",
        "--backend",
        "hybrid",
        "--server",
        addr,
        "--limit",
        "1",
    ];
    if let Some(ca) = ca {
        args.extend(["--ca", ca]);
    }
    ppml(&args)
}

#[test]
fn a_client_refuses_a_server_it_does_not_trust_and_fails_clearly_without_one() {
    let dir = certs("trust");
    let other = certs("other");
    let mut server = server(&dir, "mlp");
    let addr = listen_addr(&server.line());
    // The server's certificate does not chain to this CA: the handshake fails, no image leaves.
    let out = eval_one_image(&addr, Some(&path(&other, "ca.pem")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("TLS"), "{}", stderr(&out));
    let failed = server
        .find_line(|l| l.contains("failed").then(|| l.to_string()))
        .expect("the server reports the failed session");
    assert!(failed.contains("session with"), "{failed}");
    // No server at all.
    let out = eval_one_image("127.0.0.1:1", Some(&path(&dir, "ca.pem")));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("connecting to 127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
    // --server without --ca is refused before anything is sent.
    let out = eval_one_image(&addr, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--ca"), "{}", stderr(&out));
}
