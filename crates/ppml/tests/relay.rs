//! `ppml relay` as a process: it forwards through its emulated link and refuses bad arguments.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{ppml, stderr, Server};

#[test]
fn the_relay_process_forwards_after_its_delay() {
    let target = TcpListener::bind("127.0.0.1:0").expect("bind");
    let route = format!("127.0.0.1:0={}", target.local_addr().expect("addr"));
    let mut relay = Server::start(&[
        "relay",
        "--profile",
        "loopback",
        "--delay-ms",
        "30",
        "--route",
        &route,
    ]);
    // "relay: 127.0.0.1:PORT -> TARGET" names the bound port.
    let addr = relay
        .find_line(|l| {
            let (listen, _) = l.strip_prefix("relay: ")?.split_once(" -> ")?;
            Some(listen.to_string())
        })
        .expect("the relay says where it listens");
    let start = Instant::now();
    let mut client = TcpStream::connect(&addr).expect("connect");
    client.write_all(b"hello").expect("write");
    let (mut conn, _) = target.accept().expect("accept");
    let mut got = [0u8; 5];
    conn.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"hello");
    assert!(start.elapsed() >= Duration::from_millis(30));
    conn.write_all(b"back").expect("write back");
    let mut back = [0u8; 4];
    client.read_exact(&mut back).expect("read back");
    assert_eq!(&back, b"back");
    assert!(start.elapsed() >= Duration::from_millis(60));
}

#[test]
fn bad_relay_arguments_are_refused() {
    for (args, why) in [
        (vec!["relay", "--route", "nonsense"], "LISTEN=TARGET"),
        (
            vec![
                "relay",
                "--profile",
                "moon",
                "--route",
                "127.0.0.1:0=127.0.0.1:1",
            ],
            "unknown link profile",
        ),
        (
            vec![
                "relay",
                "--delay-ms=-1",
                "--route",
                "127.0.0.1:0=127.0.0.1:1",
            ],
            "non-negative",
        ),
    ] {
        let o = ppml(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
}
