//! Handshakes over 127.0.0.1: the right CA and name succeed; a wrong CA, a wrong name, an expired
//! certificate, another pinned certificate or a missing client certificate fail.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use ppml_tls::{Acceptor, Ca, Connector, Identity, TlsError, Trust};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A one-connection server that completes the handshake and echoes 4 bytes; its handshake result.
fn server(acceptor: Acceptor) -> (String, JoinHandle<Result<(), TlsError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        sock.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        let mut tls = acceptor.accept(sock)?;
        let mut buf = [0u8; 4];
        if tls.read_exact(&mut buf).is_ok() {
            let _ = tls.write_all(&buf);
        }
        Ok(())
    });
    (addr, handle)
}

fn connect(addr: &str, connector: &Connector) -> Result<(), TlsError> {
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut tls = connector.connect(sock)?;
    tls.write_all(b"ping").expect("write");
    let mut back = [0u8; 4];
    tls.read_exact(&mut back)
        .map_err(|source| TlsError::Handshake {
            peer: "echo".into(),
            source,
        })?;
    assert_eq!(&back, b"ping");
    Ok(())
}

fn roots(ca: &Ca) -> Trust {
    Trust::Roots(vec![ca.cert().clone()])
}

fn refused(result: Result<(), TlsError>, what: &str) -> String {
    match result {
        Err(e @ TlsError::Handshake { .. }) => e.to_string(),
        other => panic!("{what}: expected a handshake error, got {other:?}"),
    }
}

#[test]
fn the_right_ca_and_name_connect_and_carry_bytes() {
    let ca = Ca::generate("test CA").expect("ca");
    let (addr, srv) = server(Acceptor::new(&ca.identity("he-server").expect("id"), None).unwrap());
    let connector = Connector::new(&roots(&ca), None, "he-server").expect("connector");
    connect(&addr, &connector).expect("handshake");
    srv.join().expect("join").expect("server side");
}

#[test]
fn a_client_trusting_another_ca_is_refused() {
    let (ca, other) = (
        Ca::generate("real").unwrap(),
        Ca::generate("other").unwrap(),
    );
    let (addr, srv) = server(Acceptor::new(&ca.identity("he-server").unwrap(), None).unwrap());
    let connector = Connector::new(&roots(&other), None, "he-server").unwrap();
    let msg = refused(connect(&addr, &connector), "wrong CA");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    assert!(srv.join().expect("join").is_err());
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = Ca::generate("test CA").unwrap();
    let (addr, srv) = server(Acceptor::new(&ca.identity("party-0").unwrap(), None).unwrap());
    let connector = Connector::new(&roots(&ca), None, "he-server").unwrap();
    let msg = refused(connect(&addr, &connector), "wrong name");
    assert!(msg.contains("not valid for name"), "{msg}");
    assert!(srv.join().expect("join").is_err());
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = Ca::generate("test CA").unwrap();
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired = ca
        .identity_valid("he-server", now - 10 * day, now - day)
        .unwrap();
    let (addr, srv) = server(Acceptor::new(&expired, None).unwrap());
    let connector = Connector::new(&roots(&ca), None, "he-server").unwrap();
    let msg = refused(connect(&addr, &connector), "expired");
    assert!(msg.contains("expired"), "{msg}");
    assert!(srv.join().expect("join").is_err());
}

#[test]
fn a_pinned_certificate_is_the_only_one_accepted() {
    let ca = Ca::generate("test CA").unwrap();
    let (real, twin) = (
        ca.identity("he-server").unwrap(),
        ca.identity("he-server").unwrap(),
    );
    let pin = Trust::Pinned(real.cert().unwrap().clone());
    let connector = Connector::new(&pin, None, "he-server").unwrap();
    let (addr, srv) = server(Acceptor::new(&real, None).unwrap());
    connect(&addr, &connector).expect("the pinned certificate");
    srv.join().unwrap().unwrap();
    // Same CA, same name, another key: refused.
    let (addr, srv) = server(Acceptor::new(&twin, None).unwrap());
    refused(connect(&addr, &connector), "another certificate");
    assert!(srv.join().unwrap().is_err());
    // The pinned certificate under another name: refused.
    let named = Connector::new(&pin, None, "party-0").unwrap();
    let (addr, srv) = server(Acceptor::new(&real, None).unwrap());
    refused(connect(&addr, &named), "pinned, wrong name");
    assert!(srv.join().unwrap().is_err());
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_of_the_ca() {
    let (ca, other) = (
        Ca::generate("real").unwrap(),
        Ca::generate("other").unwrap(),
    );
    let client_roots = [ca.cert().clone()];
    let acceptor = || Acceptor::new(&ca.identity("party-0").unwrap(), Some(&client_roots)).unwrap();
    let with = |id: Option<&Identity>| Connector::new(&roots(&ca), id, "party-0").unwrap();
    let (addr, srv) = server(acceptor());
    connect(&addr, &with(Some(&ca.identity("client").unwrap()))).expect("a client of the CA");
    srv.join().unwrap().unwrap();
    for id in [None, Some(other.identity("client").unwrap())] {
        let (addr, srv) = server(acceptor());
        // TLS 1.3: the client finishes first; the server's refusal arrives as an alert.
        assert!(connect(&addr, &with(id.as_ref())).is_err());
        let err = srv.join().unwrap().expect_err("refused client");
        assert!(matches!(err, TlsError::Handshake { .. }), "{err}");
    }
}

#[test]
fn a_written_ca_loads_and_issues_identities_its_clients_trust() {
    let dir = std::env::temp_dir().join(format!("ppml-tls-ca-{}", std::process::id()));
    let ca = Ca::generate("test CA").unwrap();
    let (cert, key) = ca.write(&dir).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "ca.key mode {mode:o}");
    }
    let loaded = Ca::load(&cert, &key).expect("load");
    assert_eq!(loaded.cert(), ca.cert());
    let (leaf, leaf_key) = loaded.issue("he-server", &dir).expect("issue");
    let id = Identity::load(&leaf, &leaf_key).expect("identity");
    let trust = Trust::Roots(ppml_tls::read_certs(&cert).unwrap());
    let (addr, srv) = server(Acceptor::new(&id, None).unwrap());
    connect(&addr, &Connector::new(&trust, None, "he-server").unwrap()).expect("handshake");
    srv.join().unwrap().unwrap();
    // Another CA's key with this certificate is refused.
    let (_, other_key) = Ca::generate("other").unwrap().write(dir.join("o")).unwrap();
    assert!(matches!(
        Ca::load(&cert, &other_key),
        Err(TlsError::KeyMismatch { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_names_and_files_are_typed_errors() {
    let ca = Ca::generate("test CA").unwrap();
    for bad in ["", "../x", "He-Server", "-a", "a b", &"x".repeat(64)] {
        assert!(
            matches!(ca.identity(bad), Err(TlsError::Name { .. })),
            "{bad:?}"
        );
    }
    let dir = std::env::temp_dir().join(format!("ppml-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no PEM here\n").unwrap();
    assert!(matches!(
        ppml_tls::read_certs(&empty),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        ppml_tls::read_key(&empty),
        Err(TlsError::Pem { .. })
    ));
    assert!(matches!(
        ppml_tls::read_certs(dir.join("missing.pem")),
        Err(TlsError::File { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
