//! The command line: one module per command family, one `Args` struct per command; this module
//! only names the commands and dispatches to them.

mod bench;
mod eval;
mod he;
mod hybrid;
mod import;
mod models;
mod mpc;
mod predict;
mod relay;
mod tee;
mod tls;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::input::load_model;

/// Privacy-preserving MNIST inference: HE, MPC and TEE backends measured against plain inference.
#[derive(Debug, Parser)]
#[command(name = "ppml", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the model zoo.
    Models(models::ModelsArgs),
    /// Imports an ONNX model (opset 13+) as a ppml model file that `--model` accepts under every
    /// backend that supports its operators (see docs/onnx.md).
    Import(import::ImportArgs),
    /// Trains a zoo model on MNIST and writes its model file.
    Train(train::TrainArgs),
    /// Evaluates a model on the MNIST test set under a backend.
    Eval(eval::EvalArgs),
    /// Runs the comparison: every model under every backend, against plain in the same run.
    Bench(bench::BenchArgs),
    /// Runs the hybrid backend's server: holds the model, serves two-party inference (HE for
    /// linear layers, OT for ReLU and pooling) to clients over TLS 1.3, one thread per client.
    HybridServer(hybrid::ServerArgs),
    /// Runs the TEE enclave service: loads the model, attests, serves inference over the
    /// attested channel (simulated evidence outside SGX, clearly labelled).
    Enclave(tee::EnclaveArgs),
    /// Classifies one image through a running enclave after verifying its evidence.
    TeeClient(tee::TeeClientArgs),
    /// Writes a CA, a certificate and key per MPC party and client and a `parties.toml` for a
    /// one-machine quick start, or adds a client identity to a deployment.
    MpcCerts(mpc::MpcCertsArgs),
    /// Runs one MPC party as its own process: forms the mesh with the other two, shares the
    /// weights once (party 0 owns them), then serves client sessions until SIGTERM.
    Party(mpc::PartyArgs),
    /// Serves encrypted inference over TLS 1.3: clients send CKKS evaluation keys and
    /// ciphertexts; the server never receives a secret key.
    HeServer(he::ServerArgs),
    /// Classifies 28x28 images through an `he-server` (checking its certificate): encrypts
    /// them, sends the ciphertexts, decrypts the logits. One image uses latency mode, several
    /// throughput mode.
    HeClient(he::ClientArgs),
    /// Quick start for `he-server`: writes a CA (`ca.pem`, `ca.key`) and a server certificate
    /// and key per name (or signs new ones with the CA already in the folder).
    HeCerts(he::CertsArgs),
    /// Emulates a network link in user space: forwards connections to targets, delaying and
    /// rate-limiting each direction (loopback, lan or wan; see docs/links.md).
    Relay(relay::RelayArgs),
    /// Classifies one 28x28 grayscale image (PNG or binary PGM, white digit on black).
    Predict(predict::PredictArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Models(args) => models::run(args),
        Command::Import(args) => import::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Bench(args) => bench::run(args),
        Command::HybridServer(args) => hybrid::serve(&args),
        Command::Enclave(args) => tee::enclave(args),
        Command::TeeClient(args) => tee::client(args),
        Command::MpcCerts(args) => mpc::mpc_certs(args),
        Command::Party(args) => {
            let models_dir = args.models_dir.clone();
            mpc::party(args, |name| load_model(name, models_dir.clone()))
        }
        Command::HeServer(args) => he::server(args),
        Command::HeClient(args) => he::client(args),
        Command::HeCerts(args) => he::certs(args),
        Command::Relay(args) => relay::run(&args),
        Command::Predict(args) => predict::run(args),
    }
}
