//! Running the parties of one query as threads over the in-process transport.

use std::time::Duration;

use crate::error::{MpcError, Result};
use crate::transport::{InProcess, Transport, TransportStats};

/// Runs `f(i, node_i, transport_i)` for every node on its own thread; returns each node's output
/// and transport counters, or the first root-cause error (a party that stopped for a reason of
/// its own rather than because a peer disconnected).
pub(crate) fn run_nodes<N, F>(
    nodes: &mut [N],
    timeout: Duration,
    f: F,
) -> Result<(Vec<Vec<u64>>, Vec<TransportStats>)>
where
    N: Send,
    F: Fn(usize, &mut N, &mut dyn Transport) -> Result<Vec<u64>> + Sync,
{
    let eps = InProcess::mesh(nodes.len(), timeout);
    let f = &f;
    let results: Vec<Result<(Vec<u64>, TransportStats)>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter_mut()
            .zip(eps)
            .enumerate()
            .map(|(i, (node, mut ep))| {
                s.spawn(move || {
                    let out = f(i, node, &mut ep)?;
                    Ok((out, ep.stats()))
                })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| h.join().unwrap_or(Err(MpcError::PartyFailed { party: i })))
            .collect()
    });
    let mut outs = Vec::with_capacity(results.len());
    let mut stats = Vec::with_capacity(results.len());
    let mut first_err: Option<MpcError> = None;
    for r in results {
        match r {
            Ok((o, s)) => {
                outs.push(o);
                stats.push(s);
            }
            Err(e) => {
                let root = !matches!(e, MpcError::Disconnected { .. });
                if first_err.is_none()
                    || (root && matches!(first_err, Some(MpcError::Disconnected { .. })))
                {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((outs, stats)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_failing_party_stops_the_others_with_the_root_cause() {
        let mut nodes = vec![0u8; 3];
        let t = Instant::now();
        let r = run_nodes(&mut nodes, Duration::from_secs(5), |i, _, net| {
            if i == 2 {
                // Sends a frame of the wrong length to party 0, then leaves.
                net.send(0, vec![1, 2, 3])?;
                return Err(MpcError::PartyFailed { party: 2 });
            }
            let peer = 1 - i;
            net.exchange(peer, vec![0; 4])?;
            net.recv_exact(2, 4)
        });
        assert!(
            matches!(
                r,
                Err(MpcError::Malformed { .. }) | Err(MpcError::PartyFailed { .. })
            ),
            "{r:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_stalling_party_is_a_timeout_not_a_hang() {
        let mut nodes = vec![0u8; 2];
        let t = Instant::now();
        let r = run_nodes(&mut nodes, Duration::from_millis(100), |i, _, net| {
            if i == 1 {
                std::thread::sleep(Duration::from_millis(400));
                return Ok(Vec::new());
            }
            net.recv(1)
        });
        assert!(
            matches!(
                r,
                Err(MpcError::Timeout {
                    party: 0,
                    peer: 1,
                    ..
                })
            ),
            "{r:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
