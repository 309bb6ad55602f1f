//! Reading ONNX protobuf pieces: tensors (initializers and `Constant` values) and node
//! attributes, bounded and total.

use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};

/// The most elements one constant tensor may hold (1 GiB of f32).
const MAX_ELEMENTS: usize = 1 << 28;

/// A constant tensor: its dimensions and its values as f64 (lossless for f32 and for the small
/// integers of shapes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    /// Dimensions (empty for a scalar).
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Const {
    /// The dimensions without leading ones (`[1, 1, 8]` is `[8]`).
    pub fn squeezed_dims(&self) -> &[usize] {
        let lead = self.dims.iter().take_while(|&&d| d == 1).count();
        &self.dims[lead..]
    }

    /// The single value of a one-element tensor.
    pub fn scalar(&self) -> Option<f64> {
        match self.data.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}

/// Decodes a `TensorProto` (float, double, int32 or int64; data inline).
pub(crate) fn tensor(t: &TensorProto) -> Result<Const, String> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(
            "its data is stored outside the file (external data); save the model \
                    with its weights inside the .onnx file"
                .into(),
        );
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("negative dimension {d}"))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| format!("more than {MAX_ELEMENTS} elements"))?;
        dims.push(d);
    }
    let raw = &t.raw_data;
    let from_raw = |width: usize| -> Result<Option<Vec<[u8; 8]>>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() != n * width {
            return Err(format!(
                "raw data of {} bytes, {n} elements of {width} bytes need {}",
                raw.len(),
                n * width
            ));
        }
        Ok(Some(
            raw.chunks_exact(width)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..width].copy_from_slice(c);
                    b
                })
                .collect(),
        ))
    };
    let data: Vec<f64> = match t.data_type {
        1 => match from_raw(4)? {
            Some(words) => words
                .iter()
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            None => t.float_data.iter().map(|&v| f64::from(v)).collect(),
        },
        11 => match from_raw(8)? {
            Some(words) => words.iter().map(|b| f64::from_le_bytes(*b)).collect(),
            None => t.double_data.clone(),
        },
        6 => match from_raw(4)? {
            Some(words) => words
                .iter()
                .map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            None => t.int32_data.iter().map(|&v| f64::from(v)).collect(),
        },
        7 => match from_raw(8)? {
            Some(words) => words
                .iter()
                .map(|b| i64::from_le_bytes(*b) as f64)
                .collect(),
            None => t.int64_data.iter().map(|&v| v as f64).collect(),
        },
        other => {
            return Err(format!(
                "element type {} (ONNX data type {other}); the importer reads float, double, \
                 int32 and int64 tensors",
                data_type_name(other)
            ))
        }
    };
    if data.len() != n {
        return Err(format!(
            "{} values for dimensions {dims:?} ({n} elements)",
            data.len()
        ));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err("holds a NaN or infinite value".into());
    }
    Ok(Const { dims, data })
}

fn data_type_name(t: i32) -> &'static str {
    match t {
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        8 => "string",
        9 => "bool",
        10 => "float16",
        12 => "uint32",
        13 => "uint64",
        16 => "bfloat16",
        _ => "unsupported",
    }
}

/// A node's attributes, read with the types the specification gives them.
pub(crate) struct Attrs<'a>(&'a [AttributeProto]);

impl<'a> Attrs<'a> {
    pub fn of(node: &'a NodeProto) -> Self {
        Self(&node.attribute)
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }

    /// The first attribute not in `known`, if any.
    pub fn unknown(&self, known: &[&str]) -> Option<&'a str> {
        self.0
            .iter()
            .map(|a| a.name.as_str())
            .find(|n| !known.contains(n))
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == want as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(format!(
                "attribute {name} has type {}, the specification says {want:?}",
                a.r#type
            )),
        }
    }

    /// An integer attribute, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self
            .typed(name, AttributeType::Int)?
            .map_or(default, |a| a.i))
    }

    /// A float attribute, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .typed(name, AttributeType::Float)?
            .map_or(default, |a| a.f))
    }

    /// An integer-list attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, String> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.as_slice()))
    }

    /// A string attribute, if present.
    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    /// The value of a `Constant` node (`value`, `value_float(s)` or `value_int(s)`).
    pub fn constant(&self) -> Result<Const, String> {
        if let Some(a) = self.typed("value", AttributeType::Tensor)? {
            let t = a.t.as_ref().ok_or("attribute value holds no tensor")?;
            return tensor(t);
        }
        if let Some(a) = self.typed("value_float", AttributeType::Float)? {
            return Ok(Const {
                dims: vec![],
                data: vec![f64::from(a.f)],
            });
        }
        if let Some(a) = self.typed("value_int", AttributeType::Int)? {
            return Ok(Const {
                dims: vec![],
                data: vec![a.i as f64],
            });
        }
        if let Some(a) = self.typed("value_floats", AttributeType::Floats)? {
            return Ok(Const {
                dims: vec![a.floats.len()],
                data: a.floats.iter().map(|&v| f64::from(v)).collect(),
            });
        }
        if let Some(a) = self.typed("value_ints", AttributeType::Ints)? {
            return Ok(Const {
                dims: vec![a.ints.len()],
                data: a.ints.iter().map(|&v| v as f64).collect(),
            });
        }
        Err("a Constant needs a value, value_float(s) or value_int(s) attribute".into())
    }
}
