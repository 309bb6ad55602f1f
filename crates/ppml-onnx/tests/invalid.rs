//! What the importer refuses, and how: unsupported operators and attributes named with their
//! node, malformed graphs, truncated or garbage files; never a panic. Also the input shape and
//! normalisation rules.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]
#![allow(clippy::panic, reason = "test helpers fail the test on error")]

use std::path::{Path, PathBuf};

use ppml_nn::model::Normalization;
use ppml_onnx::{import_bytes, import_file, import_proto, ImportOptions, OnnxError};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn node(op: &str, inputs: &[&str], name: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![format!("{name}_out")],
        attribute: attrs,
        ..NodeProto::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..AttributeProto::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..AttributeProto::default()
    }
}

fn init(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: values,
        ..TensorProto::default()
    }
}

fn shape_init(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: 7,
        int64_data: values.to_vec(),
        ..TensorProto::default()
    }
}

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("batch".into()),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

/// A model whose input `x` is `[N, 1, 4, 4]` (or `input` when given) and whose output is the
/// last node's.
fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    input: Option<ValueInfoProto>,
) -> ModelProto {
    let out = nodes
        .last()
        .map(|n| n.output[0].clone())
        .unwrap_or_else(|| "x".into());
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![input.unwrap_or_else(|| value("x", &[None, Some(1), Some(4), Some(4)]))],
            output: vec![value(&out, &[None, Some(10)])],
            ..GraphProto::default()
        }),
        ..ModelProto::default()
    }
}

/// Conv 1->2 3x3 on the 4x4 input, then Flatten and Gemm 8->10: a valid base.
fn conv_fc(extra: Vec<NodeProto>) -> (Vec<NodeProto>, Vec<TensorProto>) {
    let mut nodes = vec![node("Conv", &["x", "w"], "conv", vec![])];
    nodes.extend(extra);
    let last = nodes.last().map(|n| n.output[0].clone()).expect("node");
    nodes.push(node("Flatten", &[&last], "flat", vec![]));
    nodes.push(node(
        "Gemm",
        &["flat_out", "fc", "fcb"],
        "fc",
        vec![int("transB", 1)],
    ));
    let inits = vec![
        init("w", &[2, 1, 3, 3], vec![0.1; 18]),
        init("fc", &[10, 8], vec![0.01; 80]),
        init("fcb", &[10], vec![0.0; 10]),
    ];
    (nodes, inits)
}

fn unsupported(result: Result<ppml_onnx::Imported, OnnxError>) -> (String, String, String) {
    match result {
        Err(e @ OnnxError::Unsupported { .. }) => {
            let msg = e.to_string();
            let OnnxError::Unsupported { op, node, .. } = e else {
                unreachable!()
            };
            (op, node, msg)
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("expected Unsupported, got a model"),
    }
}

#[test]
fn the_base_model_imports() {
    let (nodes, inits) = conv_fc(vec![node("Relu", &["conv_out"], "relu", vec![])]);
    let m = import_proto(&model(nodes, inits, None), &ImportOptions::default()).expect("valid");
    assert_eq!(m.model.input, [1, 4, 4]);
    assert_eq!(m.model.classes().expect("shapes"), 10);
}

#[test]
fn committed_unsupported_files_name_operator_node_and_backends() {
    let (op, node, msg) = unsupported(import_file(
        &data("unsupported_op.onnx"),
        &ImportOptions::default(),
    ));
    assert_eq!((op.as_str(), node.as_str()), ("Sigmoid", "/act/Sigmoid"));
    for b in ["plain", "he", "mpc2", "mpc3", "tee"] {
        assert!(msg.contains(b), "{msg}");
    }
    let (op, node, msg) = unsupported(import_file(
        &data("unsupported_attr.onnx"),
        &ImportOptions::default(),
    ));
    assert_eq!((op.as_str(), node.as_str()), ("Conv", "/conv2/Conv"));
    assert!(msg.contains("group=2"), "{msg}");
}

/// Nodes, initializers, and the operator, node and message fragment the error must name.
type Case = (
    Vec<NodeProto>,
    Vec<TensorProto>,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn unsupported_graphs_are_named() {
    let opts = ImportOptions::default();
    let cases: Vec<Case> = vec![
        {
            // A residual connection: the conv output used again after the Relu.
            let (n, i) = conv_fc(vec![
                node("Relu", &["conv_out"], "relu", vec![]),
                node("Add", &["relu_out", "conv_out"], "skip", vec![]),
            ]);
            (n, i, "Add", "skip", "earlier activation")
        },
        {
            let (n, i) = conv_fc(vec![
                node("Relu", &["conv_out"], "relu", vec![]),
                node(
                    "BatchNormalization",
                    &["relu_out", "s", "b", "m", "v"],
                    "bn",
                    vec![],
                ),
            ]);
            let mut i = i;
            for name in ["s", "b", "m", "v"] {
                i.push(init(name, &[2], vec![1.0, 1.0]));
            }
            (n, i, "BatchNormalization", "bn", "follows none")
        },
        {
            let (mut n, i) = conv_fc(vec![]);
            n[0].attribute.push(ints("pads", &[1, 1, 0, 0]));
            (n, i, "Conv", "conv", "same padding on all four sides")
        },
        {
            let (mut n, i) = conv_fc(vec![]);
            n[0].attribute.push(ints("pads", &[3, 3, 3, 3]));
            (n, i, "Conv", "conv", "less than the kernel")
        },
        {
            let (mut n, i) = conv_fc(vec![]);
            n[0].attribute.push(ints("dilations", &[2, 2]));
            (n, i, "Conv", "conv", "dilations")
        },
        {
            let (mut n, i) = conv_fc(vec![]);
            n[0].attribute.push(int("frobnicate", 1));
            (n, i, "Conv", "conv", "attribute frobnicate")
        },
        {
            let (n, i) = conv_fc(vec![node("Softmax", &["conv_out"], "sm", vec![])]);
            (n, i, "Softmax", "sm", "plain and tee could compute it")
        },
        {
            let (n, mut i) = conv_fc(vec![node("Reshape", &["conv_out", "shape"], "rs", vec![])]);
            i.push(shape_init("shape", &[-1, 2, 4, 1]));
            (n, i, "Reshape", "rs", "not a flatten")
        },
        {
            let (n, mut i) = conv_fc(vec![node("Mul", &["conv_out", "k"], "mul", vec![])]);
            i.push(init("k", &[2, 2, 2], vec![2.0; 8]));
            (n, i, "Mul", "mul", "folded only")
        },
        {
            let (n, mut i) = conv_fc(vec![node("Sub", &["k", "conv_out"], "sub", vec![])]);
            i.push(init("k", &[], vec![1.0]));
            (n, i, "Sub", "sub", "left operand")
        },
        {
            let (n, mut i) = conv_fc(vec![node("Pow", &["conv_out", "e"], "pow", vec![])]);
            i.push(init("e", &[], vec![3.0]));
            (n, i, "Pow", "pow", "only x^2")
        },
        {
            let mut n = vec![
                node("Flatten", &["x"], "flat0", vec![]),
                node("Gemm", &["fc", "flat0_out"], "fc", vec![]),
            ];
            n[1].attribute.push(int("transB", 1));
            (
                n,
                vec![init("fc", &[10, 16], vec![0.0; 160])],
                "Gemm",
                "fc",
                "input A",
            )
        },
    ];
    for (nodes, inits, op, name, needle) in cases {
        let (got_op, got_node, msg) = unsupported(import_proto(&model(nodes, inits, None), &opts));
        assert_eq!((got_op.as_str(), got_node.as_str()), (op, name), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn malformed_graphs_are_errors() {
    let opts = ImportOptions::default();
    let mut old = {
        let (n, i) = conv_fc(vec![]);
        model(n, i, None)
    };
    old.opset_import[0].version = 11;
    assert!(matches!(
        import_proto(&old, &opts),
        Err(OnnxError::Opset { found: 11, .. })
    ));
    // An input nobody produces.
    let (mut n, i) = conv_fc(vec![]);
    n[0].input[1] = "nowhere".into();
    let err = import_proto(&model(n, i, None), &opts).expect_err("dangling input");
    assert!(matches!(err, OnnxError::Malformed { .. }), "{err}");
    // A cycle.
    let (mut n, i) = conv_fc(vec![node("Relu", &["fc_out"], "relu", vec![])]);
    n[0].input[0] = "relu_out".into();
    let err = import_proto(&model(n, i, None), &opts).expect_err("cycle");
    assert!(err.to_string().contains("cycle"), "{err}");
    // Weights stored outside the file.
    let (n, mut i) = conv_fc(vec![]);
    i[0].data_location = Some(1);
    i[0].float_data.clear();
    let err = import_proto(&model(n, i, None), &opts).expect_err("external");
    assert!(err.to_string().contains("external data"), "{err}");
    // Raw data of the wrong length.
    let (n, mut i) = conv_fc(vec![]);
    i[0].float_data.clear();
    i[0].raw_data = vec![0; 7];
    let err = import_proto(&model(n, i, None), &opts).expect_err("raw");
    assert!(err.to_string().contains("raw data"), "{err}");
    // Weights that do not fit the input.
    let (n, mut i) = conv_fc(vec![]);
    i[1] = init("fc", &[10, 9], vec![0.0; 90]);
    let err = import_proto(&model(n, i, None), &opts).expect_err("shape");
    assert!(matches!(err, OnnxError::Malformed { .. }), "{err}");
    // An absurd image size.
    let (n, i) = conv_fc(vec![]);
    let huge = value("x", &[None, Some(1), Some(1 << 20), Some(1 << 20)]);
    let err = import_proto(&model(n, i, Some(huge)), &opts).expect_err("huge");
    assert!(err.to_string().contains("elements accepted"), "{err}");
    // No graph at all.
    let err = import_proto(&ModelProto::default(), &opts).expect_err("empty");
    assert!(matches!(err, OnnxError::Opset { found: 0, .. }), "{err}");
}

#[test]
fn truncated_garbage_and_huge_files_are_typed_errors_never_panics() {
    let err =
        import_file(&data("truncated.onnx"), &ImportOptions::default()).expect_err("truncated");
    assert!(matches!(err, OnnxError::Decode { .. }), "{err}");
    assert!(matches!(
        import_bytes(b"", &ImportOptions::default()),
        Err(OnnxError::Decode { .. })
    ));
    assert!(import_bytes(b"\x89PNG\r\n\x1a\n garbage", &ImportOptions::default()).is_err());
    // Every prefix length (in steps) and deterministic byte flips of every committed model:
    // whatever the result, no panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for name in [
        "cnn_relu",
        "mlp_matmul",
        "bn_dropout",
        "he_square",
        "gap_pads",
        "he_pool",
    ] {
        let bytes = std::fs::read(data(&format!("{name}.onnx"))).expect("read");
        for len in (0..bytes.len()).step_by(bytes.len() / 200 + 1) {
            let _ = import_bytes(&bytes[..len], &ImportOptions::default());
        }
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % b.len() as u64) as usize;
                b[at] ^= (state >> 32) as u8 | 1;
            }
            let _ = import_bytes(&b, &ImportOptions::default());
        }
    }
    // A sparse file just over the cap is refused before it is read.
    let huge = std::env::temp_dir().join(format!("ppml-onnx-huge-{}.onnx", std::process::id()));
    let f = std::fs::File::create(&huge).expect("create");
    f.set_len(ppml_onnx::MAX_ONNX_BYTES + 1).expect("set_len");
    let err = import_file(&huge, &ImportOptions::default()).expect_err("too large");
    let _ = std::fs::remove_file(&huge);
    assert!(matches!(err, OnnxError::TooLarge { .. }), "{err}");
}

#[test]
fn input_shape_and_normalisation_come_from_the_model_or_the_options() {
    let flat = |f: i64| {
        let nodes = vec![node("Gemm", &["x", "fc"], "fc", vec![int("transB", 1)])];
        let inits = vec![init("fc", &[10, f], vec![0.01; 10 * f as usize])];
        model(nodes, inits, Some(value("x", &[None, Some(f)])))
    };
    // A flat 784-feature input reads as a 28x28 image, with a flatten in front.
    let m = import_proto(&flat(784), &ImportOptions::default()).expect("784");
    assert_eq!(m.model.input, [1, 28, 28]);
    assert_eq!(m.model.layers[0].op_name(), "flatten");
    // Any other flat input needs the shape.
    let err = import_proto(&flat(100), &ImportOptions::default()).expect_err("needs a shape");
    assert!(err.to_string().contains("image shape"), "{err}");
    let opts = ImportOptions {
        input: Some([1, 10, 10]),
        ..ImportOptions::default()
    };
    assert_eq!(
        import_proto(&flat(100), &opts).expect("given").model.input,
        [1, 10, 10]
    );
    let wrong = ImportOptions {
        input: Some([1, 9, 9]),
        ..ImportOptions::default()
    };
    assert!(import_proto(&flat(100), &wrong).is_err());

    // Normalisation: MNIST's by default, the metadata's if present, the options' above all.
    let (n, i) = conv_fc(vec![]);
    let mut m = model(n, i, None);
    let default = import_proto(&m, &ImportOptions::default()).expect("default");
    assert_eq!(default.model.normalization, Normalization::default());
    m.metadata_props = vec![
        StringStringEntryProto {
            key: "ppml.mean".into(),
            value: "0.5".into(),
        },
        StringStringEntryProto {
            key: "ppml.std".into(),
            value: "0.25".into(),
        },
    ];
    let meta = import_proto(&m, &ImportOptions::default()).expect("metadata");
    assert_eq!(
        meta.model.normalization,
        Normalization {
            mean: 0.5,
            std: 0.25
        }
    );
    let given = Normalization {
        mean: 0.0,
        std: 1.0,
    };
    let opts = ImportOptions {
        normalization: Some(given),
        name: Some("mine".into()),
        ..ImportOptions::default()
    };
    let over = import_proto(&m, &opts).expect("options");
    assert_eq!(over.model.normalization, given);
    assert_eq!(over.model.name, "mine");
    // Symbolic image dimensions need the shape.
    let (n, i) = conv_fc(vec![]);
    let sym = model(n, i, Some(value("x", &[None, Some(1), None, None])));
    assert!(import_proto(&sym, &ImportOptions::default()).is_err());
    let opts = ImportOptions {
        input: Some([1, 4, 4]),
        ..ImportOptions::default()
    };
    assert_eq!(
        import_proto(&sym, &opts).expect("given").model.input,
        [1, 4, 4]
    );
}

#[test]
fn normalisation_inside_the_model_joins_the_clients() {
    // (x - 0.1307) / 0.3081 as the first two nodes, then the base model on the result.
    let (mut nodes, mut inits) = conv_fc(vec![]);
    nodes[0].input[0] = "div_out".into();
    nodes.insert(0, node("Div", &["sub_out", "s"], "div", vec![]));
    nodes.insert(0, node("Sub", &["x", "m"], "sub", vec![]));
    inits.push(init("m", &[], vec![0.1307]));
    inits.push(init("s", &[1], vec![0.3081]));
    let inside = import_proto(&model(nodes, inits, None), &ImportOptions::default()).expect("ok");
    let (n, i) = conv_fc(vec![]);
    let outside = import_proto(&model(n, i, None), &ImportOptions::default()).expect("ok");
    assert_eq!(inside.model.layers, outside.model.layers);
    let (a, b) = (inside.model.normalization, outside.model.normalization);
    assert!(
        (a.mean - b.mean).abs() < 1e-6 && (a.std - b.std).abs() < 1e-6,
        "{a:?} {b:?}"
    );
    assert!(
        inside
            .notes
            .iter()
            .any(|n| n.contains("normalises its input itself")),
        "{:?}",
        inside.notes
    );
    // Given statistics come first, then the model's own operations.
    let opts = ImportOptions {
        normalization: Some(Normalization {
            mean: 0.5,
            std: 0.5,
        }),
        ..ImportOptions::default()
    };
    let (mut nodes, mut inits) = conv_fc(vec![]);
    nodes[0].input[0] = "mul_out".into();
    nodes.insert(0, node("Mul", &["x", "two"], "mul", vec![]));
    inits.push(init("two", &[], vec![2.0]));
    let n = import_proto(&model(nodes, inits, None), &opts)
        .expect("ok")
        .model
        .normalization;
    // 2 (p - 0.5) / 0.5 = (p - 0.5) / 0.25
    assert!(
        (n.mean - 0.5).abs() < 1e-6 && (n.std - 0.25).abs() < 1e-6,
        "{n:?}"
    );
}
