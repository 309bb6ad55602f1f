//! [`TeeBackend`]: the TEE as a [`Backend`] for `ppml eval --backend tee` and the benchmark.

use std::time::Instant;

use ppml_nn::backend::{Backend, BackendError, CallStats, SetupFacts, SetupReport};
use ppml_nn::{Model, Tensor};

use crate::client::TeeClient;
use crate::evidence::{self_measurement, ProviderChoice, SimulatedProvider};
use crate::quote::Measurement;
use crate::service::{model_digest, Enclave, EnclaveHandle, EnclaveOptions};
use crate::verify::VerifyPolicy;
use crate::{Result, TeeError};

#[derive(Debug)]
enum Target {
    /// Start the enclave service on a thread of this process (simulated evidence).
    InProcess(EnclaveOptions),
    /// Connect to a running `ppml enclave`.
    Remote {
        addr: String,
        policy: Box<VerifyPolicy>,
    },
}

/// Inference in an enclave behind an attested channel.
#[derive(Debug)]
pub struct TeeBackend {
    target: Target,
    enclave: Option<EnclaveHandle>,
    client: Option<TeeClient>,
}

impl TeeBackend {
    /// Starts the enclave service in this process on `127.0.0.1:0` during setup, with the
    /// simulated provider (the measurement is this binary's hash, which the client expects), and
    /// connects to it. Every check and the channel run for real; nothing is isolated.
    pub fn in_process(options: EnclaveOptions) -> Self {
        Self {
            target: Target::InProcess(EnclaveOptions {
                provider: ProviderChoice::Simulated,
                ..options
            }),
            enclave: None,
            client: None,
        }
    }

    /// Connects during setup to a running enclave at `addr`, requiring `expected_measurement`
    /// and accepting simulated evidence only if `allow_simulated`.
    pub fn connect(
        addr: impl Into<String>,
        expected_measurement: Measurement,
        allow_simulated: bool,
    ) -> Self {
        Self::connect_with_policy(
            addr,
            VerifyPolicy::new(expected_measurement, allow_simulated),
        )
    }

    /// Connects during setup to `addr` under a full policy (DCAP collateral, pinned signer, ...).
    pub fn connect_with_policy(addr: impl Into<String>, policy: VerifyPolicy) -> Self {
        Self {
            target: Target::Remote {
                addr: addr.into(),
                policy: Box::new(policy),
            },
            enclave: None,
            client: None,
        }
    }

    /// The attested client, after setup.
    pub fn client(&self) -> Option<&TeeClient> {
        self.client.as_ref()
    }

    fn start(&mut self, model: &Model) -> Result<(TeeClient, Vec<String>)> {
        self.client = None;
        self.enclave = None;
        let mut notes = Vec::new();
        let client = match &self.target {
            Target::InProcess(options) => {
                let measurement = self_measurement()?;
                let provider = SimulatedProvider::with_measurement(measurement)?;
                let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
                let enclave =
                    Enclave::new(listener, model.clone(), Box::new(provider), options.clone())?
                        .spawn()?;
                let addr = enclave.addr();
                self.enclave = Some(enclave);
                notes.push(format!("enclave=in-process thread at {addr}"));
                TeeClient::connect(addr, &VerifyPolicy::new(measurement, true))?
            }
            Target::Remote { addr, policy } => {
                notes.push(format!("enclave={addr}"));
                TeeClient::connect(addr.as_str(), policy)?
            }
        };
        let v = client.attestation();
        notes.insert(0, format!("tee_mode={}", v.mode.as_str()));
        notes.insert(1, format!("tee_label={}", v.mode.label()));
        notes.insert(2, "attested=true".to_string());
        notes.push(format!("measurement={}", v.measurement));
        notes.push(format!("signer={}", v.signer));
        if let Some(s) = &v.tcb_status {
            notes.push(format!("tcb_status={s}"));
            if !v.advisory_ids.is_empty() {
                notes.push(format!("advisories={}", v.advisory_ids.join(",")));
            }
        }
        notes.push(format!(
            "handshake_ms={:.3}",
            client.handshake_seconds() * 1e3
        ));
        Ok((client, notes))
    }
}

impl Backend for TeeBackend {
    fn name(&self) -> &str {
        "tee"
    }

    fn setup(&mut self, model: &Model) -> Result<SetupReport, BackendError> {
        let t = Instant::now();
        model.shapes()?;
        let (mut client, mut notes) = self.start(model)?;
        let info = client.model_info()?;
        if info.digest != model_digest(model) {
            return Err(Box::new(TeeError::Invalid(format!(
                "the enclave serves model `{}` whose weights differ from the model `{}` given to setup",
                info.name, model.name
            ))));
        }
        notes.push(format!("model={} (digest verified)", info.name));
        let bytes_sent = client.handshake_bytes() + client.channel_bytes();
        let facts = SetupFacts {
            isolation: Some(client.attestation().mode.label().to_string()),
            ..SetupFacts::default()
        };
        self.client = Some(client);
        Ok(SetupReport {
            seconds: t.elapsed().as_secs_f64(),
            bytes_sent,
            facts,
            notes,
        })
    }

    fn infer(&mut self, images: &Tensor) -> Result<(Tensor, CallStats), BackendError> {
        let client = self
            .client
            .as_mut()
            .ok_or("tee backend used before setup")?;
        let before = client.channel_bytes();
        let (logits, rounds) = client.infer_counted(images)?;
        Ok((
            logits,
            CallStats {
                bytes_sent: client.channel_bytes() - before,
                rounds,
                // The client and the enclave are the only two parties.
                client_bytes: client.channel_bytes() - before,
                ..CallStats::default()
            },
        ))
    }
}
