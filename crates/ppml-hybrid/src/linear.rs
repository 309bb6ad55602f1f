//! Linear layers (convolution, dense) on additive shares with the exact RLWE scheme of
//! `ppml-rlwe`, laid out as in Cheetah (Huang et al., USENIX Security 2022, section 4.1): the
//! client's share of `C_g` input channels goes into one polynomial, `X = sum x[c][h][w]
//! X^(c HW + h W + w)`; the server's kernels of `M_g` output channels into another,
//! `K = sum w[m][c][i][j] X^(m S + O - c HW - i W - j)`; the product's coefficient
//! `m S + O + h W + w` is then output `(m, h, w)` of the stride-1 valid convolution of that
//! group, and no other term lands there (`O = (C_g - 1) HW + (k - 1) W + k - 1`,
//! `S = O + HW`). A dense layer is the 1x1 convolution of a 1x1 map with `C` = inputs.
//! Padding is added to both shares locally (zeros are shares of zero); strides pick outputs.
//!
//! The server sums the products over input groups for each block of output channels,
//! subtracts a uniform mask `R`, re-randomises and floods (`ppml_rlwe::Accumulator::finish`),
//! and keeps `R` plus `W x_0 + b` (its own share's part, in the clear) as its share; the client
//! decrypts and keeps the targeted coefficients. One round trip per layer.

use std::sync::Arc;

use ppml_rlwe::{keep_coefficients, Accumulator, Params, PlainPoly, PublicKey, SecretKey};

use crate::error::{HybridError, Result};
use crate::fixed::FRAC_BITS;
use crate::messages::{result_words, upload_words, LinearResults, LinearUploads};
use crate::party::Party;
use crate::prg::Prg;

/// The geometry of a convolution (a dense layer is `h = w = k = stride = 1`, `pad = 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels.
    pub c: usize,
    /// Input height (unpadded).
    pub h: usize,
    /// Input width (unpadded).
    pub w: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Output channels.
    pub m: usize,
}

impl ConvGeom {
    /// A dense layer `inputs -> outputs`.
    pub fn dense(inputs: usize, outputs: usize) -> Self {
        Self {
            c: inputs,
            h: 1,
            w: 1,
            pad: 0,
            k: 1,
            stride: 1,
            m: outputs,
        }
    }

    fn hp(&self) -> usize {
        self.h + 2 * self.pad
    }

    fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }

    /// Output height and width.
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.hp() - self.k) / self.stride + 1,
            (self.wp() - self.k) / self.stride + 1,
        )
    }

    /// Input elements per image.
    pub fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Output elements per image.
    pub fn out_len(&self) -> usize {
        let (oh, ow) = self.out_hw();
        self.m * oh * ow
    }

    fn check(&self) -> Result<()> {
        if self.k == 0 || self.stride == 0 || self.hp() < self.k || self.wp() < self.k {
            return Err(HybridError::Unsupported {
                what: format!("convolution geometry {self:?}"),
            });
        }
        Ok(())
    }

    /// This party's share padded: `[c][hp][wp]`.
    fn padded(&self, x: &[u64]) -> Vec<u64> {
        let (hp, wp, p) = (self.hp(), self.wp(), self.pad);
        let mut out = vec![0u64; self.c * hp * wp];
        for c in 0..self.c {
            for h in 0..self.h {
                let src = &x[(c * self.h + h) * self.w..][..self.w];
                out[(c * hp + h + p) * wp + p..][..self.w].copy_from_slice(src);
            }
        }
        out
    }
}

/// How a layer is packed into polynomials of the ring degree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Input channels per uploaded polynomial.
    pub cg: usize,
    /// Output channels per result.
    pub mg: usize,
    /// Offset between output channels in a result.
    pub s: usize,
    /// Offset of output (0, 0) of the first channel.
    pub o: usize,
    /// Uploads per image.
    pub groups: usize,
    /// Results per image.
    pub blocks: usize,
}

impl Packing {
    /// The packing with the fewest words on the wire: an upload is one polynomial, a result one
    /// polynomial (`c_1`) and its kept coefficients of `c_0`.
    pub fn choose(geom: &ConvGeom, degree: usize) -> Result<Self> {
        geom.check()?;
        let hw = geom.hp() * geom.wp();
        let tail = (geom.k - 1) * geom.wp() + geom.k - 1;
        let mut best: Option<(usize, Packing)> = None;
        for cg in 1..=geom.c {
            let o = (cg - 1) * hw + tail;
            let s = o + hw;
            if s > degree {
                break;
            }
            let mg = ((degree - s) / s + 1).min(geom.m);
            let (groups, blocks) = (geom.c.div_ceil(cg), geom.m.div_ceil(mg));
            let (oh, ow) = geom.out_hw();
            let cost = (groups + blocks) * degree + blocks * mg * oh * ow;
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((
                    cost,
                    Packing {
                        cg,
                        mg,
                        s,
                        o,
                        groups,
                        blocks,
                    },
                ));
            }
        }
        best.map(|(_, p)| p)
            .ok_or_else(|| HybridError::Unsupported {
                what: format!("a channel of {hw} values does not fit degree {degree}"),
            })
    }

    fn target(&self, geom: &ConvGeom, mi: usize, oh: usize, ow: usize) -> usize {
        mi * self.s + self.o + oh * geom.stride * geom.wp() + ow * geom.stride
    }

    /// The coefficients of a result that hold its outputs: channel by channel (`mg` of them),
    /// row by row, the order of the layer's output.
    pub fn kept(&self, geom: &ConvGeom) -> Vec<usize> {
        let (oh, ow) = geom.out_hw();
        (0..self.mg)
            .flat_map(|mi| (0..oh).flat_map(move |r| (0..ow).map(move |c| (mi, r, c))))
            .map(|(mi, r, c)| self.target(geom, mi, r, c))
            .collect()
    }
}

/// A layer as the server holds it: kernels as plaintext polynomials and the integer weights.
pub struct ServerLinear {
    geom: ConvGeom,
    pack: Packing,
    /// `kernels[g * blocks + b]`.
    kernels: Vec<PlainPoly>,
    /// Fixed-point weights `[m][c][k][k]`.
    weights: Vec<i64>,
    /// Biases with twice the fractional bits.
    bias: Vec<u64>,
}

/// Fixed-point weight (16 fractional bits).
fn fixed_weight(w: f32) -> i64 {
    (f64::from(w) * f64::from(1u32 << FRAC_BITS)).round() as i64
}

impl ServerLinear {
    /// Encodes the weights `[m][c][k][k]` and biases `[m]` of a layer.
    pub fn new(params: &Params, geom: ConvGeom, weight: &[f32], bias: &[f32]) -> Result<Self> {
        let pack = Packing::choose(&geom, params.degree())?;
        let kk = geom.k * geom.k;
        if weight.len() != geom.m * geom.c * kk || bias.len() != geom.m {
            return Err(HybridError::Shape {
                what: "layer weights",
                left: weight.len(),
                right: geom.m * geom.c * kk,
            });
        }
        let weights: Vec<i64> = weight.iter().map(|&w| fixed_weight(w)).collect();
        let (hw, wp) = (geom.hp() * geom.wp(), geom.wp());
        let mut kernels = Vec::with_capacity(pack.groups * pack.blocks);
        for g in 0..pack.groups {
            for b in 0..pack.blocks {
                let mut k = vec![0i64; params.degree()];
                for mi in 0..pack.mg {
                    let m = b * pack.mg + mi;
                    if m >= geom.m {
                        break;
                    }
                    for ci in 0..pack.cg {
                        let c = g * pack.cg + ci;
                        if c >= geom.c {
                            break;
                        }
                        for i in 0..geom.k {
                            for j in 0..geom.k {
                                let idx = mi * pack.s + pack.o - (ci * hw + i * wp + j);
                                k[idx] = weights[((m * geom.c + c) * geom.k + i) * geom.k + j];
                            }
                        }
                    }
                }
                kernels.push(PlainPoly::new(params, &k)?);
            }
        }
        let two_f = f64::from(1u32 << FRAC_BITS).powi(2);
        let bias = bias
            .iter()
            .map(|&b| ((f64::from(b) * two_f).round() as i64) as u64)
            .collect();
        Ok(Self {
            geom,
            pack,
            kernels,
            weights,
            bias,
        })
    }

    /// The layer's geometry.
    pub fn geom(&self) -> ConvGeom {
        self.geom
    }

    /// `W x + b` on one image's share in the clear (wrapping), `[m][oh][ow]`.
    fn plain(&self, x: &[u64], with_bias: bool) -> Vec<u64> {
        let g = &self.geom;
        let xp = g.padded(x);
        let (hp, wp) = (g.hp(), g.wp());
        let (oh, ow) = g.out_hw();
        let mut out = vec![0u64; g.out_len()];
        for m in 0..g.m {
            for y in 0..oh {
                for z in 0..ow {
                    let mut acc = if with_bias { self.bias[m] } else { 0 };
                    for c in 0..g.c {
                        for i in 0..g.k {
                            let row = &xp[(c * hp + y * g.stride + i) * wp + z * g.stride..];
                            let wrow = &self.weights[((m * g.c + c) * g.k + i) * g.k..][..g.k];
                            for (xv, wv) in row.iter().zip(wrow) {
                                acc = acc.wrapping_add(xv.wrapping_mul(*wv as u64));
                            }
                        }
                    }
                    out[(m * oh + y) * ow + z] = acc;
                }
            }
        }
        out
    }
}

/// The HE material of a session: the client's keys, or the server's copy of the public key.
pub enum HeKeys {
    /// The client's secret key.
    Client(SecretKey),
    /// The server's view: the client's public key.
    Server(PublicKey),
}

/// Polynomial of one upload: group `g` of an image's padded share.
fn group_poly(geom: &ConvGeom, pack: &Packing, xp: &[u64], g: usize, degree: usize) -> Vec<u64> {
    let hw = geom.hp() * geom.wp();
    let mut poly = vec![0u64; degree];
    for ci in 0..pack.cg {
        let c = g * pack.cg + ci;
        if c >= geom.c {
            break;
        }
        poly[ci * hw..(ci + 1) * hw].copy_from_slice(&xp[c * hw..(c + 1) * hw]);
    }
    poly
}

impl Party {
    /// The client's side of a linear layer on `images` images (shares `[n][in_len]`):
    /// uploads its encrypted share, decrypts the masked products; returns its output shares
    /// `[n][out_len]` before truncation (twice the fractional bits).
    pub fn linear_client(
        &mut self,
        params: &Arc<Params>,
        sk: &SecretKey,
        geom: &ConvGeom,
        x: &[u64],
        images: usize,
    ) -> Result<Vec<u64>> {
        let pack = Packing::choose(geom, params.degree())?;
        let mut up = LinearUploads::new(upload_words(params), pack.groups, images);
        for img in x.chunks_exact(geom.in_len()).take(images) {
            let xp = geom.padded(img);
            for g in 0..pack.groups {
                up.push(&sk.encrypt(&group_poly(geom, &pack, &xp, g, params.degree()))?);
            }
        }
        self.link.send(up.encode())?;
        let kept = pack.kept(geom);
        let width = result_words(params, kept.len());
        let res = LinearResults::decode(width, pack.blocks, images, self.link.recv()?)?;
        let block_len = kept.len();
        let mut out = vec![0u64; images * geom.out_len()];
        for (img, cts) in res.images().enumerate() {
            let y = &mut out[img * geom.out_len()..(img + 1) * geom.out_len()];
            for (b, ct) in cts.enumerate() {
                // The kept coefficients are the block's outputs in order, `mg` channels (the
                // last block's channels past the layer's are dropped).
                let dec = sk.decrypt_kept(ct, &kept)?;
                let start = b * block_len;
                let end = (start + block_len).min(y.len());
                y[start..end].copy_from_slice(&dec[..end - start]);
            }
        }
        Ok(out)
    }

    /// The server's side of a linear layer: returns its output shares before truncation.
    pub fn linear_server(
        &mut self,
        params: &Arc<Params>,
        pk: &PublicKey,
        layer: &ServerLinear,
        x: &[u64],
        images: usize,
    ) -> Result<Vec<u64>> {
        let (geom, pack) = (&layer.geom, &layer.pack);
        let up =
            LinearUploads::decode(upload_words(params), pack.groups, images, self.link.recv()?)?;
        let (oh, ow) = geom.out_hw();
        let kept = pack.kept(geom);
        let mut rng = Prg::from_os();
        let mut reply = LinearResults::new(result_words(params, kept.len()), pack.blocks, images);
        let mut out = Vec::with_capacity(images * geom.out_len());
        for (img, cts) in up.ciphertexts(params).enumerate() {
            let cts = cts?;
            let mut y = layer.plain(&x[img * geom.in_len()..(img + 1) * geom.in_len()], true);
            for b in 0..pack.blocks {
                let mut acc = Accumulator::new(params);
                for (g, ct) in cts.iter().enumerate() {
                    acc.add_product(ct, &layer.kernels[g * pack.blocks + b]);
                }
                let mask = rng.u64s(params.degree());
                reply.push(&keep_coefficients(params, &acc.finish(pk, &mask)?, &kept)?);
                for mi in 0..pack.mg {
                    let m = b * pack.mg + mi;
                    if m >= geom.m {
                        break;
                    }
                    for r in 0..oh {
                        for c in 0..ow {
                            let v = &mut y[(m * oh + r) * ow + c];
                            *v = v.wrapping_add(mask[pack.target(geom, mi, r, c)]);
                        }
                    }
                }
            }
            out.extend(y);
        }
        self.link.send(reply.encode())?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::OtCount;
    use crate::party::testing::run2;

    fn check_layer(geom: ConvGeom, images: usize) -> Result<()> {
        let params = Params::default_set()?;
        let kk = geom.k * geom.k;
        let mut rng = Prg::new(21);
        let weight: Vec<f32> = rng
            .u64s(geom.m * geom.c * kk)
            .iter()
            .map(|v| (*v % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let bias: Vec<f32> = rng
            .u64s(geom.m)
            .iter()
            .map(|v| (*v % 200) as f32 / 100.0 - 1.0)
            .collect();
        let layer = ServerLinear::new(&params, geom, &weight, &bias)?;
        // Inputs: fixed-point values in [-4, 4), shared at random.
        let x: Vec<u64> = rng
            .u64s(images * geom.in_len())
            .iter()
            .map(|v| ((*v % (8 << FRAC_BITS)) as i64 - (4 << FRAC_BITS)) as u64)
            .collect();
        let x0 = rng.u64s(x.len());
        let x1: Vec<u64> = x.iter().zip(&x0).map(|(a, b)| a.wrapping_sub(*b)).collect();
        let want: Vec<u64> = x
            .chunks_exact(geom.in_len())
            .flat_map(|img| layer.plain(img, true))
            .collect();
        let sk = SecretKey::generate(&params)?;
        let pk = sk.public_key()?;
        let (p1, p2) = (params.clone(), params.clone());
        let (a, b) = run2(
            OtCount::default(),
            move |p| p.linear_server(&p1, &pk, &layer, &x0, images),
            move |p| p.linear_client(&p2, &sk, &geom, &x1, images),
        )?;
        assert_eq!(a.len(), want.len());
        for (k, w) in want.iter().enumerate() {
            assert_eq!(a[k].wrapping_add(b[k]), *w, "output {k} of {geom:?}");
        }
        Ok(())
    }

    #[test]
    fn convolutions_agree_with_the_plain_product() -> Result<()> {
        // LeNet's first and second convolutions, and a strided padded one (Chameleon's).
        check_layer(
            ConvGeom {
                c: 1,
                h: 28,
                w: 28,
                pad: 0,
                k: 5,
                stride: 1,
                m: 20,
            },
            1,
        )?;
        check_layer(
            ConvGeom {
                c: 20,
                h: 12,
                w: 12,
                pad: 0,
                k: 5,
                stride: 1,
                m: 50,
            },
            1,
        )?;
        check_layer(
            ConvGeom {
                c: 1,
                h: 28,
                w: 28,
                pad: 2,
                k: 5,
                stride: 2,
                m: 5,
            },
            2,
        )
    }

    #[test]
    fn dense_layers_agree_with_the_plain_product() -> Result<()> {
        check_layer(ConvGeom::dense(800, 500), 1)?;
        check_layer(ConvGeom::dense(100, 10), 3)
    }

    #[test]
    fn packing_keeps_outputs_apart() -> Result<()> {
        let p = Packing::choose(
            &ConvGeom {
                c: 1,
                h: 28,
                w: 28,
                pad: 0,
                k: 5,
                stride: 1,
                m: 20,
            },
            8192,
        )?;
        assert_eq!((p.cg, p.mg, p.s, p.o), (1, 9, 900, 116));
        assert!(Packing::choose(
            &ConvGeom {
                c: 1,
                h: 100,
                w: 100,
                pad: 0,
                k: 3,
                stride: 1,
                m: 1
            },
            8192
        )
        .is_err());
        Ok(())
    }
}
