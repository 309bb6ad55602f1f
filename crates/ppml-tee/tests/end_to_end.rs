//! The enclave service and client over real loopback sockets: attestation refusals, a hostile
//! network on either side, concurrency, the sealed model and agreement with plain inference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ppml_nn::backend::Backend;
use ppml_nn::{engine, zoo, Model, Tensor};
use ppml_tee::evidence::{self_measurement, SimulatedProvider};
use ppml_tee::handshake::{enclave_handshake, ClientHandshake};
use ppml_tee::seal::{seal_model, SealingKey};
use ppml_tee::wire::{read_handshake, write_handshake, Request, Response};
use ppml_tee::{
    AttestationError, Enclave, EnclaveHandle, EnclaveOptions, FrameError, Measurement, ModelSource,
    TeeBackend, TeeClient, TeeError, TeeMode, VerifyPolicy,
};
use rand::{Rng, SeedableRng};

const M: Measurement = Measurement([0x42; 32]);

fn model(name: &str) -> Model {
    let mut m = zoo::architecture(name).unwrap();
    zoo::init_weights(&mut m, 7);
    m
}

fn images(n: usize, seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Tensor::new(
        vec![n, 1, 28, 28],
        (0..n * 784).map(|_| rng.gen_range(-0.5f32..2.8)).collect(),
    )
    .unwrap()
}

fn enclave(m: Model, opts: EnclaveOptions) -> EnclaveHandle {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = SimulatedProvider::with_measurement(M).unwrap();
    Enclave::new(l, m, Box::new(p), opts)
        .unwrap()
        .spawn()
        .unwrap()
}

/// The TEE backend in process on `name`: attested, simulated, and exactly the plain logits.
fn backend_gives_the_plain_logits(name: &str) {
    let m = model(name);
    let x = images(13, 1);
    let mut b = TeeBackend::in_process(EnclaveOptions::default());
    assert_eq!(b.name(), "tee");
    let report = b.setup(&m).unwrap();
    assert!(report.notes.contains(&"tee_mode=simulated".to_string()));
    assert!(report.notes.contains(&"attested=true".to_string()));
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("simulated (no hardware isolation)")));
    assert_eq!(
        report.facts.isolation.as_deref(),
        Some(TeeMode::Simulated.label())
    );
    assert!(report.bytes_sent > 0);
    let (logits, stats) = b.infer(&x).unwrap();
    let plain = engine::forward(&m, &x).unwrap();
    assert_eq!(logits, plain, "{name}");
    assert_eq!(stats.rounds, 1);
    assert!(stats.bytes_sent as usize > 13 * 784 * 4);
}

/// One test per zoo model: `tee_backend_gives_the_plain_logits_for::MODEL`.
mod tee_backend_gives_the_plain_logits_for {
    ppml_nn::per_zoo_model!(super::backend_gives_the_plain_logits);
}

#[test]
fn connect_checks_measurement_and_the_simulated_flag() {
    let h = enclave(model("mlp"), EnclaveOptions::default());
    let err = TeeClient::connect(h.addr(), &VerifyPolicy::new(M, false)).unwrap_err();
    assert!(
        matches!(
            err,
            TeeError::Attestation(AttestationError::SimulatedRefused)
        ),
        "{err}"
    );
    let err =
        TeeClient::connect(h.addr(), &VerifyPolicy::new(Measurement([1; 32]), true)).unwrap_err();
    assert!(
        matches!(
            err,
            TeeError::Attestation(AttestationError::MeasurementMismatch { .. })
        ),
        "{err}"
    );
    let mut c = TeeClient::connect(h.addr(), &VerifyPolicy::new(M, true)).unwrap();
    assert_eq!(c.attestation().mode, TeeMode::Simulated);
    let x = images(3, 2);
    assert_eq!(
        c.infer(&x).unwrap(),
        engine::forward(&model("mlp"), &x).unwrap()
    );
    // A bad shape is an error reply, and the session goes on.
    let bad = Tensor::new(vec![1, 1, 27, 27], vec![0.0; 729]).unwrap();
    assert!(matches!(c.infer(&bad), Err(TeeError::Remote(_))));
    assert!(c.infer(&x).is_ok());
}

#[test]
fn the_backend_refuses_an_enclave_holding_another_model() {
    let h = enclave(model("mlp"), EnclaveOptions::default());
    let mut b = TeeBackend::connect(h.addr().to_string(), M, true);
    let mut other = model("mlp");
    other.name = "mlp".into();
    zoo::init_weights(&mut other, 8);
    assert!(b.setup(&other).is_err());
    let mut b = TeeBackend::connect(h.addr().to_string(), M, true);
    let r = b.setup(&model("mlp")).unwrap();
    assert!(r.notes.iter().any(|n| n.starts_with("enclave=127.0.0.1")));
    let mut b = TeeBackend::connect(h.addr().to_string(), M, false);
    assert!(b.setup(&model("mlp")).is_err());
}

/// A client that does the handshake by hand and then writes raw frames.
fn raw_session(h: &EnclaveHandle) -> (TcpStream, ppml_tee::handshake::Session) {
    let mut s = TcpStream::connect(h.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (hs, hello) = ClientHandshake::start().unwrap();
    write_handshake(&mut s, &hello).unwrap();
    let reply = read_handshake(&mut s).unwrap();
    let (session, _) = hs
        .finish(&reply, &VerifyPolicy::new(M, true), 1 << 20)
        .unwrap();
    (s, session)
}

/// One whole frame as it is on the wire, header included.
fn read_raw_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut frame = vec![0u8; 12];
    s.read_exact(&mut frame).unwrap();
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    frame.resize(12 + len, 0);
    s.read_exact(&mut frame[12..]).unwrap();
    frame
}

/// True when the enclave closed the connection without answering.
fn closed_without_reply(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(n) => n == 0,
        // A reset is a close too; a timeout is not.
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[test]
fn the_enclave_drops_tampered_replayed_and_truncated_frames() {
    let h = enclave(model("cnn"), EnclaveOptions::default());
    let info = Request::Info.encode().unwrap();

    // Tampered.
    let (mut s, mut sess) = raw_session(&h);
    let mut f = sess.sealer.seal(&info).unwrap();
    let n = f.len();
    f[n - 3] ^= 0x80;
    s.write_all(&f).unwrap();
    assert!(closed_without_reply(&mut s));

    // Replayed: the first copy is answered, the second ends the session.
    let (mut s, mut sess) = raw_session(&h);
    let f = sess.sealer.seal(&info).unwrap();
    s.write_all(&f).unwrap();
    let frame = read_raw_frame(&mut s);
    let reply = Response::decode(&sess.opener.open(&frame).unwrap()).unwrap();
    assert!(matches!(reply, Response::Info(_)));
    s.write_all(&f).unwrap();
    assert!(closed_without_reply(&mut s));

    // Reordered: frame 1 before frame 0.
    let (mut s, mut sess) = raw_session(&h);
    let _f0 = sess.sealer.seal(&info).unwrap();
    let f1 = sess.sealer.seal(&info).unwrap();
    s.write_all(&f1).unwrap();
    assert!(closed_without_reply(&mut s));

    // Truncated: half a frame, then the client half-closes.
    let (mut s, mut sess) = raw_session(&h);
    let f = sess.sealer.seal(&info).unwrap();
    s.write_all(&f[..f.len() / 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_without_reply(&mut s));

    // An oversized length prefix is refused before any allocation.
    let (mut s, _) = raw_session(&h);
    let mut big = [0u8; 12];
    big[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&big).unwrap();
    assert!(closed_without_reply(&mut s));

    // The service still serves honest clients.
    let mut c = TeeClient::connect(h.addr(), &VerifyPolicy::new(M, true)).unwrap();
    assert!(c.model_info().is_ok());
}

/// A hostile enclave side: a real handshake, then `respond` writes whatever it likes.
fn hostile(respond: fn(&mut TcpStream, &mut ppml_tee::handshake::Session)) -> TeeError {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let p = SimulatedProvider::with_measurement(M).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let hello = read_handshake(&mut s).unwrap();
        let (mut sess, reply) = enclave_handshake(&hello, &p, 1 << 20).unwrap();
        write_handshake(&mut s, &reply).unwrap();
        read_raw_frame(&mut s); // the request; its content does not matter here
        respond(&mut s, &mut sess);
    });
    let mut c = TeeClient::connect(addr, &VerifyPolicy::new(M, true)).unwrap();
    let err = c.model_info().unwrap_err();
    t.join().unwrap();
    err
}

fn reply() -> Vec<u8> {
    Response::Error("x".into()).encode().unwrap()
}

#[test]
fn the_client_rejects_tampered_replayed_reordered_and_truncated_replies() {
    let err = hostile(|s, sess| {
        let mut f = sess.sealer.seal(&reply()).unwrap();
        f[14] ^= 1;
        s.write_all(&f).unwrap();
    });
    assert!(matches!(err, TeeError::Frame(FrameError::BadTag)), "{err}");

    let err = hostile(|s, sess| {
        let _ = sess.sealer.seal(&reply()).unwrap();
        let f1 = sess.sealer.seal(&reply()).unwrap();
        s.write_all(&f1).unwrap();
    });
    assert!(
        matches!(
            err,
            TeeError::Frame(FrameError::OutOfOrder {
                got: 1,
                expected: 0
            })
        ),
        "{err}"
    );

    let err = hostile(|s, sess| {
        let f = sess.sealer.seal(&reply()).unwrap();
        s.write_all(&f[..f.len() - 4]).unwrap();
    });
    assert!(
        matches!(err, TeeError::Frame(FrameError::Truncated { .. })),
        "{err}"
    );

    // A replay of an old frame, seen by a client that already consumed it: build the state by
    // answering once properly inside the same connection is not possible with one call, so the
    // replay is the same frame twice in a row: the first is accepted as the reply, the second is
    // read by the next call.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let p = SimulatedProvider::with_measurement(M).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let hello = read_handshake(&mut s).unwrap();
        let (mut sess, r) = enclave_handshake(&hello, &p, 1 << 20).unwrap();
        write_handshake(&mut s, &r).unwrap();
        let f = sess.sealer.seal(&reply()).unwrap();
        for _ in 0..2 {
            read_raw_frame(&mut s);
            s.write_all(&f).unwrap();
        }
    });
    let mut c = TeeClient::connect(addr, &VerifyPolicy::new(M, true)).unwrap();
    assert!(matches!(c.model_info(), Err(TeeError::Remote(_))));
    let err = c.model_info().unwrap_err();
    assert!(
        matches!(
            err,
            TeeError::Frame(FrameError::Replayed {
                got: 0,
                expected: 1
            })
        ),
        "{err}"
    );
    t.join().unwrap();
}

#[test]
fn concurrent_clients_are_served_and_the_bound_holds() {
    let m = model("chameleon");
    let h = enclave(
        m.clone(),
        EnclaveOptions {
            max_connections: 4,
            ..EnclaveOptions::default()
        },
    );
    let addr = h.addr();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut c = TeeClient::connect(addr, &VerifyPolicy::new(M, true)).unwrap();
                for j in 0..3 {
                    let x = images(2 + j, i * 10 + j as u64);
                    assert_eq!(c.infer(&x).unwrap(), engine::forward(&m, &x).unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let h1 = enclave(
        m,
        EnclaveOptions {
            max_connections: 1,
            ..EnclaveOptions::default()
        },
    );
    let _held = TeeClient::connect(h1.addr(), &VerifyPolicy::new(M, true)).unwrap();
    assert!(TeeClient::connect(h1.addr(), &VerifyPolicy::new(M, true)).is_err());
}

/// Set (to the connection bound) when this test binary is re-run as the enclave server of
/// the memory test.
const CHILD_ENCLAVE: &str = "PPML_TEE_CHILD_ENCLAVE";
/// The child enclave's stderr line that names its address.
const CHILD_LISTENS: &str = "child enclave listens on ";

/// When this binary is re-run as the memory test's enclave (by [`ChildEnclave::start`]):
/// serves lenet on a free loopback port, says where on stderr, and serves until killed. Run
/// normally, it has nothing to do.
#[test]
fn child_enclave() {
    let Ok(max_connections) = std::env::var(CHILD_ENCLAVE) else {
        return;
    };
    let h = enclave(
        model("lenet"),
        EnclaveOptions {
            max_connections: max_connections.parse().expect("a connection bound"),
            ..EnclaveOptions::default()
        },
    );
    eprintln!("{CHILD_LISTENS}{}", h.addr());
    loop {
        std::thread::park();
    }
}

/// The enclave server as a process of its own (this binary re-run as [`child_enclave`]), so
/// that its memory is its alone: killed when dropped, also when the test fails.
struct ChildEnclave {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl ChildEnclave {
    fn start(max_connections: usize) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_enclave",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENCLAVE, max_connections.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the child enclave");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix(CHILD_LISTENS).map(str::to_string))
            .expect("the child enclave says where it listens")
            .parse()
            .expect("an address");
        // The rest of its stderr is read and dropped, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr }
    }

    /// Resident memory of the child process in KiB, from its `/proc/PID/status` (Linux).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status (Linux)");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .expect("VmRSS");
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("a size in kB")
    }
}

impl Drop for ChildEnclave {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn many_sequential_and_concurrent_clients_get_their_own_answers_and_memory_stays_flat() {
    let m = model("lenet");
    let server = ChildEnclave::start(8);
    let addr = server.addr;
    let policy = VerifyPolicy::new(M, true);
    // Each client sends its own images and must get exactly their logits back.
    let round = |seed: u64| {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (m, policy) = (m.clone(), policy.clone());
                std::thread::spawn(move || {
                    for j in 0..5u64 {
                        let x = images(1 + (j as usize % 3), seed * 100 + t * 10 + j);
                        let mut c = TeeClient::connect(addr, &policy).unwrap();
                        assert_eq!(c.infer(&x).unwrap(), engine::forward(&m, &x).unwrap());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    };
    for seed in 0..3 {
        round(seed);
    }
    let before = server.rss_kib();
    for seed in 3..13 {
        round(seed);
    }
    // 200 more connections after warm-up: the server's resident memory must not grow with them.
    let after = server.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn large_batches_are_split_into_bounded_frames() {
    let m = model("mlp");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = SimulatedProvider::with_measurement(M).unwrap();
    let opts = EnclaveOptions {
        max_frame: 64 << 10,
        ..EnclaveOptions::default()
    };
    let h = Enclave::new(l, m.clone(), Box::new(p), opts)
        .unwrap()
        .spawn()
        .unwrap();
    let mut c = TeeClient::connect_with(
        h.addr(),
        &VerifyPolicy::new(M, true),
        64 << 10,
        Duration::from_secs(30),
    )
    .unwrap();
    let x = images(50, 3); // 157 KB of pixels, 20 images a frame
    let (logits, rounds) = c.infer_counted(&x).unwrap();
    assert_eq!(rounds, 3);
    assert_eq!(logits, engine::forward(&m, &x).unwrap());
}

#[test]
fn a_sealed_model_is_served_and_a_wrong_key_refused() {
    let dir = std::env::temp_dir().join(format!("ppml-tee-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (sealed, key_path, wrong) = (dir.join("m.sealed"), dir.join("k"), dir.join("w"));
    let key = SealingKey::generate().unwrap();
    let _ = std::fs::remove_file(&key_path);
    let _ = std::fs::remove_file(&wrong);
    key.write_new(&key_path).unwrap();
    SealingKey::generate().unwrap().write_new(&wrong).unwrap();
    let m = model("minionn");
    std::fs::write(&sealed, seal_model(&m, &key).unwrap()).unwrap();

    let source = |k: &std::path::Path| ModelSource::Sealed {
        path: sealed.clone(),
        key: k.to_path_buf(),
    };
    assert!(Enclave::bind(source(&wrong), "127.0.0.1:0", EnclaveOptions::default()).is_err());
    let opts = EnclaveOptions {
        provider: ppml_tee::ProviderChoice::Simulated,
        ..EnclaveOptions::default()
    };
    let e = Enclave::bind(source(&key_path), "127.0.0.1:0", opts).unwrap();
    assert_eq!(e.mode(), TeeMode::Simulated);
    let expected = e.measurement().unwrap();
    assert_eq!(expected, self_measurement().unwrap());
    let h = e.spawn().unwrap();
    let mut c = TeeClient::connect(h.addr(), &VerifyPolicy::new(expected, true)).unwrap();
    let x = images(4, 4);
    assert_eq!(c.infer(&x).unwrap(), engine::forward(&m, &x).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
