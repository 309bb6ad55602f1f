//! Network faults seen by the command-line clients: a server that closes the connection, sends
//! garbage or stalls makes the client exit non-zero within its timeout, with an error on stderr
//! and nothing on stdout that looks like a result.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use common::{he_certs, ppml, stderr, stdout, temp_path, write_pgm};

/// How a fake server treats its one connection.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Reads a little, then closes.
    Close,
    /// Reads a little, then answers with bytes of no protocol.
    Garbage,
    /// Reads a little, then neither answers nor closes.
    Stall,
}

/// A one-connection server on a free loopback port that misbehaves as `fault` says.
fn fake_server(fault: Fault) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        match fault {
            Fault::Close => drop(s),
            Fault::Garbage => {
                let junk: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 251) as u8).collect();
                let _ = s.write_all(&junk);
                let _ = s.flush();
                // Keep the connection open: the client must fail on the content.
                thread::sleep(Duration::from_secs(5));
            }
            Fault::Stall => hold(s, Duration::from_secs(30)),
        }
    });
    (addr, handle)
}

/// Holds the connection open without a word until the peer closes it or `limit` passes.
fn hold(mut s: TcpStream, limit: Duration) {
    let _ = s.set_read_timeout(Some(limit));
    let mut sink = [0u8; 4096];
    while let Ok(k) = s.read(&mut sink) {
        if k == 0 {
            break;
        }
    }
}

/// A PGM of a blank 28x28 image.
fn blank_pgm() -> String {
    write_pgm(&temp_path("faults").with_extension("pgm"), &[0u8; 784])
}

/// Runs `ppml args` to completion; its output and how long it took.
fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = ppml(args);
    (out, start.elapsed())
}

fn assert_clean_failure(what: &str, out: &Output, took: Duration, limit: Duration) {
    let stdout = stdout(out);
    let stderr = stderr(out);
    assert!(!out.status.success(), "{what}: exited successfully");
    assert!(stdout.trim().is_empty(), "{what}: printed {stdout:?}");
    assert!(
        stderr.to_lowercase().contains("error"),
        "{what}: stderr {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(took < limit, "{what}: took {took:?}");
}

/// Runs `client` (its arguments made from the fake server's address and an image) against a
/// server with every fault.
fn against_every_fault(client: &str, args: impl Fn(&str, &str) -> Vec<String>) {
    let image = blank_pgm();
    for fault in [Fault::Close, Fault::Garbage, Fault::Stall] {
        let (addr, server) = fake_server(fault);
        let args = args(&addr, &image);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, took) = run(&argv);
        let what = format!("{client} vs {fault:?}");
        assert_clean_failure(&what, &out, took, Duration::from_secs(20));
        drop(server);
    }
}

#[test]
fn tee_client_fails_cleanly_on_a_faulty_enclave() {
    against_every_fault("tee-client", |addr, image| {
        let m = "ab".repeat(32);
        let args = ["tee-client", "--enclave", addr, "--measurement", &m];
        let rest = ["--allow-simulated", "--image", image, "--timeout", "2"];
        args.iter().chain(&rest).map(|s| s.to_string()).collect()
    });
}

#[test]
fn he_client_fails_cleanly_on_a_faulty_server() {
    let ca = he_certs("faults").join("ca.pem");
    let ca = ca.to_str().expect("utf8");
    against_every_fault("he-client", |addr, image| {
        [
            "he-client",
            "--server",
            addr,
            "--ca",
            ca,
            "--image",
            image,
            "--timeout",
            "2",
        ]
        .map(String::from)
        .to_vec()
    });
}

#[test]
fn tee_client_fails_cleanly_when_nothing_listens() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (out, took) = run(&[
        "tee-client",
        "--enclave",
        &format!("127.0.0.1:{port}"),
        "--measurement",
        &"ab".repeat(32),
        "--image",
        &blank_pgm(),
    ]);
    assert_clean_failure("tee-client, no server", &out, took, Duration::from_secs(20));
}
