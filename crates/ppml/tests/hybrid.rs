//! The hybrid backend as two processes: `ppml hybrid-server` holds the model, `ppml eval
//! --backend hybrid --server ADDR` holds the images; nobody else takes part.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

mod common;

use common::{listen_addr, ppml, stderr, stdout, Server};

#[test]
fn client_and_server_as_separate_processes_agree_with_plain_and_need_no_third_party() {
    // One session, then the server exits: the client's session is the only one it serves.
    let mut server = Server::start(&[
        "hybrid-server",
        "--model",
        "lenet",
        "--listen",
        "127.0.0.1:0",
        "--sessions",
        "1",
    ]);
    let addr = listen_addr(&server.line());
    let out = ppml(&[
        "eval",
        "--model",
        "lenet",
        "--backend",
        "hybrid",
        "--server",
        &addr,
        "--limit",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "eval failed: {}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().expect("json")).expect("json");
    assert_eq!(json["backend"], "hybrid");
    assert_eq!(json["n"], 3);
    assert_eq!(json["agreement"], 1.0, "{json}");
    let offline = &json["offline"];
    assert!(offline["bytes_sent"].as_u64().expect("offline bytes") > 0);
    assert!(
        json["bytes_sent"].as_u64().expect("bytes")
            > offline["bytes_sent"].as_u64().expect("offline")
    );
    assert!(json["notes"][0].as_str().expect("note").contains(&addr));
    // The server saw exactly this client's three images, then stopped by itself: the two
    // processes were the whole computation.
    let ended = server
        .find_line(|l| l.contains("ended after").then(|| l.to_string()))
        .expect("the server's session ended");
    assert!(ended.ends_with("after 3 images"), "{ended}");
    let mut status = None;
    for _ in 0..100 {
        status = server.try_wait();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "server did not exit cleanly"
    );
}

#[test]
fn a_client_without_a_server_fails_with_a_clear_error() {
    let out = ppml(&[
        "eval",
        "--model",
        "mlp",
        "--backend",
        "hybrid",
        "--server",
        "127.0.0.1:1",
        "--limit",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("connecting to 127.0.0.1:1"),
        "{}",
        stderr(&out)
    );
}
