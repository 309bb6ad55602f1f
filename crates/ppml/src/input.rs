//! What the commands read from the user: a model by zoo name or file, an image file, the MNIST
//! test or training set.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ppml_nn::idx::{self, Dataset, Split};
use ppml_nn::model::Normalization;
use ppml_nn::{io, Model, Tensor};

/// The model `name`: a zoo name (its committed weights in `models_dir`, default the repository's
/// `models/`) or a model file (the `.safetensors` extension may be left out).
pub fn load_model(name: &str, models_dir: Option<PathBuf>) -> Result<Model> {
    let dir = models_dir.unwrap_or_else(io::default_models_dir);
    // `--model models/NAME` finds the `models/NAME.safetensors` that `ppml import` wrote.
    let with_ext = format!("{name}.safetensors");
    let name = if !Path::new(name).is_file() && Path::new(&with_ext).is_file() {
        with_ext.as_str()
    } else {
        name
    };
    io::resolve(name, &dir).with_context(|| format!("loading model `{name}`"))
}

/// Reads a grayscale image of the model's input size and normalises it.
pub fn image_tensor(input: [usize; 3], norm: Normalization, image: &Path) -> Result<Tensor> {
    let (w, h, pixels) = ppml_nn::image::load_gray(image)?;
    let [c, mh, mw] = input;
    if (w, h) != (mw, mh) || c != 1 {
        bail!(
            "{}: image is {w}x{h}, the model expects {mw}x{mh} grayscale",
            image.display()
        );
    }
    let x = pixels
        .iter()
        .map(|&p| (f32::from(p) / 255.0 - norm.mean) / norm.std)
        .collect();
    Ok(Tensor::new(vec![1, c, h, w], x)?)
}

/// The MNIST `split` from `data` (default: the repository's `data/mnist/`), cut to its first
/// `limit` images.
pub fn load_split(data: Option<PathBuf>, split: Split, limit: Option<usize>) -> Result<Dataset> {
    let dir = data.unwrap_or_else(idx::default_data_dir);
    let mut set = idx::load_mnist(&dir, split)?;
    if let Some(n) = limit {
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        set.truncate(n);
    }
    Ok(set)
}
