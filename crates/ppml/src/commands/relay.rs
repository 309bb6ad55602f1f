//! `ppml relay`: the link emulator of `ppml-link` as a process, for measuring a deployment over
//! an emulated LAN or WAN on one machine (see docs/links.md).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ppml_link::{LinkProfile, Relay, RelayOptions, RouteStats};

/// Arguments of `ppml relay`.
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Link profile: `loopback` (no shaping), `lan` (0.25 ms one way, 1 Gbit/s) or `wan` (20 ms
    /// one way, 400 Mbit/s). Each direction of each connection gets the delay and the rate.
    #[arg(long, default_value = "wan")]
    profile: String,
    /// Replace the profile's one-way delay (milliseconds).
    #[arg(long)]
    delay_ms: Option<f64>,
    /// Replace the profile's rate (Mbit/s; 0 is unlimited).
    #[arg(long)]
    rate_mbit: Option<f64>,
    /// A route `LISTEN=TARGET` (repeat the option): every connection accepted on LISTEN is
    /// forwarded to TARGET through the emulated link.
    #[arg(long = "route", required = true, value_parser = parse_route)]
    routes: Vec<(SocketAddr, SocketAddr)>,
    /// Seconds to keep trying an unreachable target for an accepted connection before closing
    /// it (nodes may start in any order).
    #[arg(long, default_value_t = 60)]
    connect_patience: u64,
    /// Print each route's counters on stderr when they changed, at most every this many
    /// seconds (0: never).
    #[arg(long, default_value_t = 0)]
    report_every: u64,
}

fn parse_route(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (listen, target) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected LISTEN=TARGET"))?;
    let resolve = |a: &str| -> Result<SocketAddr, String> {
        a.to_socket_addrs()
            .map_err(|e| format!("{a:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{a:?} resolves to nothing"))
    };
    Ok((resolve(listen)?, resolve(target)?))
}

/// The profile named by `--profile`, with `--delay-ms` and `--rate-mbit` applied.
fn profile(args: &RelayArgs) -> Result<LinkProfile> {
    let mut p = LinkProfile::from_name(&args.profile)?;
    if let Some(ms) = args.delay_ms {
        if !(ms.is_finite() && ms >= 0.0) {
            bail!("--delay-ms {ms}: expected a non-negative number");
        }
        p.one_way_delay = Duration::from_secs_f64(ms / 1e3);
        p.name = format!("{}+delay", p.name);
    }
    if let Some(mbit) = args.rate_mbit {
        if !(mbit.is_finite() && mbit >= 0.0) {
            bail!("--rate-mbit {mbit}: expected a non-negative number");
        }
        // Rounded to whole bits per second; 0 means unlimited.
        let bits = (mbit * 1e6).round() as u64;
        p.rate_bits_per_s = (bits > 0).then_some(bits);
        p.name = format!("{}+rate", p.name);
    }
    Ok(p)
}

fn print_stats(stats: &[RouteStats]) {
    for s in stats {
        eprintln!(
            "relay: {} -> {}: {} connections ({} unreachable), {} bytes to target, {} bytes back",
            s.listen,
            s.target,
            s.connections,
            s.unreachable,
            s.bytes_to_target,
            s.bytes_from_target
        );
    }
}

/// Runs the relay until the process is stopped.
pub fn run(args: &RelayArgs) -> Result<()> {
    let profile = profile(args)?;
    let options = RelayOptions {
        connect_patience: Duration::from_secs(args.connect_patience),
    };
    let relay = Relay::start_with(profile, &args.routes, options).context("starting the relay")?;
    eprintln!("relay: profile {}", relay.profile());
    for (addr, (_, target)) in relay.listen_addrs().iter().zip(&args.routes) {
        eprintln!("relay: {addr} -> {target}");
    }
    eprintln!("relay: ready");
    let mut last = relay.stats();
    loop {
        if args.report_every == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(Duration::from_secs(args.report_every));
        let now = relay.stats();
        if now != last {
            print_stats(&now);
            last = now;
        }
    }
}
