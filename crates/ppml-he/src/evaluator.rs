//! The evaluator of one model: [`Prepared`] compiles the model for a mode, chooses the
//! parameters and encodes the weights, once for every client; [`SessionEvaluator`] adds one
//! client's evaluation keys and runs its requests. It never holds a secret key. (Not to be
//! confused with `ppml_ckks::Evaluator`, the ciphertext arithmetic it drives.)

use std::sync::Arc;

use ppml_ckks::CkksParameters;
use ppml_nn::Model;

use crate::error::{HeError, Result};
use crate::keys::{ClientKeys, EvaluationKeys};
use crate::latency::LatencyServer;
use crate::mode::Mode;
use crate::params::{choose, describe, PlannerGoals};
use crate::plan::{InputLayout, Plan, PoolStrategy};
use crate::spec::{public_layout, ClientSpec, LatencyInput};
use crate::throughput::{peak_memory, ThroughputServer, MEMORY_BUDGET};

/// A model compiled for one mode: parameters, the throughput plan, the encoded latency weights
/// and the spec for clients. It is the same for every client, so a server prepares it once per
/// mode and shares it between sessions ([`SessionEvaluator::new`]).
#[derive(Debug)]
pub struct Prepared {
    params: Arc<CkksParameters>,
    /// Throughput mode, when its batches fit the memory budget.
    throughput: Option<ThroughputServer>,
    latency: Option<LatencyServer>,
    spec: ClientSpec,
    notes: Vec<String>,
}

/// The server of one model for one client: a [`Prepared`] model and the client's keys.
#[derive(Debug)]
pub struct SessionEvaluator {
    prepared: Arc<Prepared>,
    keys: Option<ClientKeys>,
}

impl Prepared {
    /// Compiles `model` for `mode`, chooses parameters and encodes the latency weights.
    pub fn new(model: &Model, mode: Mode) -> Result<Self> {
        let plan = Plan::compile(model, PoolStrategy::SumStage, false)?;
        let depth = plan.depth();
        // Both modes share the parameters: the smallest ring for the depth. Latency mode lays
        // its vectors out in as many ciphertexts as they need; auto falls back to throughput
        // mode when latency mode is refused.
        let params = choose(&PlannerGoals::new(depth))?;
        let mut latency = None;
        let mut latency_refusal = None;
        if mode != Mode::Throughput {
            match LatencyServer::new(&params, model) {
                Ok(s) => latency = Some(s),
                Err(e) if mode == Mode::Latency => return Err(e),
                Err(e) => latency_refusal = Some(e.to_string()),
            }
        }
        let peak = peak_memory(&params, &plan);
        let throughput_ok = peak <= MEMORY_BUDGET;
        if !throughput_ok && (mode == Mode::Throughput || latency.is_none()) {
            return Err(HeError::Unsupported {
                mode: "throughput",
                model: model.name.clone(),
                reason: format!(
                    "one batch would hold {:.1} GiB of ciphertexts (budget {} GiB) at N={} \
                     ({} multiply-accumulates of ciphertexts per batch of {} images){}",
                    peak as f64 / f64::from(1u32 << 30),
                    MEMORY_BUDGET >> 30,
                    params.degree(),
                    plan.mac_count(),
                    2 * params.slots(),
                    latency_refusal
                        .map(|r| format!("; and {r}"))
                        .unwrap_or_default()
                ),
            });
        }
        let spec = ClientSpec {
            rotations: latency
                .as_ref()
                .map(|s| s.rotations().to_vec())
                .unwrap_or_default(),
            latency: latency.as_ref().map(|s| LatencyInput {
                layout: public_layout(&s.plan().layout),
                placement: s.input_placement(),
            }),
            complex_packing: throughput_ok,
            ..ClientSpec::throughput(&params, model, &plan)
        };
        let effective = match (mode, latency.is_some()) {
            (Mode::Throughput, _) | (Mode::Auto, false) => "throughput",
            (Mode::Latency, _) => "latency",
            (Mode::Auto, true) => "auto (latency for 1 image, throughput otherwise)",
        };
        let mut notes = vec![
            format!("mode: {effective}"),
            format!("params: {}", describe(&params)),
            format!(
                "plan: {} stages, depth {depth}, {} multiply-accumulates",
                plan.stages.len(),
                plan.mac_count()
            ),
        ];
        if throughput_ok {
            notes.push(format!(
                "throughput mode: {} images per ciphertext (real and imaginary parts of {} slots), {} input ciphertexts, at most {:.1} GiB of ciphertexts held (budget {} GiB)",
                2 * params.slots(),
                params.slots(),
                spec.needed.len(),
                peak as f64 / f64::from(1u32 << 30),
                MEMORY_BUDGET >> 30,
            ));
        }
        if let Some(s) = &latency {
            let slots = params.slots();
            notes.push(format!(
                "latency mode: im2col input {}, {} input ciphertext(s) ({:?}), {:.0} MB of encoded weights, {} rotations per image, Galois keys for {} rotations {:?}",
                matches!(s.plan().layout, InputLayout::Im2col(_)),
                s.input_placement().ciphertexts(slots),
                s.input_placement(),
                s.weight_bytes() as f64 / 1e6,
                s.rotations_per_image(),
                s.rotations().len(),
                s.rotations()
            ));
        } else if mode != Mode::Throughput {
            notes.push(
                "latency mode unavailable for this model: throughput mode for every call".into(),
            );
        }
        Ok(Self {
            throughput: throughput_ok.then(|| ThroughputServer::new(&params, plan)),
            params,
            latency,
            spec,
            notes,
        })
    }

    /// The spec to send to clients.
    pub fn spec(&self) -> &ClientSpec {
        &self.spec
    }

    /// Human-readable facts about the preparation (mode, parameters, plan, layouts, budgets).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl SessionEvaluator {
    /// Compiles `model` for `mode`, chooses parameters and encodes the latency weights; returns
    /// the server and the spec to send to the client.
    pub fn prepare(model: &Model, mode: Mode) -> Result<(Self, ClientSpec)> {
        Ok(Self::new(Arc::new(Prepared::new(model, mode)?)))
    }

    /// A server for one more client of a prepared model; returns it and the spec to send.
    pub fn new(prepared: Arc<Prepared>) -> (Self, ClientSpec) {
        let spec = prepared.spec.clone();
        let server = Self {
            prepared,
            keys: None,
        };
        (server, spec)
    }

    /// Decodes the client's serialised evaluation keys (once, for both modes) and checks that
    /// they serve the prepared modes.
    pub fn install_keys(&mut self, keys: &EvaluationKeys) -> Result<()> {
        let p = &self.prepared;
        let decoded = ClientKeys::decode(&p.params, keys)?;
        if let Some(l) = &p.latency {
            l.check_keys(&decoded)?;
        }
        if let Some(t) = &p.throughput {
            // Complex packing (set whenever throughput mode is on) needs the conjugation key.
            if decoded.gk.is_none() {
                return Err(HeError::Malformed(
                    "complex packing needs the conjugation key",
                ));
            }
            t.check_keys(&decoded)?;
        }
        self.keys = Some(decoded);
        Ok(())
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<CkksParameters> {
        &self.prepared.params
    }

    /// Throughput mode: one batch's input ciphertexts to its output ciphertexts.
    pub fn handle_batch(&self, request: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        match (&self.prepared.throughput, &self.keys) {
            (Some(t), Some(keys)) => t.handle(request, keys),
            _ => Err(HeError::NotSetUp),
        }
    }

    /// Latency mode: one image's ciphertexts to its logits' ciphertext.
    pub fn handle_one(&self, request: &[Vec<u8>]) -> Result<Vec<u8>> {
        match (&self.prepared.latency, &self.keys) {
            (Some(l), Some(keys)) => l.handle(request, keys),
            _ => Err(HeError::NotSetUp),
        }
    }
}
