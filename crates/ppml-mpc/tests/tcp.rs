//! Deployments over real TCP + TLS on 127.0.0.1: parties as separate processes (this test binary
//! re-executed), and fault injection (disconnect, stall, garbage, wrong certificate) with nodes
//! on threads. Every test is bounded in time.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]
#![allow(clippy::panic, reason = "test helpers fail the test on error")]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ppml_mpc::transport::Transport;
use ppml_mpc::{generate_certs, run_party, MpcError, PartiesConfig, RemoteBackend};
use ppml_nn::backend::Backend;
use ppml_nn::{engine, zoo, Model, Tensor};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn fresh_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ppml-mpc-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Removes a test's directory (certificates and keys) when the test ends.
struct Cleanup(PathBuf);

impl Cleanup {
    /// For a path inside a test directory.
    fn of(path: &Path) -> Self {
        Self(path.parent().unwrap_or(path).to_path_buf())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    ls.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Writes certificates and a `parties.toml` in a fresh directory; returns the config path.
fn deployment(protocol: &str, timeout_ms: u64, connect_ms: u64, extra: &str) -> PathBuf {
    let dir = fresh_dir(protocol);
    generate_certs(&dir, 3).expect("certs");
    let ports = free_ports(4);
    let mut t = format!(
        "protocol = \"{protocol}\"\ntimeout_ms = {timeout_ms}\nconnect_timeout_ms = {connect_ms}\nca = \"ca.pem\"\n{extra}\n"
    );
    for (i, port) in ports.iter().take(3).enumerate() {
        t += &format!(
            "[[party]]\naddress = \"127.0.0.1:{port}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n"
        );
    }
    t += &format!(
        "[client]\naddress = \"127.0.0.1:{}\"\ncert = \"client.pem\"\nkey = \"client.key\"\n",
        ports[3]
    );
    let path = dir.join("parties.toml");
    std::fs::write(&path, t).expect("write config");
    path
}

fn model(name: &str) -> Model {
    let mut m = zoo::architecture(name).expect("zoo");
    zoo::init_weights(&mut m, 11);
    m
}

fn images(n: usize) -> Tensor {
    let data = (0..n * 784)
        .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 400.0 - 0.5)
        .collect();
    Tensor::new(vec![n, 1, 28, 28], data).expect("shape")
}

fn check_against_plain(m: &Model, x: &Tensor, got: &Tensor) {
    let want = engine::forward(m, x).expect("plain");
    assert_eq!(got.shape(), want.shape());
    let scale = want.data().iter().fold(1f32, |a, v| a.max(v.abs()));
    let err = got
        .data()
        .iter()
        .zip(want.data())
        .fold(0f32, |a, (g, w)| a.max((g - w).abs()));
    assert!(err < 2e-3 * scale, "max error {err} (scale {scale})");
}

/// When this binary is re-executed as a party: runs it and exits with its status.
#[test]
fn child_party() {
    let (Ok(id), Ok(config), Ok(name)) = (
        std::env::var("PPML_MPC_CHILD"),
        std::env::var("PPML_MPC_CONFIG"),
        std::env::var("PPML_MPC_MODEL"),
    ) else {
        return;
    };
    let id: usize = id.parse().expect("id");
    let config = PartiesConfig::load(config).expect("config");
    // Only party 0 (the model owner) holds the weights.
    let m = if id == 0 {
        model(&name)
    } else {
        zoo::architecture(&name).expect("zoo")
    };
    match run_party(id, &config, &m) {
        Ok(r) => {
            eprintln!("party {id}: {r:?}");
            std::process::exit(if r.queries == 1 { 0 } else { 3 });
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

fn spawn_party(id: usize, config: &Path, name: &str) -> Child {
    Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "child_party",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("PPML_MPC_CHILD", id.to_string())
        .env("PPML_MPC_CONFIG", config)
        .env("PPML_MPC_MODEL", name)
        .spawn()
        .expect("spawn party")
}

fn wait_ok(mut c: Child, limit: Duration) {
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().expect("wait") {
            assert!(s.success(), "party process failed: {s}");
            return;
        }
        if t.elapsed() > limit {
            let _ = c.kill();
            panic!("party process did not stop");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn processes(protocol: &str, name: &str, extra: &str) {
    let config = deployment(protocol, 10_000, 20_000, extra);
    let _cleanup = Cleanup::of(&config);
    let children: Vec<Child> = (0..3).map(|i| spawn_party(i, &config, name)).collect();
    let m = model(name);
    let x = images(2);
    let mut client =
        RemoteBackend::new(PartiesConfig::load(&config).expect("config")).expect("client");
    // The client only uses the architecture.
    let arch = zoo::architecture(name).expect("zoo");
    let got = client
        .setup(&arch)
        .and_then(|_| client.infer(&x))
        .map(|(y, stats)| {
            assert!(stats.bytes_sent > 0 && stats.rounds > 0);
            y
        });
    drop(client);
    for c in children {
        wait_ok(c, Duration::from_secs(20));
    }
    check_against_plain(&m, &x, &got.expect("remote inference"));
}

#[test]
fn mpc3_lenet_as_three_processes_over_tls_matches_plain() {
    processes("mpc3", "lenet", "");
}

#[test]
fn mpc2_mlp_with_fss_comparison_as_three_processes_over_tls_matches_plain() {
    processes("mpc2", "mlp", "comparison = \"fss\"");
}

#[test]
fn mpc2_cnn_as_three_processes_over_tls_matches_plain() {
    processes("mpc2", "cnn", "");
}

/// Runs parties `ids` of `config` on threads; returns their join handles.
fn party_threads(
    config: &PartiesConfig,
    ids: &[usize],
    name: &str,
) -> Vec<thread::JoinHandle<ppml_mpc::Result<ppml_mpc::PartyReport>>> {
    ids.iter()
        .map(|&id| {
            let (c, m) = (config.clone(), model(name));
            thread::spawn(move || run_party(id, &c, &m))
        })
        .collect()
}

/// Parties 0 and 1 and the client are honest; node 2 joins the mesh and then does `bad`.
/// Returns party 1's result and the time everyone took to stop.
fn with_bad_party_2(
    bad: impl FnOnce(ppml_mpc::net::TcpTransport) + Send + 'static,
) -> (ppml_mpc::Result<ppml_mpc::PartyReport>, Duration) {
    let path = deployment("mpc3", 400, 10_000, "max_frame_words = 100000");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    let t = Instant::now();
    let honest = party_threads(&config, &[0, 1], "mlp");
    let c2 = config.clone();
    let bad = thread::spawn(move || bad(c2.join(2).expect("join")));
    let mut client = RemoteBackend::new(config).expect("client");
    let r = client
        .setup(&zoo::architecture("mlp").expect("zoo"))
        .and_then(|_| client.infer(&images(1)));
    assert!(r.is_err(), "no result may come out of a broken session");
    let mut results: Vec<_> = honest
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .collect();
    bad.join().expect("no panic");
    let elapsed = t.elapsed();
    assert!(results[0].is_err(), "{:?}", results[0]);
    (results.remove(1), elapsed)
}

#[test]
fn a_peer_that_disconnects_stops_the_others() {
    let (r, t) = with_bad_party_2(drop);
    assert!(
        matches!(r, Err(MpcError::Disconnected { party: 1, peer: 2 })),
        "{r:?}"
    );
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn a_peer_that_stalls_is_a_timeout() {
    let (r, t) = with_bad_party_2(|net| {
        thread::sleep(Duration::from_millis(1500));
        drop(net);
    });
    assert!(
        matches!(
            r,
            Err(MpcError::Timeout {
                party: 1,
                peer: 2,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(t < Duration::from_secs(5), "{t:?}");
}

#[test]
fn a_peer_that_sends_an_oversized_frame_is_rejected() {
    let (r, _) = with_bad_party_2(|mut net| {
        // Party 2 owes party 1 its 4-word key; it announces a frame above the bound instead.
        let _ = net.send(1, vec![7; 100_001]);
        thread::sleep(Duration::from_millis(800));
    });
    assert!(
        matches!(
            r,
            Err(MpcError::FrameTooLarge {
                party: 1,
                peer: 2,
                words: 100_001,
                max: 100_000
            })
        ),
        "{r:?}"
    );
}

#[test]
fn a_peer_that_sends_a_frame_of_the_wrong_length_is_rejected() {
    let (r, _) = with_bad_party_2(|mut net| {
        let _ = net.send(1, vec![1, 2, 3]);
        thread::sleep(Duration::from_millis(800));
    });
    assert!(
        matches!(
            r,
            Err(MpcError::Malformed {
                party: 1,
                peer: 2,
                expected: 4,
                got: 3
            })
        ),
        "{r:?}"
    );
}

#[test]
fn bytes_that_are_not_tls_are_rejected() {
    let path = deployment("mpc3", 400, 10_000, "");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    let addr = config.parties[0].address;
    let t = Instant::now();
    let party = party_threads(&config, &[0], "mlp").remove(0);
    let mut sock = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < Duration::from_secs(5) => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("party 0 never listened: {e}"),
        }
    };
    let _ = sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = party.join().expect("no panic");
    assert!(matches!(r, Err(MpcError::Tls { party: 0, .. })), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_party_with_a_certificate_from_another_ca_is_refused() {
    let path = deployment("mpc3", 400, 2_000, "");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    // Party 2 presents a certificate with the right name from a CA nobody trusts.
    let rogue = fresh_dir("rogue");
    let _rogue_cleanup = Cleanup(rogue.clone());
    let files = generate_certs(&rogue, 3).expect("certs");
    let mut bad = config.clone();
    bad.parties[2].cert = files.parties[2].0.clone();
    bad.parties[2].key = Some(files.parties[2].1.clone());
    bad.ca = files.ca.clone();
    let t = Instant::now();
    let honest = party_threads(&config, &[0, 1], "mlp");
    let rogue_party = party_threads(&bad, &[2], "mlp").remove(0);
    let results: Vec<_> = honest
        .into_iter()
        .map(|h| h.join().expect("no panic"))
        .collect();
    assert!(rogue_party.join().expect("no panic").is_err());
    // Whoever handshakes with the rogue refuses it and stops; a party that the rogue (or a
    // party that stopped) never reached sees it as absent: a timeout after `connect_timeout`.
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(MpcError::Tls { .. }))),
        "{results:?}"
    );
    for r in &results {
        assert!(
            matches!(r, Err(MpcError::Tls { .. }) | Err(MpcError::Timeout { .. })),
            "{r:?}"
        );
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn config_files_are_validated() {
    let base = Path::new("/tmp");
    let ok = PartiesConfig::quick_start_toml(ppml_mpc::Protocol::Mpc2, "127.0.0.1", 7000);
    let c = PartiesConfig::parse(&ok, base).expect("quick start parses");
    assert_eq!(c.protocol, ppml_mpc::Protocol::Mpc2);
    assert_eq!(c.comparison, ppml_mpc::Comparison::BitDecomposition);
    let fss = ok.replace("\"bit-decomposition\"", "\"fss\"");
    let c2 = PartiesConfig::parse(&fss, base).expect("fss parses");
    assert_eq!(c2.comparison, ppml_mpc::Comparison::Fss);
    assert_eq!(c.parties[2].address.port(), 7002);
    assert_eq!(c.ca, base.join("ca.pem"));
    for (bad, why) in [
        (ok.replace("mpc2", "mpc4"), "protocol"),
        (
            ok.replace("\"bit-decomposition\"", "\"fast\""),
            "comparison",
        ),
        (ok.replace("frac_bits = 16", "frac_bits = 40"), "frac bits"),
        (
            ok.replace("timeout_ms = 30000", "timeout_ms = 0"),
            "timeout",
        ),
        (ok.replace("7001", "7000"), "duplicate address"),
        (ok.replace("ca = ", "cq = "), "unknown field"),
        (ok.replace("127.0.0.1:7003", "nonsense"), "address"),
    ] {
        assert!(PartiesConfig::parse(&bad, base).is_err(), "{why}");
    }
    // A node may listen elsewhere than where the others reach it (behind a relay).
    let relayed = ok.replacen(
        "address = \"127.0.0.1:7000\"",
        "address = \"127.0.0.1:7000\"\nlisten = \"127.0.0.1:7100\"",
        1,
    );
    let r = PartiesConfig::parse(&relayed, base).expect("listen parses");
    assert_eq!(r.parties[0].address.port(), 7000);
    assert_eq!(r.parties[0].listen.map(|a| a.port()), Some(7100));
    assert_eq!(c.parties[0].listen, None);
    let bad_listen = relayed.replace("127.0.0.1:7100", "nonsense");
    assert!(PartiesConfig::parse(&bad_listen, base).is_err(), "listen");
    let two = ok.replacen("[[party]]", "[[nope]]", 1);
    assert!(PartiesConfig::parse(&two, base).is_err());
    // The one-call quick start writes a loadable deployment.
    let dir = fresh_dir("quick");
    let _cleanup = Cleanup(dir.clone());
    let path = ppml_mpc::quick_start(&dir, ppml_mpc::Protocol::Mpc3, "127.0.0.1", 7100)
        .expect("quick start");
    let c = PartiesConfig::load(&path).expect("load");
    assert_eq!(c.client.address.port(), 7103);
    assert!(c
        .parties
        .iter()
        .all(|p| p.cert.exists() && p.key.as_ref().is_some_and(|k| k.exists())));
    assert!(PartiesConfig::load(dir.join("missing.toml")).is_err());
}

#[test]
fn a_killed_party_process_stops_the_others_and_the_client() {
    let config = deployment("mpc3", 2_000, 20_000, "");
    let _cleanup = Cleanup::of(&config);
    let mut children: Vec<Child> = (0..3).map(|i| spawn_party(i, &config, "mlp")).collect();
    let mut client =
        RemoteBackend::new(PartiesConfig::load(&config).expect("config")).expect("client");
    client
        .setup(&zoo::architecture("mlp").expect("zoo"))
        .expect("setup");
    let mut victim = children.remove(2);
    victim.kill().expect("kill");
    let _ = victim.wait();
    let t = Instant::now();
    let r = client.infer(&images(1));
    assert!(r.is_err(), "no result may come out of a broken session");
    for mut c in children {
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                assert_eq!(s.code(), Some(2), "the party reports an error");
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "party did not stop");
            thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
