//! `ppml hybrid-server`: the server role of the hybrid backend as its own process.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ppml_hybrid::backend::TIMEOUT;
use ppml_hybrid::plan::ServerModel;
use ppml_hybrid::tcp::TcpLink;
use ppml_hybrid::ServerSession;
use ppml_rlwe::Params;

use crate::input::load_model;

/// Arguments of `ppml hybrid-server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Zoo name or model file.
    #[arg(long)]
    model: String,
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
    let params = Params::default_set()?;
    let encoded = Arc::new(
        ServerModel::new(&model, &params)
            .with_context(|| format!("encoding {} for the hybrid backend", model.name))?,
    );
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "hybrid-server: {} listening on {}",
        model.name,
        listener.local_addr()?
    );
    let mut workers = Vec::new();
    for (k, conn) in listener.incoming().enumerate() {
        let stream = conn?;
        let peer = stream.peer_addr()?;
        let (p, m) = (params.clone(), encoded.clone());
        workers.push(std::thread::spawn(move || {
            let served = TcpLink::new(stream, "client", TIMEOUT)
                .and_then(|link| ServerSession::accept(Box::new(link), p, m)?.serve());
            match served {
                Ok(n) => eprintln!("hybrid-server: session with {peer} ended after {n} images"),
                Err(e) => eprintln!("hybrid-server: session with {peer} failed: {e}"),
            }
        }));
        if args.sessions.is_some_and(|s| k as u64 + 1 >= s) {
            break;
        }
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}
