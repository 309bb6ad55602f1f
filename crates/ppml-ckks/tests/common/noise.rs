//! Error bounds of decrypted CKKS results, derived from the parameters (ring degree, scale,
//! primes) instead of fixed constants.
//!
//! An error polynomial with independent coefficients of variance `v` decodes, in each slot, to
//! `sum_i e_i Re(zeta^(i j)) / scale`: `N` terms whose squared cosines average 1/2, so a real
//! Gaussian of standard deviation `sqrt(N v / 2) / scale` (the [`Error::gaussian`] part:
//! encoding rounding, encryption errors). Decoding is a ring homomorphism, so an error that is
//! a product of two such polynomials decodes to the product of their slot values (the
//! [`Error::product`] part): the rounding `r1 s` of every division by a prime (public-key
//! encryption, rescale, key switch), where the secret key's slot value `s_j` is the same in
//! every ciphertext, and a key switch's digits times its key's errors. A product of two
//! Gaussians has exponential, not Gaussian, tails (measured: fresh public-key errors reach 9
//! standard deviations over 10^5 slots), so it gets its own tail factor.
//!
//! A bound allows each part its tail at a chance of [`FAILURE`] that a correct implementation
//! exceeds it in any slot of one comparison: a real Gaussian exceeds `t` standard deviations with
//! probability below `exp(-t^2 / 2)`, so over `n` slots `t = sqrt(2 ln(n / FAILURE))` (about 8);
//! a complex Gaussian's modulus exceeds `a` times its root mean square with probability
//! `exp(-a^2)`, so each factor of a product stays within `sqrt(ln(n / FAILURE))` of its own and
//! the real part of the product within `sqrt(2) ln(n / FAILURE)` (about 42) of its standard
//! deviation. The two parts' bounds add. A wrong implementation (a lost bit of the scale, a wrong
//! rotation) errs by far more than either.

use ppml_ckks::CkksParameters;

/// The chance that a correct implementation fails one comparison of all slots.
pub const FAILURE: f64 = 1e-9;

/// Variance of a centred binomial error coefficient (eta = 21).
const ERROR_VARIANCE: f64 = 10.5;

/// Variance of a uniform ternary secret coefficient.
const SECRET_VARIANCE: f64 = 2.0 / 3.0;

/// Variance of a coefficient rounded to an integer (uniform in [-1/2, 1/2]).
const ROUNDING_VARIANCE: f64 = 1.0 / 12.0;

/// The standard deviations, in message units, of the two parts of a slot's error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Error {
    /// A Gaussian error.
    pub gaussian: f64,
    /// A product of two Gaussian polynomials' slot values.
    pub product: f64,
}

impl Error {
    /// The error of a sum of values with independent errors `self` and `other`.
    pub fn plus(self, other: Error) -> Error {
        Error {
            gaussian: self.gaussian.hypot(other.gaussian),
            product: self.product.hypot(other.product),
        }
    }

    /// The error of `k` times the value.
    pub fn times(self, k: f64) -> Error {
        Error {
            gaussian: self.gaussian * k.abs(),
            product: self.product * k.abs(),
        }
    }

    /// The largest error a correct implementation shows in any slot, but with chance
    /// [`FAILURE`].
    pub fn bound(self, params: &CkksParameters) -> f64 {
        let log = (params.slots() as f64 / FAILURE).ln();
        (2.0 * log).sqrt() * self.gaussian + std::f64::consts::SQRT_2 * log * self.product
    }
}

/// The error of a sum of values with independent errors.
pub fn sum(errors: &[Error]) -> Error {
    errors.iter().fold(Error::default(), |a, &e| a.plus(e))
}

/// The standard deviation, in message units at `scale`, of a slot of a polynomial whose
/// coefficients have variance `v`.
fn slot_sd(params: &CkksParameters, v: f64, scale: f64) -> f64 {
    (params.degree() as f64 / 2.0 * v).sqrt() / scale
}

/// A division by a modulus with rounding: `r0` Gaussian, `r1 s` a product (the variance of a
/// coefficient of `r1 s` is `N (1/12) (2/3)`).
fn rounding(params: &CkksParameters, scale: f64) -> Error {
    let n = params.degree() as f64;
    Error {
        gaussian: slot_sd(params, ROUNDING_VARIANCE, scale),
        product: slot_sd(params, n * ROUNDING_VARIANCE * SECRET_VARIANCE, scale),
    }
}

/// An encoding at `scale`: each coefficient's rounding to an integer.
pub fn encoding(params: &CkksParameters, scale: f64) -> Error {
    Error {
        gaussian: slot_sd(params, ROUNDING_VARIANCE, scale),
        product: 0.0,
    }
}

/// A fresh secret-key encryption of an encoding at `scale`: one error polynomial.
pub fn fresh_secret(params: &CkksParameters, scale: f64) -> Error {
    encoding(params, scale).plus(Error {
        gaussian: slot_sd(params, ERROR_VARIANCE, scale),
        product: 0.0,
    })
}

/// A fresh public-key encryption of an encoding at `scale`: `(v e + e0 + e1 s) / P` is below
/// one unit for every preset (P has 31 bits or more); the rounding of that division stays.
pub fn fresh_public(params: &CkksParameters, scale: f64) -> Error {
    encoding(params, scale).plus(rounding(params, scale))
}

/// A rescale to `scale` (the division by the dropped prime, with rounding).
pub fn rescale(params: &CkksParameters, scale: f64) -> Error {
    rounding(params, scale)
}

/// A key switch (relinearisation, rotation, conjugation) of a ciphertext at `level` and
/// `scale`. Hybrid key switching with one prime per digit: digit `j` (uniform in `[0, q_j)`,
/// second moment `q_j^2 / 3`) times its key's error polynomial, a product of `N` coefficients
/// each, divided by P; then the rounding of that division.
pub fn key_switch(params: &CkksParameters, level: usize, scale: f64) -> Error {
    let p: f64 = params.special().iter().map(|&q| q as f64).product();
    let digits: f64 = params.chain()[..=level]
        .iter()
        .map(|&q| (q as f64 / p).powi(2) / 3.0)
        .sum();
    let v = params.degree() as f64 * ERROR_VARIANCE * digits;
    Error {
        gaussian: 0.0,
        product: slot_sd(params, v, scale),
    }
    .plus(rounding(params, scale))
}

/// A relinearised and rescaled product at `level` and `scale` of values of magnitude at most 1
/// whose errors, each times the other value, sum to `factors` (`fa.plus(fb)` for independent
/// factors, `f.times(2.0)` for a square): those, the key switch at the product's scale, and
/// the rescale to `scale^2 / q_level`.
pub fn product(params: &CkksParameters, level: usize, scale: f64, factors: Error) -> Error {
    let squared = scale * scale;
    sum(&[
        factors,
        key_switch(params, level, squared),
        rescale(params, squared / params.chain()[level] as f64),
    ])
}
