//! Client and server over TLS on localhost.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers fail loudly"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use ppml_he::layout::{Grid, Placement};
use ppml_he::session::serve_connection;
use ppml_he::{HeClient, Mode};
use ppml_nn::{engine, zoo, Tensor};
use ppml_tls::{Acceptor, Ca, Connector, Trust};

/// A server identity for `he-server` from a fresh CA, and a client that trusts that CA.
fn tls() -> (Acceptor, Connector) {
    let ca = Ca::generate("test CA").expect("ca");
    let id = ca.identity("he-server").expect("identity");
    let trust = Trust::Roots(vec![ca.cert().clone()]);
    (
        Acceptor::new(&id, None).expect("acceptor"),
        Connector::new(&trust, None, "he-server").expect("connector"),
    )
}

fn cnn() -> ppml_nn::Model {
    let mut m = zoo::architecture("cnn").expect("zoo");
    zoo::init_weights(&mut m, 9);
    m
}

#[test]
fn latency_over_tls_matches_plain() {
    let m = cnn();
    let (acceptor, connector) = tls();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let model = m.clone();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        serve_connection(acceptor.accept(s)?, &model)
    });
    let mut client = HeClient::connect(addr, &connector, Mode::Latency).expect("connect");
    assert!(client.setup_bytes() > 1_000_000);
    let px: Vec<u8> = (0..2 * 784).map(|i| ((i * 7919) % 256) as u8).collect();
    let mut data = Vec::new();
    m.preprocess_into(&px, &mut data);
    let x = Tensor::new(vec![2, 1, 28, 28], data).expect("tensor");
    let (got, stats) = client.infer(&x).expect("infer");
    assert_eq!(stats.rounds, 2);
    assert!(stats.bytes_sent > 0);
    let want = engine::forward(&m, &x).expect("forward");
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() < 1e-3, "{g} vs {w}");
    }
    drop(client);
    server.join().expect("join").expect("server");
}

#[test]
fn server_rejects_garbage_with_an_error_frame() {
    let m = cnn();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (acceptor, connector) = tls();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        serve_connection(acceptor.accept(s)?, &m)
    });
    let mut s = connector
        .connect(TcpStream::connect(addr).expect("connect"))
        .expect("handshake");
    // Tag 1 (hello) with an unknown mode byte.
    s.write_all(&[1]).expect("write");
    s.write_all(&1u64.to_le_bytes()).expect("write");
    s.write_all(&[77]).expect("write");
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("error frame");
    assert_eq!(head[0], 8, "error tag");
    let mut msg = Vec::new();
    // The server closes after the error frame (without a TLS close_notify): read what came.
    let _ = s.read_to_end(&mut msg);
    assert!(String::from_utf8_lossy(&msg).contains("unknown mode"));
    assert!(server.join().expect("join").is_err());
}

#[test]
fn client_spec_round_trips_and_rejects_corruption() {
    let m = cnn();
    let (_, spec) = ppml_he::SessionEvaluator::prepare(&m, Mode::Auto).expect("prepare");
    let bytes = spec.to_bytes();
    let back = ppml_he::spec::ClientSpec::from_bytes(&bytes).expect("decode");
    assert_eq!(back.to_bytes(), bytes);
    assert!(ppml_he::spec::ClientSpec::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(ppml_he::spec::ClientSpec::from_bytes(&extra).is_err());
    for i in (0..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[i] ^= 0xff;
        let _ = ppml_he::spec::ClientSpec::from_bytes(&bad); // must not panic
    }
    // A grid placement (cnn's im2col input, 49 x 8 x 8, in blocks of 64) round-trips; a grid
    // that does not fit its blocks, or does not match the input length, is refused.
    let grid = |channels, block| {
        let mut g = spec.clone();
        let lat = g.latency.as_mut().expect("latency");
        lat.placement = Placement::Grid(Grid {
            channels,
            height: 8,
            width: 8,
            phase: 2,
            row_stride: 4,
            block,
        });
        g.to_bytes()
    };
    let ok = grid(49, 16);
    let back = ppml_he::spec::ClientSpec::from_bytes(&ok).expect("grid spec");
    assert_eq!(back.to_bytes(), ok);
    for (channels, block) in [(49, 15), (49, 8), (48, 16), (49, 1 << 20)] {
        assert!(
            ppml_he::spec::ClientSpec::from_bytes(&grid(channels, block)).is_err(),
            "{channels} {block}"
        );
    }
}

#[test]
fn sessions_share_the_prepared_model_of_their_mode() {
    let m = cnn();
    let models = ppml_he::PreparedModels::new(m);
    let a = models.get(Mode::Auto).expect("auto");
    let b = models.get(Mode::Auto).expect("auto again");
    assert!(std::sync::Arc::ptr_eq(&a, &b), "auto prepared twice");
    let t = models.get(Mode::Throughput).expect("throughput");
    assert!(!std::sync::Arc::ptr_eq(&a, &t));
    assert!(a.spec().latency.is_some() && t.spec().latency.is_none());
}
