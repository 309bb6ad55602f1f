"""ONNX import of models built with the `onnx` package, checked against onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import ppml
from conftest import normalise

rng = np.random.default_rng(17)


def uniform(shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def build(square: bool) -> onnx.ModelProto:
    """Conv 6x5x5 stride 2 -> ReLU (or x*x) -> max (or average) pool 2 -> Flatten -> Gemm 10,
    with an input of symbolic batch, as torch.onnx.export writes such a network."""
    act = helper.make_node("Mul", ["c", "c"], ["a"], name="/act/Mul") if square else \
        helper.make_node("Relu", ["c"], ["a"], name="/act/Relu")
    pool = "AveragePool" if square else "MaxPool"
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c"], name="/conv/Conv",
                         kernel_shape=[5, 5], strides=[2, 2], pads=[0, 0, 0, 0]),
        act,
        helper.make_node(pool, ["a"], ["p"], name=f"/pool/{pool}", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    inits = [
        numpy_helper.from_array(uniform((6, 1, 5, 5), 25), "w1"),
        numpy_helper.from_array(uniform((6,), 25), "b1"),
        numpy_helper.from_array(uniform((10, 6 * 6 * 6), 216), "w2"),
        numpy_helper.from_array(uniform((10,), 216), "b2"),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("square", [False, True], ids=["relu-maxpool", "square-avgpool"])
def test_import_matches_onnxruntime(tmp_path, test_set, square):
    proto = build(square)
    path = tmp_path / "small.onnx"
    onnx.save(proto, str(path))
    model = ppml.import_onnx(path)
    assert model.name == "small" and model.input_shape == (1, 28, 28)
    assert model.is_polynomial == square

    x = normalise(test_set.images[:200])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-4)
    # Raw pixels are normalised with MNIST's statistics (the importer's default).
    np.testing.assert_allclose(model.predict(test_set.images[:200]), expected, rtol=1e-4,
                               atol=1e-4)
    # Random inputs too, not only digits.
    r = rng.normal(size=(16, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(model.predict(r), session.run(None, {"input": r})[0], rtol=1e-4,
                               atol=1e-4)

    # The imported model under a secure backend.
    name = "he" if square else "mpc3"
    b = ppml.backend(name, batch=100) if square else ppml.backend(name)
    b.setup(model)
    logits, _ = b.infer(test_set.images[:100])
    assert np.mean(logits.argmax(1) == expected[:100].argmax(1)) >= 0.99


def test_import_from_bytes_and_options(tmp_path, test_set):
    proto = build(False)
    model = ppml._ppml.import_onnx_bytes(proto.SerializeToString(), name="mem", mean=0.5, std=0.25)
    assert model.name == "mem" and model.normalization == pytest.approx((0.5, 0.25))
    x = test_set.images[:10]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": normalise(x, 0.5, 0.25)})[0]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-4)


def test_unsupported_operator_names_the_node(tmp_path):
    proto = build(False)
    proto.graph.node[1].op_type = "Sigmoid"
    proto.graph.node[1].name = "/act/Sigmoid"
    path = tmp_path / "sigmoid.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ppml.ModelError, match="/act/Sigmoid"):
        ppml.import_onnx(path)
