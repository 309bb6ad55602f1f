//! `ppml-train`: trains a [`ppml_nn::Model`] on MNIST with candle on the CPU.
//!
//! The trainer is generic over the model description: each layer of the description maps to one
//! candle operation, so any model the engine can run (a zoo model, an imported one) can be trained.
//! Weights start from the description's own values (see [`ppml_nn::zoo::init_weights`]), batches
//! are shuffled by a ChaCha RNG seeded from [`TrainConfig::seed`], and the optimiser is AdamW with
//! a cosine learning-rate schedule. The trained weights are written back into the description.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ppml_nn::idx::Dataset;
use ppml_nn::{engine, eval, Layer, Model};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// candle reported an error.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The model or data is unusable.
    #[error(transparent)]
    Nn(#[from] ppml_nn::NnError),
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch} (loss {loss}); try a lower --lr")]
    Diverged {
        /// The epoch (1-based).
        epoch: usize,
        /// The last loss.
        loss: f32,
    },
    /// A bad configuration.
    #[error("{0}")]
    Config(String),
}

/// Hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate (cosine-decayed to 0 over the run).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of the initialisation (applied by the caller) and of the shuffling.
    pub seed: u64,
}

impl TrainConfig {
    /// Defaults that reach the zoo's target accuracies.
    pub fn for_model(name: &str) -> Self {
        let (epochs, lr) = match name {
            "mlp" | "mlp-sq" => (12, 1e-3),
            "cnn" => (15, 2e-3),
            "chameleon" => (16, 1e-3),
            "lenet-sq" => (3, 5e-4),
            _ => (8, 1e-3),
        };
        Self {
            epochs,
            batch_size: 64,
            lr,
            weight_decay: 1e-4,
            seed: 1,
        }
    }
}

/// Reported after every epoch.
#[derive(Clone, Copy, Debug)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Of how many.
    pub epochs: usize,
    /// Mean training loss of the epoch.
    pub loss: f32,
    /// Accuracy on the test set after the epoch.
    pub test_accuracy: f64,
    /// Seconds the epoch took.
    pub seconds: f64,
}

/// Progress while training: `Step(images done in this epoch, images per epoch, running loss)`
/// after each batch, and `Epoch` after each epoch.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// A batch finished.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// Images done in this epoch.
        done: usize,
        /// Images per epoch.
        total: usize,
        /// Running mean loss of this epoch.
        loss: f32,
    },
    /// An epoch finished.
    Epoch(EpochReport),
}

/// Holds the trainable variables of a model, one or two per parameterised layer.
struct Params {
    vars: Vec<Vec<Var>>,
}

impl Params {
    fn from_model(model: &Model, dev: &Device) -> Result<Self, TrainError> {
        let vars = model
            .layers
            .iter()
            .map(|l| {
                l.params()
                    .into_iter()
                    .map(|(_, shape, data)| Var::from_slice(data, shape, dev))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { vars })
    }

    fn all(&self) -> Vec<Var> {
        self.vars.iter().flatten().cloned().collect()
    }

    fn write_back(&self, model: &mut Model) -> Result<(), TrainError> {
        for (layer, vars) in model.layers.iter_mut().zip(&self.vars) {
            for (slot, var) in layer.params_mut().into_iter().zip(vars) {
                *slot = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }
}

/// The model's forward pass as candle operations, on `[n, c, h, w]` input.
fn forward(model: &Model, params: &Params, x: &Tensor) -> Result<Tensor, TrainError> {
    let mut x = x.clone();
    for (layer, vars) in model.layers.iter().zip(&params.vars) {
        x = match (layer, vars.as_slice()) {
            (Layer::Conv2d(c), [w, b]) => x
                .conv2d(w, c.padding, c.stride, 1, 1)?
                .broadcast_add(&b.reshape((1, c.out_channels, 1, 1))?)?,
            (Layer::Linear(_), [w, b]) => x.matmul(&w.t()?)?.broadcast_add(b)?,
            (Layer::Relu, _) => x.relu()?,
            (Layer::Square, _) => x.sqr()?,
            (Layer::MaxPool2d(p), _) => x.max_pool2d_with_stride(p.kernel, p.stride)?,
            (Layer::AvgPool2d(p), _) => x.avg_pool2d_with_stride(p.kernel, p.stride)?,
            (Layer::Flatten, _) => x.flatten_from(1)?,
            (l, _) => {
                return Err(TrainError::Config(format!(
                    "layer {} has unexpected parameters",
                    l.op_name()
                )))
            }
        };
    }
    Ok(x)
}

/// Fraction of `data` that `model` classifies correctly with the f32 engine.
pub fn accuracy(model: &Model, data: &Dataset) -> Result<f64, TrainError> {
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(1000) {
        let end = (start + 1000).min(data.len());
        let x = eval::batch_tensor(model, data, start, end);
        let pred = engine::forward(model, &x)?.argmax_rows();
        correct += pred
            .iter()
            .zip(&data.labels[start..end])
            .filter(|(p, &l)| **p == usize::from(l))
            .count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

/// Trains `model` in place on `train`, measuring on `test` after every epoch.
pub fn train(
    model: &mut Model,
    train: &Dataset,
    test: &Dataset,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<EpochReport>, TrainError> {
    if cfg.epochs == 0 || cfg.batch_size == 0 || train.is_empty() {
        return Err(TrainError::Config(
            "epochs, batch size and training set must be non-empty".into(),
        ));
    }
    model.shapes()?;
    let dev = Device::Cpu;
    let params = Params::from_model(model, &dev)?;
    let mut opt = AdamW::new(
        params.all(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let [c, h, w] = model.input;
    let mut reports = Vec::with_capacity(cfg.epochs);
    let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
    let total_steps = (cfg.epochs * steps_per_epoch) as f64;
    for epoch in 1..=cfg.epochs {
        let t = Instant::now();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        for (step, idx) in order.chunks(cfg.batch_size).enumerate() {
            let global = ((epoch - 1) * steps_per_epoch + step) as f64;
            opt.set_learning_rate(
                cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * global / total_steps).cos()),
            );
            let mut pixels = Vec::with_capacity(idx.len() * c * h * w);
            for &i in idx {
                model.preprocess_into(train.image(i), &mut pixels);
            }
            let labels: Vec<u32> = idx.iter().map(|&i| u32::from(train.labels[i])).collect();
            let x = Tensor::from_vec(pixels, (idx.len(), c, h, w), &dev)?;
            let y = Tensor::from_vec(labels, idx.len(), &dev)?;
            let logits = forward(model, &params, &x)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let l = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            if !l.is_finite() {
                return Err(TrainError::Diverged { epoch, loss: l });
            }
            opt.backward_step(&loss)?;
            loss_sum += f64::from(l) * idx.len() as f64;
            seen += idx.len();
            progress(Progress::Step {
                epoch,
                done: seen,
                total: train.len(),
                loss: (loss_sum / seen as f64) as f32,
            });
        }
        params.write_back(model)?;
        let report = EpochReport {
            epoch,
            epochs: cfg.epochs,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            test_accuracy: accuracy(model, test)?,
            seconds: t.elapsed().as_secs_f64(),
        };
        progress(Progress::Epoch(report));
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppml_nn::zoo;

    /// A tiny synthetic task: the label is which quadrant holds the bright square.
    fn quadrants(n: usize) -> Dataset {
        let mut pixels = vec![0u8; n * 784];
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let q = i % 4;
            let (oy, ox) = ((q / 2) * 14 + 3, (q % 2) * 14 + 3);
            for y in oy..oy + 8 {
                for x in ox..ox + 8 {
                    pixels[i * 784 + y * 28 + x] = 255;
                }
            }
            labels.push(q as u8);
        }
        Dataset {
            rows: 28,
            cols: 28,
            pixels,
            labels,
        }
    }

    #[test]
    fn training_learns_and_matches_the_engine() {
        let data = quadrants(256);
        let mut m = zoo::architecture("chameleon").expect("zoo");
        zoo::init_weights(&mut m, 3);
        let before = accuracy(&m, &data).expect("acc");
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 32,
            lr: 2e-3,
            weight_decay: 0.0,
            seed: 5,
        };
        let reports = train(&mut m, &data, &data, &cfg, &mut |_| {}).expect("train");
        assert_eq!(reports.len(), 3);
        assert!(reports[2].loss < reports[0].loss, "{reports:?}");
        assert!(
            reports[2].test_accuracy > 0.95 && before < 0.6,
            "{before} {reports:?}"
        );

        // The candle forward pass and the reference engine agree on the trained weights.
        let x = eval::batch_tensor(&m, &data, 0, 8);
        let ours = engine::forward(&m, &x).expect("engine");
        let params = Params::from_model(&m, &Device::Cpu).expect("params");
        let cx = Tensor::from_vec(x.data().to_vec(), (8, 1, 28, 28), &Device::Cpu).expect("x");
        let theirs = forward(&m, &params, &cx)
            .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
            .expect("candle");
        for (a, b) in ours.data().iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }
}
