//! Deployments over real TCP + TLS on 127.0.0.1: parties as separate processes (this test binary
//! re-executed) or threads, serving several clients; faults (a killed party, a client that
//! sends garbage or goes silent, bytes that are not TLS, a certificate from another CA). Every
//! test is bounded in time by the deployment's timeouts.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]
#![allow(clippy::panic, reason = "test helpers fail the test on error")]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ppml_mpc::{
    generate_certs, run_party, MpcBackend, MpcError, PartiesConfig, PartyOptions, PartyReport,
};
use ppml_nn::backend::Backend;
use ppml_nn::{engine, zoo, Model, Tensor};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A step bounded by a configured timeout is called hung after this many times it: a
/// deadline generous enough that only a hang misses it, never a slow machine.
const NO_HANG_FACTOR: u32 = 5;

/// The deadline of a step bounded by `timeout`.
fn no_hang(timeout: Duration) -> Duration {
    timeout * NO_HANG_FACTOR
}

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

/// How long the parties of a deployment wait: for a peer's message, and to reach a peer.
#[derive(Clone, Copy)]
struct Timeouts {
    message: Duration,
    connect: Duration,
}

impl Timeouts {
    const fn ms(message: u64, connect: u64) -> Self {
        Self {
            message: Duration::from_millis(message),
            connect: Duration::from_millis(connect),
        }
    }
}

/// Writes certificates and a `parties.toml` in a fresh directory; returns the config path.
fn deployment(protocol: &str, timeouts: Timeouts, extra: &str) -> PathBuf {
    let dir = fresh_dir(protocol);
    generate_certs(&dir, 3).expect("certs");
    let ports = free_ports(3);
    let (timeout_ms, connect_ms) = (timeouts.message.as_millis(), timeouts.connect.as_millis());
    let mut t = format!(
        "protocol = \"{protocol}\"\ntimeout_ms = {timeout_ms}\nconnect_timeout_ms = {connect_ms}\nca = \"ca.pem\"\n{extra}\n"
    );
    for (i, port) in ports.iter().take(3).enumerate() {
        t += &format!(
            "[[party]]\naddress = \"127.0.0.1:{port}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n"
        );
    }
    t += "[client]\ncert = \"client.pem\"\nkey = \"client.key\"\n";
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

fn options(sessions: usize) -> PartyOptions {
    PartyOptions {
        sessions: Some(sessions),
        ..PartyOptions::default()
    }
}

/// When this binary is re-executed as a party: runs it and exits with its status.
#[test]
fn child_party() {
    let (Ok(id), Ok(config), Ok(name), Ok(sessions)) = (
        std::env::var("PPML_MPC_CHILD"),
        std::env::var("PPML_MPC_CONFIG"),
        std::env::var("PPML_MPC_MODEL"),
        std::env::var("PPML_MPC_SESSIONS"),
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
    match run_party(
        id,
        &config,
        &m,
        &options(sessions.parse().expect("sessions")),
    ) {
        Ok(r) => {
            eprintln!("party {id}: {r:?}");
            std::process::exit(if r.failed_sessions == 0 { 0 } else { 3 });
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

fn spawn_party(id: usize, config: &Path, name: &str, sessions: usize) -> Child {
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
        .env("PPML_MPC_SESSIONS", sessions.to_string())
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

/// A client of the deployment `config`, set up for `name`'s architecture (clients never hold
/// the weights).
fn client(config: &PartiesConfig, name: &str) -> ppml_mpc::Result<MpcBackend> {
    let mut c = MpcBackend::remote(config.clone())?;
    c.setup(&zoo::architecture(name).expect("zoo"))
        .map_err(|e| MpcError::Remote {
            party: 9,
            message: e.to_string(),
        })?;
    Ok(c)
}

fn processes(protocol: &str, name: &str, extra: &str) {
    let timeouts = Timeouts::ms(10_000, 20_000);
    let config = deployment(protocol, timeouts, extra);
    let _cleanup = Cleanup::of(&config);
    // Two clients, one after the other, against the same running parties.
    let children: Vec<Child> = (0..3).map(|i| spawn_party(i, &config, name, 2)).collect();
    let m = model(name);
    let cfg = PartiesConfig::load(&config).expect("config");
    for n in [2, 1] {
        let x = images(n);
        let mut c = client(&cfg, name).expect("client");
        let (got, stats) = c.infer(&x).expect("remote inference");
        // Every party's traffic counts, not only the client's shares.
        let client_only = 8 * 784 * n as u64 * 3;
        assert!(
            stats.bytes_sent > client_only && stats.rounds > 2,
            "{stats:?}"
        );
        check_against_plain(&m, &x, &got);
    }
    for c in children {
        wait_ok(c, no_hang(timeouts.message));
    }
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
    opts: &PartyOptions,
) -> Vec<thread::JoinHandle<ppml_mpc::Result<PartyReport>>> {
    ids.iter()
        .map(|&id| {
            let (c, m, o) = (config.clone(), model(name), opts.clone());
            thread::spawn(move || run_party(id, &c, &m, &o))
        })
        .collect()
}

/// Raw frames to party `j` over TLS with the client's identity (to play a broken client).
fn tls_client_stream(config: &PartiesConfig, j: usize) -> impl Write {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let ca = CertificateDer::from_pem_file(&config.ca).expect("ca");
    let chain = vec![CertificateDer::from_pem_file(&config.client.cert).expect("cert")];
    let key = PrivateKeyDer::from_pem_file(config.client.key.as_ref().expect("key")).expect("key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("root");
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    let conn = rustls::ClientConnection::new(
        std::sync::Arc::new(cfg),
        ServerName::try_from(format!("party-{j}")).expect("name"),
    )
    .expect("conn");
    let sock = TcpStream::connect(config.parties[j].address).expect("connect");
    rustls::StreamOwned::new(conn, sock)
}

#[test]
fn a_client_that_sends_garbage_or_goes_silent_loses_only_its_own_session() {
    let path = deployment("mpc3", Timeouts::ms(1_000, 10_000), "");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    let opts = PartyOptions {
        idle_timeout: Duration::from_millis(1_500),
        ..PartyOptions::default()
    };
    let parties = party_threads(&config, &[0, 1, 2], "mlp", &opts);
    // A good client opens its session first and keeps it.
    let mut good = client(&config, "mlp").expect("client");
    // Garbage: a frame that is no hello, sent to party 0 only.
    let mut g = tls_client_stream(&config, 0);
    let mut garbage = 3u64.to_le_bytes().to_vec();
    garbage.extend(1..=24u8);
    g.write_all(&garbage).expect("write");
    let _ = g.flush();
    // Silence: a client that says hello and never queries (its session ends after the idle
    // timeout), then one that vanishes mid-session.
    let silent = client(&config, "mlp").expect("client");
    let x = images(3);
    let m = model("mlp");
    let (got, _) = good.infer(&x).expect("good client's query");
    check_against_plain(&m, &x, &got);
    // The silent session times out meanwhile; the good client, never idle that long, goes on.
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(400));
        let (got, _) = good
            .infer(&x)
            .expect("good client's query after the others failed");
        check_against_plain(&m, &x, &got);
    }
    drop((silent, g, good));
    thread::sleep(Duration::from_millis(200));
    opts.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (id, h) in parties.into_iter().enumerate() {
        let r = h.join().expect("no panic").expect("parties go on");
        // Party 0 also lost the garbage session; the silent one failed everywhere.
        let failed = if id == 0 { 2 } else { 1 };
        assert_eq!(
            (r.sessions, r.failed_sessions, r.queries),
            (1, failed, 6),
            "{r:?}"
        );
    }
}

#[test]
fn bytes_that_are_not_tls_cost_only_that_connection() {
    let timeouts = Timeouts::ms(1_000, 10_000);
    let path = deployment("mpc3", timeouts, "");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    let parties = party_threads(&config, &[0, 1, 2], "mlp", &options(1));
    let t = Instant::now();
    let mut sock = loop {
        match TcpStream::connect(config.parties[0].address) {
            Ok(s) => break s,
            Err(_) if t.elapsed() < no_hang(timeouts.connect) => {
                thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("party 0 never listened: {e}"),
        }
    };
    let _ = sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut c = client(&config, "mlp").expect("a real client is still served");
    let x = images(1);
    let (got, _) = c.infer(&x).expect("query");
    check_against_plain(&model("mlp"), &x, &got);
    drop(c);
    for h in parties {
        h.join().expect("no panic").expect("party");
    }
}

#[test]
fn a_party_with_a_certificate_from_another_ca_is_refused() {
    let timeouts = Timeouts::ms(400, 2_000);
    let path = deployment("mpc3", timeouts, "");
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
    let honest = party_threads(&config, &[0, 1], "mlp", &options(1));
    let rogue_party = party_threads(&bad, &[2], "mlp", &options(1)).remove(0);
    for h in honest {
        let r = h.join().expect("no panic");
        // The rogue never becomes a link: the mesh cannot form (its own connections are
        // refused, and it is never accepted as party 2).
        assert!(
            matches!(r, Err(MpcError::Tls { .. }) | Err(MpcError::Timeout { .. })),
            "{r:?}"
        );
    }
    assert!(rogue_party.join().expect("no panic").is_err());
    // Each side gives up after trying to connect and then waiting for a handshake.
    let limit = no_hang(timeouts.connect + timeouts.message);
    assert!(t.elapsed() < limit, "{:?} (limit {limit:?})", t.elapsed());
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
        (ok.replace("127.0.0.1:7002", "nonsense"), "address"),
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
    // The one-call quick start writes a loadable deployment, and clients can be added to it.
    let dir = fresh_dir("quick");
    let _cleanup = Cleanup(dir.clone());
    let path = ppml_mpc::quick_start(&dir, ppml_mpc::Protocol::Mpc3, "127.0.0.1", 7100)
        .expect("quick start");
    let c = PartiesConfig::load(&path).expect("load");
    assert!(c
        .parties
        .iter()
        .all(|p| p.cert.exists() && p.key.as_ref().is_some_and(|k| k.exists())));
    let added = ppml_mpc::add_client(&path, "lab-7").expect("add client");
    let c = PartiesConfig::load(&added).expect("load");
    assert!(c.client.cert.ends_with("lab-7.pem") && c.client.cert.exists());
    assert!(ppml_mpc::add_client(&path, "party-1").is_err());
    assert!(ppml_mpc::add_client(&path, "../x").is_err());
    assert!(PartiesConfig::load(dir.join("missing.toml")).is_err());
}

#[test]
fn a_client_added_later_is_served_by_running_parties() {
    let path = deployment("mpc2", Timeouts::ms(2_000, 10_000), "");
    let _cleanup = Cleanup::of(&path);
    let config = PartiesConfig::load(&path).expect("config");
    let parties = party_threads(&config, &[0, 1, 2], "mlp", &options(1));
    thread::sleep(Duration::from_millis(200));
    let added = ppml_mpc::add_client(&path, "late").expect("add client");
    let late = PartiesConfig::load(&added).expect("config");
    let mut c = client(&late, "mlp").expect("client");
    let x = images(2);
    let (got, _) = c.infer(&x).expect("query");
    check_against_plain(&model("mlp"), &x, &got);
    drop(c);
    for h in parties {
        h.join().expect("no panic").expect("party");
    }
}

#[test]
fn a_killed_party_process_stops_the_others_and_the_client() {
    let timeouts = Timeouts::ms(2_000, 20_000);
    let config = deployment("mpc3", timeouts, "");
    let _cleanup = Cleanup::of(&config);
    let mut children: Vec<Child> = (0..3).map(|i| spawn_party(i, &config, "mlp", 1)).collect();
    let mut c = client(&PartiesConfig::load(&config).expect("config"), "mlp").expect("setup");
    let mut victim = children.remove(2);
    victim.kill().expect("kill");
    let _ = victim.wait();
    let t = Instant::now();
    let r = c.infer(&images(1));
    assert!(r.is_err(), "no result may come out of a broken session");
    for mut c in children {
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                assert_eq!(s.code(), Some(2), "the party reports an error");
                break;
            }
            assert!(
                t.elapsed() < no_hang(timeouts.message),
                "party did not stop"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}
