//! The canonical embedding's "special" FFT: complex slot vectors <-> the coefficients of a real
//! polynomial of X^N + 1, evaluated at the roots zeta^(5^j). Its tables depend only on the ring
//! degree, so the parameters hold them; [`crate::encoding`] adds the scaling and the RNS.

/// A complex number (re, im) of f64.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    /// re + i im.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    pub(crate) fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
    pub(crate) fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
    pub(crate) fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    pub(crate) fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }
}

/// Precomputed tables of the special FFT for one ring degree.
#[derive(Debug, Clone)]
pub(crate) struct EncoderTables {
    /// The butterflies' twiddles: for the stage of length `len` (2, 4, ..., N/2), entries
    /// `len/2 - 1 ..` hold `exp(2 pi i k / 2N)` with `k = (5^j mod 4 len) · 2N / (4 len)`, for
    /// `j < len/2`.
    twiddles: Vec<Complex>,
}

impl EncoderTables {
    pub(crate) fn new(degree: usize) -> Self {
        let m = 2 * degree as u64;
        let slots = degree / 2;
        let mut rot_group = Vec::with_capacity(slots);
        let mut g = 1u64;
        for _ in 0..slots {
            rot_group.push(g);
            g = (g * 5) % m;
        }
        let roots: Vec<Complex> = (0..m)
            .map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / m as f64;
                Complex::new(a.cos(), a.sin())
            })
            .collect();
        let mut twiddles = Vec::with_capacity(slots);
        let mut len = 2;
        while len <= slots {
            let four_len = 4 * len;
            twiddles.extend(
                (0..len / 2)
                    .map(|j| roots[(rot_group[j] as usize % four_len) * (m as usize / four_len)]),
            );
            len *= 2;
        }
        Self { twiddles }
    }

    /// Evaluates u(Y) = sum u_k Y^k at the points zeta^(5^j) (decoding direction).
    pub(crate) fn fft(&self, v: &mut [Complex]) {
        let n = v.len();
        bit_reverse(v);
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let tw = &self.twiddles[half - 1..len - 1];
            for start in (0..n).step_by(len) {
                for (j, &t) in tw.iter().enumerate() {
                    let u = v[start + j];
                    let w = v[start + j + half].mul(t);
                    v[start + j] = u.add(w);
                    v[start + j + half] = u.sub(w);
                }
            }
            len *= 2;
        }
    }

    /// Inverse of [`Self::fft`] (encoding direction).
    pub(crate) fn ifft(&self, v: &mut [Complex]) {
        let n = v.len();
        let mut len = n;
        while len >= 2 {
            let half = len / 2;
            let tw = &self.twiddles[half - 1..len - 1];
            for start in (0..n).step_by(len) {
                for (j, &t) in tw.iter().enumerate() {
                    let a = v[start + j];
                    let b = v[start + j + half];
                    v[start + j] = a.add(b);
                    v[start + j + half] = a.sub(b).mul(t.conj());
                }
            }
            len /= 2;
        }
        bit_reverse(v);
        let inv = 1.0 / n as f64;
        v.iter_mut()
            .for_each(|x| *x = Complex::new(x.re * inv, x.im * inv));
    }
}

fn bit_reverse(v: &mut [Complex]) {
    let n = v.len();
    let bits = n.trailing_zeros();
    if bits == 0 {
        return;
    }
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The special FFT agrees with direct evaluation at zeta^(5^j).
    #[test]
    fn special_fft_matches_naive() {
        let degree = 64;
        let t = EncoderTables::new(degree);
        let slots = degree / 2;
        let u: Vec<Complex> = (0..slots)
            .map(|k| Complex::new((k as f64 * 0.37).sin(), (k as f64 * 0.11).cos()))
            .collect();
        let mut fast = u.clone();
        t.fft(&mut fast);
        let m = 2 * degree;
        let mut g = 1usize; // 5^j mod 2N
        for (j, f) in fast.iter().enumerate() {
            let mut acc = Complex::default();
            for (k, uk) in u.iter().enumerate() {
                let a = 2.0 * std::f64::consts::PI * ((g * k) % m) as f64 / m as f64;
                acc = acc.add(uk.mul(Complex::new(a.cos(), a.sin())));
            }
            g = g * 5 % m;
            assert!(
                (acc.re - f.re).abs() < 1e-9 && (acc.im - f.im).abs() < 1e-9,
                "slot {j}"
            );
        }
        let mut back = fast;
        t.ifft(&mut back);
        for (a, b) in back.iter().zip(&u) {
            assert!((a.re - b.re).abs() < 1e-9 && (a.im - b.im).abs() < 1e-9);
        }
    }
}
