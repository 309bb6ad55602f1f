//! [`ClientSpec`]: what the server tells the client at setup (the parameters and the public
//! shape of the plan, never the weights), and its validating decoder.

use ppml_ckks::CkksParameters;
use ppml_nn::model::Normalization;
use ppml_wire::{Cursor, Writer};

use crate::error::{HeError, Result};
use crate::layout::{Grid, Placement};
use crate::plan::{InputLayout, Plan};
use crate::wire::{ReadLen, WriteLen};

/// What the server tells the client at setup: parameters and the public shape of the plan
/// (the architecture; no weights).
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// Serialised CKKS parameters.
    pub params: Vec<u8>,
    /// `[c, h, w]` of an image.
    pub image: [usize; 3],
    /// How the client turns pixels into inputs (the model's normalisation).
    pub normalization: Normalization,
    /// Input layout (weights stripped).
    pub layout: InputLayout,
    /// Length of the input vector.
    pub input_len: usize,
    /// Level at which inputs are encrypted (the plan's depth: no wasted primes).
    pub level: usize,
    /// Number of logits.
    pub outputs: usize,
    /// Throughput mode: indices of the inputs the server reads.
    pub needed: Vec<u32>,
    /// Latency mode: rotations whose Galois keys the server needs, each with the highest level
    /// it is applied at (empty: no latency mode).
    pub rotations: Vec<(i64, usize)>,
    /// Latency mode's input (`None`: no latency mode).
    pub latency: Option<LatencyInput>,
    /// Throughput mode packs two images per slot (the real and the imaginary part), which needs
    /// the conjugation key.
    pub complex_packing: bool,
}

/// Latency mode's input: the input vector's layout and where its elements go in the slots.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyInput {
    /// The input vector (im2col or pixels).
    pub layout: InputLayout,
    /// Its placement in one or more ciphertexts.
    pub placement: Placement,
}

const SPEC_MAGIC: &[u8; 4] = b"PPHS";
const MAX_ITEMS: usize = 1 << 20;

fn write_layout(w: &mut Writer, l: &InputLayout) {
    match l {
        InputLayout::Pixels => w.u8(0),
        InputLayout::Im2col(c) => {
            w.u8(1);
            for v in [c.in_channels, c.out_channels, c.kernel, c.stride, c.padding] {
                w.len32(v);
            }
        }
    }
}

fn write_placement(w: &mut Writer, p: &Placement) {
    match p {
        Placement::Periodic { len } => {
            w.u8(0);
            w.len32(*len);
        }
        Placement::Grid(g) => {
            w.u8(1);
            for v in [
                g.channels,
                g.height,
                g.width,
                g.phase,
                g.row_stride,
                g.block,
            ] {
                w.len32(v);
            }
        }
    }
}

fn read_placement(r: &mut Cursor<'_>) -> Result<Placement> {
    match r.u8()? {
        0 => Ok(Placement::Periodic {
            len: r.u32_max(MAX_ITEMS, "latency input length out of range")?,
        }),
        1 => {
            let mut v = [0usize; 6];
            for x in &mut v {
                *x = r.u32_max(MAX_ITEMS, "latency grid out of range")?;
            }
            let [channels, height, width, phase, row_stride, block] = v;
            Ok(Placement::Grid(Grid {
                channels,
                height,
                width,
                phase,
                row_stride,
                block,
            }))
        }
        _ => Err(HeError::Malformed("unknown latency placement")),
    }
}

fn read_layout(r: &mut Cursor<'_>) -> Result<InputLayout> {
    match r.u8()? {
        0 => Ok(InputLayout::Pixels),
        1 => {
            let mut v = [0usize; 5];
            for x in &mut v {
                *x = r.u32_max(4096, "convolution geometry out of range")?;
            }
            if v[2] == 0 || v[3] == 0 {
                return Err(HeError::Malformed("zero kernel or stride"));
            }
            Ok(InputLayout::Im2col(ppml_nn::model::Conv2d {
                in_channels: v[0],
                out_channels: v[1],
                kernel: v[2],
                stride: v[3],
                padding: v[4],
                weight: Vec::new(),
                bias: Vec::new(),
            }))
        }
        _ => Err(HeError::Malformed("unknown input layout")),
    }
}

impl ClientSpec {
    /// The spec of throughput mode (complex packing, no latency mode) for `model` compiled into
    /// `plan` under `params`.
    pub fn throughput(params: &CkksParameters, model: &ppml_nn::Model, plan: &Plan) -> Self {
        Self {
            params: params.to_bytes(),
            image: model.input,
            normalization: model.normalization,
            layout: public_layout(&plan.layout),
            input_len: plan.input_len,
            level: plan.depth(),
            outputs: plan.outputs(),
            needed: plan.needed_inputs(),
            rotations: Vec::new(),
            latency: None,
            complex_packing: true,
        }
    }

    /// Whether the server set up throughput mode (which always packs two images per slot,
    /// [`Self::complex_packing`]).
    pub fn throughput_available(&self) -> bool {
        self.complex_packing
    }

    /// Serialises the spec.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(SPEC_MAGIC);
        w.blob(&self.params);
        self.image.iter().for_each(|&d| w.len32(d));
        w.f32(self.normalization.mean);
        w.f32(self.normalization.std);
        write_layout(&mut w, &self.layout);
        w.len32(self.input_len);
        w.len32(self.level);
        w.len32(self.outputs);
        w.len32(self.needed.len());
        self.needed.iter().for_each(|&j| w.u32(j));
        w.len32(self.rotations.len());
        self.rotations.iter().for_each(|&(r, level)| {
            w.i64(r);
            w.len32(level);
        });
        match &self.latency {
            None => w.u8(0),
            Some(l) => {
                w.u8(1);
                write_layout(&mut w, &l.layout);
                write_placement(&mut w, &l.placement);
            }
        }
        w.u8(u8::from(self.complex_packing));
        w.into_bytes()
    }

    /// Decodes and validates a spec (sizes, ranges, the parameters' security).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Cursor::new(bytes);
        if r.take(4)? != SPEC_MAGIC {
            return Err(HeError::Malformed("not a client spec"));
        }
        let params = r.blob()?.to_vec();
        let p = CkksParameters::from_bytes(&params)?;
        let mut image = [0usize; 3];
        for d in &mut image {
            *d = r.u32_max(4096, "image dimension out of range")?;
        }
        if image.iter().product::<usize>() > MAX_ITEMS {
            return Err(HeError::Malformed("image too large"));
        }
        let mut norm = [0f32; 2];
        for v in &mut norm {
            *v = r.f32()?;
        }
        let [mean, std] = norm;
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(HeError::Malformed(
                "normalisation not finite or std not positive",
            ));
        }
        let normalization = Normalization { mean, std };
        let layout = read_layout(&mut r)?;
        let input_len = r.u32_max(MAX_ITEMS * 64, "input length out of range")?;
        let level = r.u32_max(p.max_level(), "level above the parameters' chain")?;
        let outputs = r.u32_max(p.slots(), "more outputs than slots")?;
        let n = r.u32_max(MAX_ITEMS, "too many inputs")?;
        let needed = (0..n)
            .map(|_| {
                r.u32_max(input_len.saturating_sub(1), "input index out of range")
                    .map(|j| j as u32)
            })
            .collect::<Result<Vec<_>>>()?;
        let n = r.u32_max(p.slots(), "too many rotations")?;
        let rotations = (0..n)
            .map(|_| {
                let step = r.i64()?;
                Ok((
                    step,
                    r.u32_max(p.max_level(), "rotation level above the chain")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let latency = match r.u8()? {
            0 => None,
            1 => Some(LatencyInput {
                layout: read_layout(&mut r)?,
                placement: read_placement(&mut r)?,
            }),
            _ => return Err(HeError::Malformed("bad latency flag")),
        };
        let complex_packing = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(HeError::Malformed("bad packing flag")),
        };
        r.finish()?;
        let [c, h, w] = image;
        let layout_len = |l: &InputLayout| -> Result<usize> {
            match l {
                InputLayout::Pixels => Ok(c * h * w),
                InputLayout::Im2col(conv) => {
                    let (oh, ow) = conv
                        .output_hw(h, w)
                        .ok_or(HeError::Malformed("convolution does not fit the image"))?;
                    if conv.in_channels != c {
                        return Err(HeError::Malformed(
                            "convolution channels differ from the image's",
                        ));
                    }
                    Ok(conv.patch_len() * oh * ow)
                }
            }
        };
        if layout_len(&layout)? != input_len {
            return Err(HeError::Malformed("input length does not match the layout"));
        }
        if let Some(l) = &latency {
            if l.placement.len() != layout_len(&l.layout)? {
                return Err(HeError::Malformed(
                    "latency placement does not match its layout",
                ));
            }
            l.placement.validate(p.slots())?;
        }
        Ok(Self {
            params,
            image,
            normalization,
            layout,
            input_len,
            level,
            outputs,
            needed,
            rotations,
            latency,
            complex_packing,
        })
    }
}

/// Strips the weights from a layout so that the client holds only the architecture.
pub fn public_layout(layout: &InputLayout) -> InputLayout {
    match layout {
        InputLayout::Pixels => InputLayout::Pixels,
        InputLayout::Im2col(c) => {
            let mut c = c.clone();
            c.weight.clear();
            c.bias.clear();
            InputLayout::Im2col(c)
        }
    }
}
