//! `ppml hybrid-server`: the server role of the hybrid backend as its own process, over TLS 1.3
//! with a certificate of the deployment's CA (`ppml he-certs --name hybrid-server`); and the
//! client's side of the flags (`eval --backend hybrid --server ADDR --ca FILE`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ppml_hybrid::backend::{RemoteServer, SERVER_NAME, TIMEOUT};
use ppml_hybrid::plan::ServerModel;
use ppml_hybrid::server::{serve as serve_sessions, ServeOptions};
use ppml_rlwe::Params;
use ppml_tls::{Connector, Trust};

use super::tls::ServerTlsArgs;
use crate::input::load_model;

/// Arguments of `ppml hybrid-server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Zoo name or model file.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Serve this many sessions, then exit (default: serve until killed).
    #[arg(long)]
    sessions: Option<u64>,
}

/// Loads and encodes the model, then serves each client on its own thread.
pub fn serve(args: &ServerArgs) -> Result<()> {
    let model = load_model(&args.model, args.models_dir.clone())?;
    let tls = args.tls.acceptor()?;
    let params = Params::default_set()?;
    let encoded = Arc::new(
        ServerModel::new(&model, &params)
            .with_context(|| format!("encoding {} for the hybrid backend", model.name))?,
    );
    let listener = args.tls.bind()?;
    // The address ends the line: scripts and tests read it from there.
    eprintln!(
        "hybrid-server: {} over TLS 1.3 on {}",
        model.name,
        listener.local_addr()?
    );
    let options = ServeOptions {
        sessions: args.sessions,
        timeout: TIMEOUT,
    };
    serve_sessions(
        &listener,
        &params,
        &encoded,
        &tls,
        options,
        Arc::new(|(peer, served)| match served {
            Ok(n) => eprintln!("hybrid-server: session with {peer} ended after {n} images"),
            Err(e) => eprintln!("hybrid-server: session with {peer} failed: {e}"),
        }),
    )?;
    Ok(())
}

/// The server `eval --backend hybrid --server ADDR --ca FILE [--server-name NAME]` connects to.
pub fn remote(addr: &str, ca: Option<&Path>, server_name: Option<&str>) -> Result<RemoteServer> {
    let ca = ca.context(
        "--server needs --ca: the CA certificate (PEM) the hybrid server's certificate must chain to",
    )?;
    let roots = ppml_tls::read_certs(ca)
        .with_context(|| format!("reading the CA certificate {}", ca.display()))?;
    Ok(RemoteServer {
        addr: addr.to_string(),
        tls: Connector::new(
            &Trust::Roots(roots),
            None,
            server_name.unwrap_or(SERVER_NAME),
        )?,
    })
}
