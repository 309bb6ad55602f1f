//! `ppml enclave` and `ppml tee-client`: the TEE service and its one-image client.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ppml_tee::channel::DEFAULT_MAX_FRAME;
use ppml_tee::{
    DcapPolicy, Enclave, EnclaveOptions, Measurement, ModelSource, TeeClient, VerifyPolicy,
};

use super::predict::print_prediction;
use crate::input::{image_tensor, load_model};

/// Arguments of `ppml enclave`.
#[derive(Debug, Args)]
pub struct EnclaveArgs {
    /// Zoo name or model file (under Gramine: the file on the encrypted mount).
    #[arg(long)]
    model: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: String,
    /// Under Gramine: read the model from this trusted plaintext file the first time and
    /// write it to `--model` on the encrypted mount.
    #[arg(long)]
    provision_from: Option<PathBuf>,
    /// The model file is sealed with `ppml-tee`'s sealing; this is its 32-byte key file.
    #[arg(long)]
    sealing_key: Option<PathBuf>,
    /// Folder of the zoo's weights.
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

/// Arguments of `ppml tee-client`.
#[derive(Debug, Args)]
pub struct TeeClientArgs {
    /// Address of the enclave.
    #[arg(long)]
    enclave: String,
    /// The enclave measurement (64 hex digits) to require.
    #[arg(long)]
    measurement: Measurement,
    /// Accept simulated evidence (no hardware isolation).
    #[arg(long)]
    allow_simulated: bool,
    /// Intel's DCAP collateral for the enclave's platform (the JSON `dcap-qvl` reads), to verify
    /// a real SGX quote offline; without it an SGX quote is refused. Only `UpToDate`
    /// platforms are accepted.
    #[arg(long)]
    collateral: Option<PathBuf>,
    /// The image (28x28 PNG or binary PGM).
    #[arg(long)]
    image: PathBuf,
    /// Seconds to wait for the enclave on any read or write before giving up.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

/// Runs `ppml enclave` until the process is stopped.
pub fn enclave(args: EnclaveArgs) -> Result<()> {
    let path = PathBuf::from(&args.model);
    let source = match (args.provision_from, args.sealing_key) {
        (Some(plain), None) => ModelSource::Provisioned {
            sealed: path,
            plain,
        },
        (None, Some(key)) => ModelSource::Sealed { path, key },
        (None, None) => ModelSource::Model(load_model(&args.model, args.models_dir)?),
        (Some(_), Some(_)) => bail!("--provision-from and --sealing-key exclude each other"),
    };
    let enclave = Enclave::bind(
        source,
        &args.listen,
        EnclaveOptions {
            log: true,
            ..EnclaveOptions::default()
        },
    )?;
    eprintln!("enclave: {}", enclave.mode().label());
    if let Some(m) = enclave.measurement() {
        eprintln!("measurement: {m}");
    }
    eprintln!("listening on {}", enclave.local_addr()?);
    enclave.run()?;
    Ok(())
}

/// Runs `ppml tee-client`: attests the enclave, then classifies one image through it.
pub fn client(args: TeeClientArgs) -> Result<()> {
    let mut policy = VerifyPolicy::new(args.measurement, args.allow_simulated);
    if let Some(path) = &args.collateral {
        let dcap = DcapPolicy::from_collateral_file(path)
            .with_context(|| format!("reading the DCAP collateral {}", path.display()))?;
        policy = policy.with_dcap(dcap);
    }
    let addr = &args.enclave;
    let timeout = Duration::from_secs(args.timeout);
    let mut client = TeeClient::connect_with(addr, &policy, DEFAULT_MAX_FRAME, timeout)
        .with_context(|| format!("attesting the enclave at {addr}"))?;
    eprintln!("attested: {}", client.attestation().mode.label());
    let info = client.model_info()?;
    let input = info.input.map(|d| d as usize);
    // The enclave reports the input shape and normalisation of the model it holds.
    let logits = client.infer(&image_tensor(input, info.normalization, &args.image)?)?;
    print_prediction(&logits);
    Ok(())
}
