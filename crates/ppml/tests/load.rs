//! Load tests of the servers run as their own processes, as a user runs them: `ppml he-server`
//! with many sequential and concurrent clients, and `ppml party --sessions N` with client
//! sessions one after another, all on loopback and bounded in time. The servers' resident
//! memory (`VmRSS` in `/proc/PID/status`; for he-server its peak, `VmHWM`) must stay flat after
//! warm-up, and every client checks its own logits against plain inference on its own images
//! (distinct MNIST digits whose logits differ by far more than the tolerance), so an answer
//! meant for another client fails the test.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on error"
)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use ppml_he::{HeClient, Mode};
use ppml_mpc::{generate_certs, MpcBackend, PartiesConfig};
use ppml_nn::backend::Backend;
use ppml_nn::{engine, Model, Tensor};
use ppml_tls::{Connector, Trust};

use common::{he_certs, he_server_identity, listen_addr, mnist, no_hang, temp_path, Server, REPO};

/// A client waits at most this long on any read or write, queued or not.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What only the load tests ask of a server process: its memory.
impl Server {
    /// Resident memory of the server process in KiB.
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident memory of the server process so far in KiB.
    fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A `kB` field of the server's `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status (Linux)");
        let line = status.lines().find(|l| l.starts_with(field)).expect(field);
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("a size in kB")
    }
}

/// A zoo model with its committed weights, as the server loads it.
fn committed(name: &str) -> Model {
    ppml_nn::io::load(&Path::new(REPO).join(format!("models/{name}.safetensors"))).expect("model")
}

/// MNIST test images `idx`, preprocessed for `m`.
fn images(m: &Model, idx: &[usize]) -> Tensor {
    let mut data = Vec::new();
    for &i in idx {
        m.preprocess_into(mnist().image(i), &mut data);
    }
    Tensor::new(vec![idx.len(), 1, 28, 28], data).expect("tensor")
}

/// Largest absolute difference between two logit vectors.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// The plain logits of each image index, and a check that every two images' logits differ by
/// more than `spread`: a client given another client's answer cannot pass within a tolerance
/// below `spread`.
fn plain_logits(m: &Model, idx: &[usize], spread: f32) -> Vec<Vec<f32>> {
    let want = engine::forward(m, &images(m, idx)).expect("plain");
    let rows: Vec<Vec<f32>> = want
        .data()
        .chunks(want.shape()[1])
        .map(<[f32]>::to_vec)
        .collect();
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[..i] {
            assert!(
                max_diff(a, b) > spread,
                "two test images too alike for the check"
            );
        }
    }
    rows
}

/// Checks that `got` (logits of images `idx`) are the plain logits `want[idx]` within `tol`.
fn assert_own(who: &str, got: &Tensor, idx: &[usize], want: &[Vec<f32>], tol: f32) {
    let classes = got.shape()[1];
    for (row, &i) in got.data().chunks(classes).zip(idx) {
        let err = max_diff(row, &want[i]);
        assert!(
            err < tol,
            "{who}: image {i}: logits off by {err} (tolerance {tol})"
        );
    }
}

// --- he-server ---------------------------------------------------------------------------

/// HE logits match plain ones within this (CKKS noise; the committed cnn's logits are O(10)).
const HE_TOL: f32 = 0.05;

/// A running `he-server` and how to reach it: its address and a client's TLS settings.
struct HeServer {
    process: Server,
    addr: String,
    tls: Connector,
}

/// The idle timeout of the servers under load: longer than any session here takes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

fn he_server(max_sessions: usize) -> HeServer {
    he_server_with(max_sessions, IDLE_TIMEOUT)
}

fn he_server_with(max_sessions: usize, idle_timeout: Duration) -> HeServer {
    let idle = idle_timeout.as_secs().to_string();
    let certs = he_certs(&format!("load-{max_sessions}-{idle}"));
    let n = max_sessions.to_string();
    let mut args = vec![
        "he-server",
        "--model",
        "cnn",
        "--listen",
        "127.0.0.1:0",
        "--max-sessions",
        &n,
        "--idle-timeout",
        &idle,
    ];
    let identity = he_server_identity(&certs);
    args.extend(identity.iter().map(String::as_str));
    let mut process = Server::start(&args);
    let line = process.line();
    assert!(line.contains(&format!("at most {n} sessions")), "{line}");
    let roots = ppml_tls::read_certs(certs.join("ca.pem")).expect("ca.pem");
    HeServer {
        process,
        addr: listen_addr(&line),
        tls: Connector::new(&Trust::Roots(roots), None, "he-server").expect("connector"),
    }
}

/// One HE session in latency mode: connects, classifies images `idx` one call each, checks
/// them, closes. Returns when the session was ready and when it was done.
fn he_session(
    addr: &str,
    tls: &Connector,
    m: &Model,
    idx: &[usize],
    want: &[Vec<f32>],
) -> (Instant, Instant) {
    let mut c =
        HeClient::connect_with(addr, tls, Mode::Latency, Some(CLIENT_TIMEOUT)).expect("connect");
    let ready = Instant::now();
    for &i in idx {
        let (got, _) = c.infer(&images(m, &[i])).expect("infer");
        assert_own("he client", &got, &[i], want, HE_TOL);
    }
    (ready, Instant::now())
}

#[test]
fn he_server_serves_sessions_concurrently_up_to_its_bound_and_queues_the_rest() {
    let m = committed("cnn");
    let want = plain_logits(&m, &[0, 1, 2], 10.0 * HE_TOL);
    let server = he_server(2);
    let (addr, tls) = (server.addr.clone(), server.tls.clone());
    // Two clients set up at once, and both sessions stay open (the clients are kept): a server
    // that served one connection at a time would not answer the second, whose connect then
    // fails after its timeout.
    let held: Vec<HeClient> = (0..2)
        .map(|_| {
            let (addr, tls) = (addr.clone(), tls.clone());
            thread::spawn(move || {
                HeClient::connect_with(&addr, &tls, Mode::Latency, Some(Duration::from_secs(60)))
                    .expect("two sessions at once")
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    // A third client is queued, not refused: it gets its session once one of the two ends.
    let third = {
        let (addr, tls, m, want) = (addr.clone(), tls.clone(), m.clone(), want.clone());
        thread::spawn(move || he_session(&addr, &tls, &m, &[2], &want))
    };
    // A window for a wrong server to serve it: a right one never does while both are held,
    // however slow the machine, so this pause cannot make the check flake.
    thread::sleep(Duration::from_secs(2));
    assert!(
        !third.is_finished(),
        "a third session ran beside two (bound 2)"
    );
    for (k, mut c) in held.into_iter().enumerate() {
        let (got, _) = c.infer(&images(&m, &[k])).expect("infer");
        assert_own("held client", &got, &[k], &want, HE_TOL);
    }
    third.join().expect("the queued client is served");
}

#[test]
fn a_silent_client_loses_its_session_after_the_idle_timeout() {
    let m = committed("cnn");
    let want = plain_logits(&m, &[0], 0.0);
    // 5 s: the talking client below is silent too while it generates its keys, which takes
    // well under a second on an idle machine but longer on a loaded one.
    let idle_timeout = Duration::from_secs(5);
    let server = he_server_with(1, idle_timeout);
    // Takes the only session and says nothing, not even a TLS hello: the server must close it
    // after about 5 s. The read gives up long after that: its timeout is a hang, not a close.
    let mut silent = std::net::TcpStream::connect(&server.addr).expect("connect");
    silent
        .set_read_timeout(Some(no_hang(idle_timeout)))
        .expect("timeout");
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let closed = match std::io::Read::read(&mut silent, &mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(
        closed,
        "held for {:?} (idle timeout {idle_timeout:?})",
        t.elapsed()
    );
    // The place is free again for a client that talks.
    he_session(&server.addr, &server.tls, &m, &[0], &want);
}

#[test]
fn he_server_under_load_answers_every_client_its_own_logits_and_memory_stays_flat() {
    let m = committed("cnn");
    let idx: Vec<usize> = (0..12).collect();
    let want = plain_logits(&m, &idx, 10.0 * HE_TOL);
    let sessions = 3;
    let server = he_server(sessions);
    let (addr, tls) = (server.addr.clone(), server.tls.clone());
    let start = Instant::now();
    // A round: `clients` concurrent sessions (more than the server holds at once, so some are
    // queued), each classifying two images of its own.
    let round = |clients: usize, first: usize| -> Vec<(Instant, Instant)> {
        let threads: Vec<_> = (0..clients)
            .map(|k| {
                let (addr, tls, m, want) = (addr.clone(), tls.clone(), m.clone(), want.clone());
                let mine = [(first + 2 * k) % idx.len(), (first + 2 * k + 1) % idx.len()];
                thread::spawn(move || he_session(&addr, &tls, &m, &mine, &want))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client"))
            .collect()
    };
    // Warm-up: the allocator's arenas of the session threads fill up over the first rounds.
    round(sessions + 1, 0);
    round(sessions + 1, 1);
    // Peaks, not the current size: with sessions coming and going the current size dips
    // (one run measured 622 MB after warm-up against a plateau near 1.1 GB), while a leak
    // raises every later peak.
    let warm = server.process.peak_rss_kib();
    let mut served = 2 * (sessions + 1);
    // Sequential clients, then concurrent rounds.
    for k in 0..4 {
        round(1, 2 * k);
    }
    served += 4;
    let mut most_at_once = 0;
    for r in 0..3 {
        let spans = round(sessions + 1, 3 + r);
        served += spans.len();
        // Sessions overlapping at each session's start, as the clients saw them: a client's
        // span lies within the server's session, so the count never exceeds the server's.
        for &(s, _) in &spans {
            let open = spans.iter().filter(|&&(a, b)| a <= s && s < b).count();
            most_at_once = most_at_once.max(open);
        }
    }
    let after = server.process.peak_rss_kib();
    eprintln!(
        "he-server load: {served} sessions in {:.1?}; peak RSS {warm} KiB after warm-up, \
         {after} KiB at the end; at most {most_at_once} sessions at once",
        start.elapsed()
    );
    // That sessions do run side by side is checked without timing by
    // `he_server_serves_sessions_concurrently_up_to_its_bound_and_queues_the_rest`; how many
    // overlapped here depends on the scheduler, only the bound does not.
    assert!(
        most_at_once <= sessions,
        "{most_at_once} sessions at once (bound {sessions})"
    );
    // A session holds about 300 MB (keys and the encoded model); a leak of even a tenth of
    // its keys per session would pass this bound over 16 sessions. Measured: the RSS wanders
    // within about 60 MB of a plateau after warm-up, over 40 sessions.
    assert!(
        after < warm + 128 * 1024,
        "peak RSS grew from {warm} KiB to {after} KiB over {} sessions",
        served - 2 * (sessions + 1)
    );
}

// --- ppml party: one deployment, many clients ------------------------------------------------

/// How long a party waits for a peer's message (the deployment's `timeout_ms`).
const PARTY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a party keeps trying to reach its peers (the deployment's `connect_timeout_ms`).
const PARTY_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Certificates and a `parties.toml` for mpc3 on free loopback ports, in a fresh directory.
fn mpc3_deployment() -> PathBuf {
    let dir = temp_path("load-mpc");
    let _ = std::fs::remove_dir_all(&dir);
    generate_certs(&dir, 3).expect("certs");
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("addr").port();
    let mut t = format!(
        "protocol = \"mpc3\"\ntimeout_ms = {}\nconnect_timeout_ms = {}\nca = \"ca.pem\"\n",
        PARTY_TIMEOUT.as_millis(),
        PARTY_CONNECT_TIMEOUT.as_millis()
    );
    for i in 0..3 {
        t += &format!(
            "[[party]]\naddress = \"127.0.0.1:{}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n",
            port(i)
        );
    }
    t += "[client]\ncert = \"client.pem\"\nkey = \"client.key\"\n";
    let path = dir.join("parties.toml");
    std::fs::write(&path, t).expect("write config");
    path
}

/// Waits until every party has written its ready file.
fn wait_ready(files: &[PathBuf], parties: &mut [Server]) {
    let t = Instant::now();
    while !files.iter().all(|f| f.exists()) {
        for p in parties.iter_mut() {
            assert!(p.try_wait().is_none(), "a party exited before it was ready");
        }
        assert!(
            t.elapsed() < no_hang(PARTY_CONNECT_TIMEOUT),
            "parties not ready"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn mpc_parties_serve_many_clients_at_once_with_their_own_answers_and_flat_memory() {
    let m = committed("mlp");
    let idx: Vec<usize> = (0..64).collect();
    let want = plain_logits(&m, &idx, 0.5);
    let config = mpc3_deployment();
    let dir = config.parent().expect("dir").to_path_buf();
    let ready: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("ready-{i}"))).collect();
    let mut parties: Vec<Server> = (0..3)
        .map(|id| {
            let (id, cfg) = (id.to_string(), config.to_str().expect("utf8"));
            let ready = ready[id.parse::<usize>().expect("id")]
                .to_str()
                .expect("utf8")
                .to_string();
            let args = [
                "party",
                "--id",
                &id,
                "--config",
                cfg,
                "--model",
                "mlp",
                "--max-sessions",
                "16",
                "--ready-file",
                &ready,
            ];
            let mut p = Server::start(&args);
            let first = p.line();
            assert!(first.contains("Mpc3 on mlp"), "{first}");
            // Then one log line per session event.
            p.drain_in_background();
            p
        })
        .collect();
    wait_ready(&ready, &mut parties);
    let cfg = PartiesConfig::load(&config).expect("config");
    let arch = ppml_nn::zoo::architecture("mlp").expect("zoo");
    // Client `c` runs `sessions` sessions one after another, each with two queries of images
    // of its own (which differ from every other client's).
    let client = |c: usize, sessions: usize| {
        for s in 0..sessions {
            let mut b = MpcBackend::remote(cfg.clone()).expect("client");
            b.setup(&arch).expect("setup");
            for batch in 1..=2 {
                let mine: Vec<usize> = (0..batch)
                    .map(|j| (4 * c + 2 * s + j) % idx.len())
                    .collect();
                let (got, _) = b.infer(&images(&m, &mine)).expect("infer");
                assert_own(&format!("client {c} session {s}"), &got, &mine, &want, 0.05);
            }
        }
    };
    // Warm-up, then 16 clients of 50 sessions, 8 at a time; meanwhile a client process is
    // killed mid-run.
    thread::scope(|s| {
        (0..8)
            .map(|c| s.spawn(move || client(c, 3)))
            .for_each(|h| h.join().expect("client"))
    });
    let warm: Vec<u64> = parties.iter().map(Server::rss_kib).collect();
    let start = Instant::now();
    let cfg_path = config.to_str().expect("utf8").to_string();
    let mut victim = Some(Server::start(&[
        "eval",
        "--model",
        "mlp",
        "--backend",
        "mpc3",
        "--parties",
        &cfg_path,
        "--batch",
        "1",
        "--limit",
        "5000",
    ]));
    for wave in 0..2 {
        thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|c| s.spawn(move || client(8 * wave + c, 50)))
                .collect();
            if wave == 0 {
                thread::sleep(Duration::from_millis(300));
                let mut v = victim.take().expect("victim");
                assert!(
                    v.try_wait().is_none(),
                    "the victim ended before it was killed"
                );
                drop(v); // kills the process mid-run
            }
            hs.into_iter().for_each(|h| h.join().expect("client"));
        });
    }
    let took = start.elapsed();
    let after: Vec<u64> = parties.iter().map(Server::rss_kib).collect();
    // SIGTERM: each party finishes its sessions in flight (none now) and exits 0.
    for p in &mut parties {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &p.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
    for p in &mut parties {
        let status = p.wait(no_hang(PARTY_TIMEOUT));
        assert!(status.success(), "a party failed: {status}");
    }
    assert!(
        ready.iter().all(|f| !f.exists()),
        "ready files are removed on exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("mpc3 parties: 800 sessions by 16 clients in {took:.1?}; RSS after warm-up {warm:?} KiB, after {after:?} KiB");
    for (w, a) in warm.iter().zip(&after) {
        assert!(
            *a < w + 32 * 1024,
            "a party's RSS grew from {w} KiB to {a} KiB"
        );
    }
}
