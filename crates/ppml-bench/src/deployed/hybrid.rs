//! `hybrid` deployed: `ppml hybrid-server` as a separate process with a certificate of a CA
//! made for this deployment alone, the client's connection to it through the relay.
//!
//! Online figures are measured with the offline phase done, as the MPC rows are: the random
//! OTs of every query of the run are made at setup (as many as the backend's pool bound
//! allows; a query that finds none ready makes its own and is counted in "calls without
//! material ready").

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use ppml_hybrid::backend::SERVER_NAME;
use ppml_hybrid::RemoteServer;
use ppml_tls::{Ca, Connector, Trust};

use super::{err, Deployment, Measurement, Processes};
use crate::error::BenchError;
use crate::registry::BackendOptions;

/// The log the server writes, and the words before the address it listens on (the line the
/// server prints once it listens).
const LOG: &str = "hybrid-server";
const LISTENING: &str = "over TLS 1.3 on ";

/// The address in the server's log once it listens.
fn listening(dir: &Path) -> Option<SocketAddr> {
    let log = std::fs::read_to_string(dir.join(format!("{LOG}.log"))).ok()?;
    log.lines()
        .find_map(|l| l.split_once(LISTENING))
        .and_then(|(_, addr)| addr.trim().parse().ok())
}

/// Starts the server for `at` (certificates, process, relay); returns once it listens.
pub(super) fn start(at: &Measurement<'_>) -> Result<Deployment, BenchError> {
    let mut processes = Processes::new()?;
    let ca = Ca::generate("ppml bench hybrid CA").map_err(err)?;
    let (cert, key) = ca.issue(SERVER_NAME, &processes.dir).map_err(err)?;
    let mut server = Command::new(at.exe);
    server
        .args(["hybrid-server", "--model", &at.model.name, "--models-dir"])
        .arg(at.models_dir)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0"]);
    processes.spawn(server, LOG)?;
    let listen = processes.wait_until(listening)?;
    let reach = processes.route(at.profile, &[listen])?;
    let addr = reach
        .first()
        .ok_or_else(|| err("the relay made no route to the hybrid server"))?;
    let tls =
        Connector::new(&Trust::Roots(vec![ca.cert().clone()]), None, SERVER_NAME).map_err(err)?;
    Ok(Deployment {
        options: BackendOptions {
            hybrid_server: Some(RemoteServer {
                addr: addr.to_string(),
                tls,
            }),
            pool_depth: Some(at.images / at.batch.max(1)),
            ..BackendOptions::default()
        },
        comparison: "ot".into(),
        processes,
    })
}
