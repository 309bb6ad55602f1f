//! What the comparison tests share: the three roles run over the in-process transport, and the
//! values where comparisons go wrong first.

use std::time::Duration;

use crate::comparison::role::Role;
use crate::error::Result;
use crate::prg::{Prg, PrgKey};
use crate::ring;
use crate::transport::{InProcess, Transport};

/// Runs `f` as A, B and H over the in-process transport; returns A's and B's outputs.
pub(crate) fn run3<F>(xs: &[u64], f: F) -> (Vec<u64>, u64, u64)
where
    F: Fn(&mut dyn Transport, &mut Role<'_>, &[u64], usize) -> Result<Vec<u64>> + Sync,
{
    let n = xs.len();
    let mut share = Prg::from_os();
    let a: Vec<u64> = share.u64s(n);
    let b = ring::sub(xs, &a);
    let (ka, kb) = (PrgKey::random(), PrgKey::random());
    let mut eps = InProcess::mesh(3, Duration::from_secs(10));
    let mut eh = eps.pop().expect("3");
    let mut eb = eps.pop().expect("3");
    let mut ea = eps.pop().expect("3");
    let f = &f;
    let (ya, yb, stats) = std::thread::scope(|s| {
        let (ka2, kb2) = (ka.clone(), kb.clone());
        let h = s.spawn(move || {
            let (mut pa, mut pb) = (ka2.prg(7), kb2.prg(7));
            let mut role = Role::H {
                a: 0,
                b: 1,
                prg_a: &mut pa,
                prg_b: &mut pb,
            };
            f(&mut eh, &mut role, &[], n).map(|_| eh.stats())
        });
        let tb = s.spawn(move || {
            let mut p = kb.prg(7);
            let mut role = Role::B {
                peer: 0,
                helper: 2,
                prg: &mut p,
            };
            f(&mut eb, &mut role, &b, n).map(|y| (y, eb.stats()))
        });
        let mut p = ka.prg(7);
        let mut role = Role::A {
            peer: 1,
            helper: 2,
            prg: &mut p,
        };
        let ya = f(&mut ea, &mut role, &a, n).expect("A");
        let (yb, sb) = tb.join().expect("B thread").expect("B");
        let sh = h.join().expect("H thread").expect("H");
        (ya, yb, [ea.stats(), sb, sh])
    });
    let bytes = stats.iter().map(|s| s.bytes_sent).sum();
    let rounds = stats.iter().map(|s| s.rounds).max().unwrap_or(0);
    (ring::add(&ya, &yb), bytes, rounds)
}

/// Values where comparisons go wrong first: zero, one unit either side, the fixed-point
/// one, the extremes of the ring and their neighbours.
pub(crate) const EDGE_VALUES: [i64; 15] = [
    0,
    1,
    -1,
    2,
    -2,
    65536,
    -65536,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
    1 << 62,
    -(1 << 62),
    123_456_789,
    -987_654_321,
];
