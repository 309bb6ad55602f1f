//! `mpc2`/`mpc3` deployed: the three parties as separate `ppml party` processes over TLS, each
//! connection (party to party, client to party) through the relay.
//!
//! The comparison is chosen per measurement, as measured: FSS for single images on the `lan`
//! and `wan` profiles (one round per comparison instead of eight; its keys are made in the
//! offline phase), bit decomposition on `loopback`, where rounds cost microseconds and it
//! computes less, and for batches (FSS keys for a batch of 100 `lenet` images are about 4 GB).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ppml_link::LinkProfile;
use ppml_mpc::{Comparison, PartiesConfig, Protocol};

use super::{err, free_port, Deployment, Measurement, Processes};
use crate::error::BenchError;
use crate::registry::BackendOptions;

/// The comparison for a measurement at `batch` over `profile` (see the module docs).
pub fn comparison_for(profile: &LinkProfile, batch: usize) -> Comparison {
    if batch == 1 && profile.one_way_delay > Duration::ZERO {
        Comparison::Fss
    } else {
        Comparison::BitDecomposition
    }
}

/// Starts the three parties of `protocol` for `at`: certificates, `parties.toml`, relay,
/// processes; returns once every party is ready.
pub(super) fn start(protocol: Protocol, at: &Measurement<'_>) -> Result<Deployment, BenchError> {
    let comparison = comparison_for(at.profile, at.batch);
    // Online figures are measured with the offline phase done: the pool holds every one-image
    // query of the latency run (the standard offline/online split); batches of 100 keep the
    // default depth (their material is large), refilled in the background.
    let pool_depth = if at.batch == 1 {
        at.images.clamp(1, 64)
    } else {
        ppml_mpc::DEFAULT_POOL_DEPTH
    };
    let mut processes = Processes::new()?;
    let dir = processes.dir.clone();
    ppml_mpc::generate_certs(&dir, 3).map_err(err)?;
    let listen: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let reach = processes.route(at.profile, &listen)?;
    let mut toml = format!(
        "protocol = \"{}\"\ncomparison = \"{}\"\ntimeout_ms = 120000\nconnect_timeout_ms = 60000\npool_depth = {pool_depth}\nca = \"ca.pem\"\n",
        match protocol {
            Protocol::Mpc2 => "mpc2",
            Protocol::Mpc3 => "mpc3",
        },
        comparison.name()
    );
    for i in 0..3 {
        toml += &format!(
            "\n[[party]]\naddress = \"{}\"\nlisten = \"{}\"\ncert = \"party-{i}.pem\"\nkey = \"party-{i}.key\"\n",
            reach[i], listen[i]
        );
    }
    toml += "\n[client]\ncert = \"client.pem\"\nkey = \"client.key\"\n";
    let path = dir.join("parties.toml");
    std::fs::write(&path, toml).map_err(err)?;
    let config = PartiesConfig::load(&path).map_err(err)?;
    for i in 0..3 {
        let mut party = Command::new(at.exe);
        party
            .args(["party", "--id", &i.to_string(), "--config"])
            .arg(&path)
            .args(["--model", &at.model.name, "--models-dir"])
            .arg(at.models_dir)
            .arg("--ready-file")
            .arg(dir.join(format!("ready-{i}")));
        processes.spawn(party, &format!("party-{i}"))?;
    }
    processes.wait_until(|dir| {
        (0..3)
            .all(|i| dir.join(format!("ready-{i}")).exists())
            .then_some(())
    })?;
    Ok(Deployment {
        options: BackendOptions {
            parties: Some(config),
            // The run makes `images / batch` calls: the parties make material for no more.
            pool_queries: Some(at.images / at.batch.max(1)),
            ..BackendOptions::default()
        },
        comparison: comparison.name().into(),
        processes,
    })
}
