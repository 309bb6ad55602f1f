//! The flags every TLS server command takes: where it listens, and its certificate and key from
//! the deployment's CA.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ppml_tls::{Acceptor, Identity};

/// `--listen`, `--cert` and `--key` of a TLS server (`he-server`, `hybrid-server`).
#[derive(Debug, Args)]
pub struct ServerTlsArgs {
    /// Address to listen on (port 0: any free port, printed at startup).
    #[arg(long, default_value = "127.0.0.1:7800")]
    listen: String,
    /// The server's certificate (PEM), e.g. `DIR/NAME.pem` from `ppml he-certs --out DIR
    /// --name NAME` (NAME: he-server or hybrid-server).
    #[arg(long)]
    cert: PathBuf,
    /// The server's private key (PEM), e.g. `DIR/NAME.key`.
    #[arg(long)]
    key: PathBuf,
}

impl ServerTlsArgs {
    /// The TLS 1.3 acceptor that presents this identity (no client certificates asked).
    pub fn acceptor(&self) -> Result<Acceptor> {
        let identity = Identity::load(&self.cert, &self.key).with_context(|| {
            format!(
                "reading the server identity {} and {}",
                self.cert.display(),
                self.key.display()
            )
        })?;
        Ok(Acceptor::new(&identity, None)?)
    }

    /// The listening socket at `--listen`.
    pub fn bind(&self) -> Result<TcpListener> {
        TcpListener::bind(&self.listen).with_context(|| format!("listening on {}", self.listen))
    }
}
