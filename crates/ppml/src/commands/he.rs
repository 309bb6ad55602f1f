//! `ppml he-server`, `ppml he-client` and `ppml he-certs`: encrypted inference over TLS 1.3 with
//! the server authenticated by a certificate of the deployment's CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ppml_nn::Tensor;
use ppml_tls::{Ca, Connector, Trust};

use super::tls::ServerTlsArgs;
use crate::input::{image_tensor, load_model};

/// The name the quick start's server certificate carries and the client checks by default.
pub const DEFAULT_SERVER_NAME: &str = "he-server";

/// `ppml he-server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Zoo name or model file (polynomial activations only: cnn, mlp-sq, lenet-sq).
    #[arg(long)]
    model: String,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Clients served at once, each on its own thread (a session holds the client's
    /// evaluation keys, tens of MB); further clients wait until a session ends.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    max_sessions: u64,
    /// Seconds a session may stay silent (no handshake or request read, no answer taken)
    /// before the server closes it.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

/// `ppml he-client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Address of the server.
    #[arg(long)]
    server: String,
    /// The CA certificate (PEM) the server's certificate must chain to, e.g. `DIR/ca.pem`.
    #[arg(long)]
    ca: PathBuf,
    /// The name the server's certificate must carry.
    #[arg(long, default_value = DEFAULT_SERVER_NAME)]
    server_name: String,
    /// The images (28x28 PNG or binary PGM); repeat for a batch.
    #[arg(long, required = true)]
    image: Vec<PathBuf>,
    /// Seconds to wait for the server on any read or write before giving up.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// `ppml he-certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Folder for `ca.pem`, `ca.key` and `NAME.pem`/`NAME.key` per name. A CA already there
    /// (`ca.pem` and `ca.key`) is kept and signs the new identities.
    #[arg(long)]
    out: PathBuf,
    /// DNS name of a server identity to issue; repeat for several.
    #[arg(long = "name", default_value = DEFAULT_SERVER_NAME)]
    names: Vec<String>,
}

/// Runs `ppml he-server`.
pub fn server(args: ServerArgs) -> Result<()> {
    let model = load_model(&args.model, args.models_dir)?;
    if !model.is_polynomial() {
        bail!(
            "{} has ReLU or max-pooling; CKKS evaluates polynomial activations only (try {}-sq)",
            model.name,
            model.name
        );
    }
    let tls = args.tls.acceptor()?;
    let options = ppml_he::ServeOptions {
        max_sessions: usize::try_from(args.max_sessions)?,
        idle_timeout: Some(Duration::from_secs(args.idle_timeout)),
    };
    let listener = args.tls.bind()?;
    // The address ends the line: scripts and tests read it from there.
    eprintln!(
        "he-server: {} over TLS 1.3, at most {} sessions at once, on {}",
        model.name,
        options.max_sessions,
        listener.local_addr()?
    );
    ppml_he::serve_with(&listener, &model, &options, &tls)?;
    Ok(())
}

/// Runs `ppml he-client`.
pub fn client(args: ClientArgs) -> Result<()> {
    let roots = ppml_tls::read_certs(&args.ca)
        .with_context(|| format!("reading the CA certificate {}", args.ca.display()))?;
    let tls = Connector::new(&Trust::Roots(roots), None, &args.server_name)?;
    let server = &args.server;
    let mut client = ppml_he::HeClient::connect_with(
        server,
        &tls,
        ppml_he::Mode::Auto,
        Some(Duration::from_secs(args.timeout)),
    )
    .with_context(|| format!("connecting to the HE server at {server}"))?;
    // The server reports the input shape and normalisation of the model it holds.
    let (input, norm) = client.input();
    let mut x = Vec::new();
    for path in &args.image {
        x.extend(image_tensor(input, norm, path)?.into_data());
    }
    let mut shape = vec![args.image.len()];
    shape.extend(input);
    let (logits, stats) = client.infer(&Tensor::new(shape, x)?)?;
    for (path, label) in args.image.iter().zip(logits.argmax_rows()) {
        println!("{}\t{label}", path.display());
    }
    eprintln!(
        "setup (TLS handshake, keys) {} bytes; queries {} bytes in {} rounds",
        client.setup_bytes(),
        stats.bytes_sent,
        stats.rounds
    );
    Ok(())
}

/// The CA in `dir` if `ca.pem` and `ca.key` are there, else a fresh one written there.
fn deployment_ca(dir: &Path) -> Result<Ca> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert.exists() && key.exists() {
        eprintln!("he-certs: signing with the existing CA {}", cert.display());
        return Ok(Ca::load(&cert, &key)?);
    }
    let ca = Ca::generate("ppml HE deployment CA")?;
    let (cert, key) = ca.write(dir)?;
    println!(
        "wrote {} (give it to clients: --ca) and {} (the CA's key: keep it offline)",
        cert.display(),
        key.display()
    );
    Ok(ca)
}

/// Runs `ppml he-certs`.
pub fn certs(args: CertsArgs) -> Result<()> {
    let ca = deployment_ca(&args.out)?;
    for name in &args.names {
        let (cert, key) = ca.issue(name, &args.out)?;
        println!(
            "wrote {} and {} (he-server --cert/--key; clients check --server-name {name})",
            cert.display(),
            key.display()
        );
    }
    Ok(())
}
