//! Functional checks of the link emulator over 127.0.0.1: delay and rate within 10% of the
//! profile, ordering, closes propagating, many connections at once. The tolerances come from
//! the profile (the relay may be late by scheduling, never early).

#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ppml_link::{LinkProfile, Relay, RelayHandle, RelayOptions, RouteStats};

const DELAY: Duration = Duration::from_millis(20);
const RATE: u64 = 100_000_000;

/// Timed tests run one at a time, so that they do not measure each other's load.
static TIMED: Mutex<()> = Mutex::new(());

fn timed() -> MutexGuard<'static, ()> {
    TIMED.lock().unwrap_or_else(PoisonError::into_inner)
}

fn profile() -> LinkProfile {
    LinkProfile::custom("test", DELAY, Some(RATE)).expect("profile")
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A relay in front of a fresh listener: (relay, listener, relay's address).
fn setup(profile: LinkProfile) -> (RelayHandle, TcpListener, SocketAddr) {
    let server = TcpListener::bind(local()).expect("bind");
    let target = server.local_addr().expect("addr");
    let relay = Relay::start(profile, &[(local(), target)]).expect("relay");
    let addr = relay.listen_addrs()[0];
    (relay, server, addr)
}

/// A connected pair (client side, server side) through the relay.
fn pair(server: &TcpListener, addr: SocketAddr) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(addr).expect("connect");
    client.set_nodelay(true).expect("nodelay");
    let (conn, _) = server.accept().expect("accept");
    conn.set_nodelay(true).expect("nodelay");
    for s in [&client, &conn] {
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
    }
    (client, conn)
}

/// The first route's counters once they reach `want` (the relay counts a chunk just after
/// writing it, so a reader may see the bytes a moment before the count), or as they are after 5 s.
fn stats_reaching(relay: &RelayHandle, want: impl Fn(&RouteStats) -> bool) -> RouteStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = relay.stats()[0];
        if want(&s) || Instant::now() > deadline {
            return s;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Sends one byte at a time from `a` to `b` and returns each one-way time.
fn one_way_times(a: &mut TcpStream, b: &mut TcpStream, n: usize) -> Vec<Duration> {
    let mut byte = [0u8; 1];
    (0..n)
        .map(|i| {
            let t = Instant::now();
            a.write_all(&[i as u8]).expect("write");
            b.read_exact(&mut byte).expect("read");
            let dt = t.elapsed();
            assert_eq!(byte[0], i as u8);
            dt
        })
        .collect()
}

#[test]
fn a_small_message_takes_the_one_way_delay_each_way() {
    let _one_at_a_time = timed();
    // 50 ms: 10% of it (5 ms) is more than a scheduler time slice on a loaded machine.
    let delay = Duration::from_millis(50);
    let (_relay, server, addr) =
        setup(LinkProfile::custom("delay", delay, Some(RATE)).expect("profile"));
    let (mut client, mut conn) = pair(&server, addr);
    let max = delay + delay / 10;
    for (dir, times) in [
        ("to target", one_way_times(&mut client, &mut conn, 11)),
        ("from target", one_way_times(&mut conn, &mut client, 11)),
    ] {
        // Never early: the delay is a lower bound by construction.
        assert!(times.iter().all(|&t| t >= delay), "{dir}: {times:?}");
        let m = median(times.clone());
        assert!(m <= max, "{dir}: median {m:?} > {max:?} ({times:?})");
    }
}

#[test]
fn a_bulk_transfer_runs_at_the_rate_in_both_directions_at_once() {
    let _one_at_a_time = timed();
    let (relay, server, addr) = setup(profile());
    let (client, conn) = pair(&server, addr);
    // 5 MB at 100 Mbit/s: 0.4 s each way, both directions together.
    let n = 5_000_000;
    // Each direction's throughput is measured at the receiver, from the first byte to the last
    // (the start-up and the one-way delay are not part of it).
    let transfer = |mut from: TcpStream, mut to: TcpStream, seed: u8| {
        thread::spawn(move || {
            let data = pattern(seed, n);
            let writer = thread::spawn(move || from.write_all(&data).map(|()| from));
            let mut got = vec![0u8; n];
            let first = to.read(&mut got).expect("read");
            let t_first = Instant::now();
            to.read_exact(&mut got[first..]).expect("read");
            let window = t_first.elapsed();
            assert!(got == pattern(seed, n), "bytes changed or reordered");
            let _keep_open = writer.join().expect("join").expect("write");
            ((n - first) as f64 * 8.0 / window.as_secs_f64(), window)
        })
    };
    let up = transfer(
        client.try_clone().expect("clone"),
        conn.try_clone().expect("clone"),
        1,
    );
    let down = transfer(conn, client, 2);
    for (dir, t) in [("up", up), ("down", down)] {
        let (rate, window) = t.join().expect("transfer");
        let want = RATE as f64;
        assert!(
            (rate - want).abs() <= want / 10.0,
            "{dir}: {:.1} Mbit/s against {:.1} ({window:?} for {n} bytes)",
            rate / 1e6,
            want / 1e6
        );
    }
    // Both directions' counters: a receiver may hold its last bytes before the relay has
    // counted them (the count follows the write).
    let s = stats_reaching(&relay, |s| {
        s.bytes_from_target == n as u64 && s.bytes_to_target == n as u64
    });
    assert_eq!(s.connections, 1);
    assert_eq!(s.bytes_to_target, n as u64);
    assert_eq!(s.bytes_from_target, n as u64);
}

#[test]
fn many_small_writes_arrive_promptly_and_in_order() {
    let _one_at_a_time = timed();
    let (_relay, server, addr) = setup(profile());
    let (mut client, mut conn) = pair(&server, addr);
    let writes = 2000u32;
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; writes as usize * 4];
        conn.read_exact(&mut got).expect("read");
        (got, Instant::now())
    });
    for i in 0..writes {
        client.write_all(&i.to_le_bytes()).expect("write");
    }
    let last_write = Instant::now();
    let (got, last_read) = reader.join().expect("reader");
    let want: Vec<u8> = (0..writes).flat_map(u32::to_le_bytes).collect();
    assert!(got == want, "bytes reordered");
    // Coalescing by Nagle's algorithm against delayed acknowledgements (40 ms on Linux), or a
    // wake-up per write in the relay, would add tens of ms; half the delay is the slack for
    // scheduling on a loaded machine.
    let lag = last_read.saturating_duration_since(last_write);
    assert!(lag <= DELAY + DELAY / 2, "last write took {lag:?}");
}

#[test]
fn a_close_reaches_the_other_side_after_the_data() {
    let _one_at_a_time = timed();
    let (_relay, server, addr) = setup(profile());
    // The client sends 1 MB and closes: the server reads all of it, then the end.
    let (mut client, mut conn) = pair(&server, addr);
    let data = pattern(7, 1 << 20);
    client.write_all(&data).expect("write");
    let closed = Instant::now();
    drop(client);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read to end");
    assert!(closed.elapsed() >= DELAY);
    assert!(got == data);
    // The server closes: the client sees the end.
    let (mut client, conn) = pair(&server, addr);
    conn.shutdown(Shutdown::Both).expect("shutdown");
    drop(conn);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("client sees the end");
    assert!(rest.is_empty());
}

#[test]
fn an_unreachable_target_closes_the_connection() {
    // A port nobody listens on.
    let gone = TcpListener::bind(local()).expect("bind");
    let target = gone.local_addr().expect("addr");
    drop(gone);
    let options = RelayOptions {
        connect_patience: Duration::from_millis(200),
    };
    let relay = Relay::start_with(profile(), &[(local(), target)], options).expect("relay");
    let mut client = TcpStream::connect(relay.listen_addrs()[0]).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a closed connection, got {other:?}"),
    }
    assert_eq!(
        stats_reaching(&relay, |s| s.unreachable == 1).unreachable,
        1
    );
}

#[test]
fn a_target_that_starts_late_is_reached() {
    // Nodes of a deployment start in any order: the relay retries the target.
    let spot = TcpListener::bind(local()).expect("bind");
    let target = spot.local_addr().expect("addr");
    drop(spot);
    let relay = Relay::start(profile(), &[(local(), target)]).expect("relay");
    let mut client = TcpStream::connect(relay.listen_addrs()[0]).expect("connect");
    client.write_all(b"early").expect("write");
    thread::sleep(Duration::from_millis(100));
    let server = TcpListener::bind(target).expect("rebind");
    let (mut conn, _) = server.accept().expect("accept");
    let mut got = [0u8; 5];
    conn.read_exact(&mut got).expect("read");
    assert_eq!(&got, b"early");
}

#[test]
fn many_connections_at_once_each_get_their_own_bytes() {
    let _one_at_a_time = timed();
    let fast = LinkProfile::custom("fast", Duration::from_millis(5), Some(1_000_000_000))
        .expect("profile");
    let (relay, server, addr) = setup(fast);
    let clients = 32usize;
    let len = 100_000usize;
    let echo = thread::spawn(move || {
        let mut done = Vec::new();
        for _ in 0..clients {
            let (mut conn, _) = server.accept().expect("accept");
            done.push(thread::spawn(move || {
                let mut buf = vec![0u8; len];
                conn.read_exact(&mut buf).expect("read");
                conn.write_all(&buf).expect("echo");
            }));
        }
        for d in done {
            d.join().expect("echo thread");
        }
    });
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).expect("connect");
                c.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                let data = pattern(i as u8, len);
                c.write_all(&data).expect("write");
                let mut back = vec![0u8; len];
                c.read_exact(&mut back).expect("read back");
                assert!(back == data, "client {i} got someone else's bytes");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client");
    }
    echo.join().expect("echo");
    let total = (clients * len) as u64;
    let s = stats_reaching(&relay, |s| {
        s.bytes_from_target == total && s.bytes_to_target == total
    });
    assert_eq!(s.connections, clients as u64);
    assert_eq!(s.bytes_to_target, (clients * len) as u64);
    assert_eq!(s.bytes_from_target, (clients * len) as u64);
}

#[test]
fn dropping_the_relay_closes_its_connections_and_ports() {
    let (relay, server, addr) = setup(profile());
    let (mut client, _conn) = pair(&server, addr);
    drop(relay);
    let mut buf = [0u8; 1];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a closed connection, got {other:?}"),
    }
    assert!(TcpStream::connect(addr).is_err(), "the port still listens");
}
