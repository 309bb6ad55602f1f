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

use common::{he_certs, no_hang, ppml, stderr, stdout, temp_path, write_pgm};

/// The clients' `--timeout`: how long they wait on any read or write.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The clients' `--timeout` argument.
fn timeout_arg() -> String {
    CLIENT_TIMEOUT.as_secs().to_string()
}

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
                // Keep the connection open past the client's timeout: the client must fail on
                // the content.
                thread::sleep(no_hang(CLIENT_TIMEOUT));
            }
            Fault::Stall => hold(s, no_hang(CLIENT_TIMEOUT)),
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

/// A PGM of a blank 28x28 image, in a file of its own for the test `tag`.
fn blank_pgm(tag: &str) -> String {
    write_pgm(
        &temp_path(&format!("faults-{tag}")).with_extension("pgm"),
        &[0u8; 784],
    )
}

/// Runs `ppml args` to completion; its output and how long it took.
fn run(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = ppml(args);
    (out, start.elapsed())
}

/// Checks that a client run failed with an error on stderr, nothing on stdout and within a
/// deadline that only a hang could miss.
fn assert_clean_failure(what: &str, out: &Output, took: Duration) {
    let stdout = stdout(out);
    let stderr = stderr(out);
    assert!(!out.status.success(), "{what}: exited successfully");
    assert!(stdout.trim().is_empty(), "{what}: printed {stdout:?}");
    assert!(
        stderr.to_lowercase().contains("error"),
        "{what}: stderr {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        took < no_hang(CLIENT_TIMEOUT),
        "{what}: took {took:?} (timeout {CLIENT_TIMEOUT:?})"
    );
}

/// Runs `client` (its arguments made from the fake server's address and an image) against a
/// server with `fault`.
fn against(fault: Fault, client: &str, args: impl Fn(&str, &str) -> Vec<String>) {
    let image = blank_pgm(&format!("{client}-{fault:?}"));
    let (addr, server) = fake_server(fault);
    let args = args(&addr, &image);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, took) = run(&argv);
    assert_clean_failure(&format!("{client} vs {fault:?}"), &out, took);
    drop(server);
}

fn tee_client_against(fault: Fault) {
    against(fault, "tee-client", |addr, image| {
        let m = "ab".repeat(32);
        let args = ["tee-client", "--enclave", addr, "--measurement", &m];
        let rest = [
            "--allow-simulated",
            "--image",
            image,
            "--timeout",
            &timeout_arg(),
        ];
        args.iter().chain(&rest).map(|s| s.to_string()).collect()
    });
}

fn he_client_against(fault: Fault) {
    let ca = he_certs(&format!("faults-{fault:?}")).join("ca.pem");
    let ca = ca.to_str().expect("utf8");
    against(fault, "he-client", |addr, image| {
        [
            "he-client",
            "--server",
            addr,
            "--ca",
            ca,
            "--image",
            image,
            "--timeout",
            &timeout_arg(),
        ]
        .map(String::from)
        .to_vec()
    });
}

#[test]
fn tee_client_fails_cleanly_when_the_enclave_closes() {
    tee_client_against(Fault::Close);
}

#[test]
fn tee_client_fails_cleanly_when_the_enclave_sends_garbage() {
    tee_client_against(Fault::Garbage);
}

#[test]
fn tee_client_fails_cleanly_when_the_enclave_stalls() {
    tee_client_against(Fault::Stall);
}

#[test]
fn he_client_fails_cleanly_when_the_server_closes() {
    he_client_against(Fault::Close);
}

#[test]
fn he_client_fails_cleanly_when_the_server_sends_garbage() {
    he_client_against(Fault::Garbage);
}

#[test]
fn he_client_fails_cleanly_when_the_server_stalls() {
    he_client_against(Fault::Stall);
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
        &blank_pgm("no-server"),
        "--timeout",
        &timeout_arg(),
    ]);
    assert_clean_failure("tee-client, no server", &out, took);
}
