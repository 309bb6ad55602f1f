//! `server=`: the client of a running `ppml he-server` behind the `Backend` interface.
//!
//! The registry has no option for this client (the CLI has `ppml he-client` for it), so the
//! bindings wrap `ppml_he::HeClient` themselves; the protocol is all in `ppml-he`. The client
//! connects, generates its keys and sends the evaluation keys in `setup`; the server's model is
//! the one that runs, and `setup` checks that the model given (which says how to normalise
//! pixels) takes the same input with the same normalisation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ppml_he::{HeClient, Mode};
use ppml_nn::backend::{Backend, BackendError, CallStats, SetupReport};
use ppml_nn::{Model, Tensor};

/// The client of an `he-server` at an address.
pub struct HeRemote {
    addr: String,
    ca: PathBuf,
    timeout: Duration,
    client: Option<HeClient>,
}

impl HeRemote {
    /// A client of the server at `addr` (its certificate, for the name `he-server`, must chain
    /// to the CA certificate in the file `ca`) that waits at most `timeout` on any read or
    /// write; it connects in `setup`.
    pub fn new(addr: String, ca: PathBuf, timeout: Duration) -> Self {
        Self {
            addr,
            ca,
            timeout,
            client: None,
        }
    }
}

impl Backend for HeRemote {
    fn name(&self) -> &str {
        "he"
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        let t = Instant::now();
        self.client = None;
        let roots = ppml_tls::read_certs(&self.ca)?;
        let tls = ppml_tls::Connector::new(&ppml_tls::Trust::Roots(roots), None, "he-server")?;
        let client =
            HeClient::connect_with(self.addr.as_str(), &tls, Mode::Auto, Some(self.timeout))?;
        let (input, normalization) = client.input();
        if input != model.input || normalization != model.normalization {
            return Err(format!(
                "the he-server at {} holds a model with input {input:?} and normalisation \
                 {normalization:?}; {} has input {:?} and normalisation {:?}",
                self.addr, model.name, model.input, model.normalization
            )
            .into());
        }
        let report = SetupReport {
            seconds: t.elapsed().as_secs_f64(),
            bytes_sent: client.setup_bytes(),
            facts: client.facts(),
            notes: vec![format!("client of the he-server at {}", self.addr)],
        };
        self.client = Some(client);
        Ok(report)
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        let client = self
            .client
            .as_mut()
            .ok_or("he backend used before setup(model)")?;
        Ok(client.infer(images)?)
    }
}
