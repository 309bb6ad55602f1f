//! A minimal dense f32 tensor: a shape and row-major data.

use crate::{NnError, Result};

/// A dense row-major f32 tensor. Batches of images are `[n, c, h, w]`, logits `[n, classes]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; fails if the element counts differ.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(NnError::InputShape {
                got: vec![data.len()],
                expected: shape,
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The data, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The data, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, giving its data.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The size of the first (batch) dimension.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Elements per item of the batch.
    pub fn item_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Item `i` of the batch.
    pub fn item(&self, i: usize) -> &[f32] {
        let k = self.item_len();
        &self.data[i * k..(i + 1) * k]
    }

    /// Items `start..end` of the batch as a new tensor.
    pub fn slice_batch(&self, start: usize, end: usize) -> Tensor {
        let k = self.item_len();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Tensor {
            shape,
            data: self.data[start * k..end * k].to_vec(),
        }
    }

    /// Index of the largest element of each row of a `[n, classes]` tensor (first on ties).
    pub fn argmax_rows(&self) -> Vec<usize> {
        let k = self.item_len();
        if k == 0 {
            return vec![0; self.batch()];
        }
        self.data.chunks(k).map(argmax).collect()
    }
}

/// Index of the largest value (the first one on ties; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}
