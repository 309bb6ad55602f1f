//! Support for the backends' tests against the f32 reference engine: deterministic inputs and
//! the one definition of "agrees with plain" for fixed-point backends.

use crate::Tensor;

/// `n` deterministic `[1, 28, 28]` inputs that look like normalised MNIST digits (mostly
/// background, some ink); `seed` varies them.
///
/// # Panics
/// Never for `n` that fits in memory (the shape always matches the data).
pub fn synthetic_digits(n: usize, seed: usize) -> Tensor {
    let data = (0..n * 784)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761) + seed * 97) % 1000;
            if h < 700 {
                -0.4242
            } else {
                (h as f32 / 1000.0) * 2.8 - 0.4242
            }
        })
        .collect();
    match Tensor::new(vec![n, 1, 28, 28], data) {
        Ok(t) => t,
        Err(e) => unreachable!("the data has the shape's length: {e}"),
    }
}

/// The largest absolute difference between `got` and `want` (same shape).
pub fn max_abs_diff(got: &Tensor, want: &Tensor) -> f32 {
    got.data()
        .iter()
        .zip(want.data())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
}

/// Checks fixed-point logits `got` against plain's `want`: every logit within `2e-3` of the
/// largest plain logit (at least 1; 16 fractional bits lose a few ulps per layer, amplified by
/// the weights), and the same predicted label unless plain's top two logits are closer than
/// the error. Returns the largest error and that scale. `what` names the case in failures.
///
/// # Panics
/// When the logits do not agree as above (this is an assertion for tests).
pub fn assert_agrees_with_plain(what: &str, got: &Tensor, want: &Tensor) -> (f32, f32) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let scale = want
        .data()
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1.0);
    let err = max_abs_diff(got, want);
    assert!(
        err < 2e-3 * scale,
        "{what}: max error {err} (scale {scale})"
    );
    for (i, (g, w)) in got.argmax_rows().iter().zip(want.argmax_rows()).enumerate() {
        if *g != w {
            let row = want.item(i);
            assert!(
                (row[*g] - row[w]).abs() <= 2.0 * err,
                "{what}: image {i} disagrees"
            );
        }
    }
    (err, scale)
}
