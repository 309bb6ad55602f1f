//! `ppml hybrid-server`: the server role of the hybrid backend as its own process, over TLS 1.3
//! with a certificate of the deployment's CA (`ppml he-certs --name hybrid-server`); and the
//! client's side of the flags (`eval --backend hybrid --server ADDR --ca FILE`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ppml_hybrid::backend::{RemoteServer, SERVER_NAME, TIMEOUT};
use ppml_hybrid::plan::ServerModel;
use ppml_hybrid::server::{serve as serve_sessions, ServeOptions};
use ppml_rlwe::Params;
use ppml_tls::{Acceptor, Connector, Identity, Trust};

use crate::input::load_model;

/// Arguments of `ppml hybrid-server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Zoo name or model file.
    #[arg(long)]
    model: String,
    /// The server's certificate (PEM), e.g. `DIR/hybrid-server.pem` from `ppml he-certs --out
    /// DIR --name hybrid-server`.
    #[arg(long)]
    cert: PathBuf,
    /// The server's private key (PEM), e.g. `DIR/hybrid-server.key`.
    #[arg(long)]
    key: PathBuf,
    /// Address to listen on (port 0: any free port, printed at startup).
    #[arg(long, default_value = "127.0.0.1:7800")]
    listen: String,
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
    let identity = Identity::load(&args.cert, &args.key).with_context(|| {
        format!(
            "reading the server identity {} and {}",
            args.cert.display(),
            args.key.display()
        )
    })?;
    let tls = Acceptor::new(&identity, None)?;
    let params = Params::default_set()?;
    let encoded = Arc::new(
        ServerModel::new(&model, &params)
            .with_context(|| format!("encoding {} for the hybrid backend", model.name))?,
    );
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
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
