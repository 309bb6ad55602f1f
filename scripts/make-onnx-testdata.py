#!/usr/bin/env python3
"""Writes the ONNX test models of `crates/ppml-onnx/tests/data/` and their reference outputs.

The models mirror what `torch.onnx.export` (opset 13+) emits for small MNIST networks: Conv with
weight and bias initializers and explicit `dilations/group/kernel_shape/pads/strides`, Relu,
MaxPool, Flatten(axis=1) or Reshape with a constant shape, Gemm with transB=1 (nn.Linear),
BatchNormalization (with `momentum`, as torch writes it; at opset 13 the reference evaluator reads
that as training mode, so the model with batch norms is opset 17) and Dropout, Pow(x, 2) for the HE-friendly square activation. Weights are random (PyTorch's default
uniform initialisation, fixed seed), so the files are deterministic.

For every valid model, `<name>.ref.json` holds the logits of the ONNX reference evaluator
(`onnx.reference.ReferenceEvaluator`) on the first MNIST test images, normalised with the MNIST
statistics the importer uses by default. The Rust tests read these files; they never run Python.

Usage (from the repository root): pip install onnx numpy && python3 scripts/make-onnx-testdata.py
"""

import gzip
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "crates", "ppml-onnx", "tests", "data")
MNIST = os.path.join(ROOT, "data", "mnist")
TRAIN = 2000
IMAGES = 16
MEAN, STD = 0.1307, 0.3081
# torch 2.x exports opset 17 by default; two models keep the oldest opset read, 13.
OPSET = 17

rng = np.random.default_rng(20261123)


def uniform(shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


class Builder:
    """A graph in the making: nodes named like torch's exporter (`/conv1/Conv`)."""

    def __init__(self, batch="batch", shape=(1, 28, 28), opset=OPSET):
        self.opset = opset
        self.nodes, self.inits = [], []
        self.input = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *shape])
        self.x = "input"
        self.batch = batch

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, name, n_out=1, **attrs):
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0]

    def act(self, op, name, extra=(), **attrs):
        self.x = self.node(op, [self.x, *extra], name, **attrs)
        return self.x

    def conv(self, name, cin, cout, k, stride=1, pad=0, bias=True):
        w = self.init(f"{name}.weight", uniform((cout, cin, k, k), cin * k * k))
        ins = [w]
        if bias:
            ins.append(self.init(f"{name}.bias", uniform((cout,), cin * k * k)))
        return self.act("Conv", f"/{name}/Conv", ins, dilations=[1, 1], group=1,
                        kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def linear(self, name, fin, fout):
        """nn.Linear as torch exports it: Gemm(x, W, b) with transB=1."""
        w = self.init(f"{name}.weight", uniform((fout, fin), fin))
        b = self.init(f"{name}.bias", uniform((fout,), fin))
        return self.act("Gemm", f"/{name}/Gemm", [w, b], alpha=1.0, beta=1.0, transB=1)

    def batchnorm(self, name, c):
        s = self.init(f"{name}.weight", rng.uniform(0.5, 1.5, c).astype(np.float32))
        b = self.init(f"{name}.bias", rng.uniform(-0.2, 0.2, c).astype(np.float32))
        m = self.init(f"{name}.running_mean", rng.uniform(-0.3, 0.3, c).astype(np.float32))
        v = self.init(f"{name}.running_var", rng.uniform(0.5, 2.0, c).astype(np.float32))
        return self.act("BatchNormalization", f"/{name}/BatchNormalization", [s, b, m, v],
                        epsilon=1e-5, momentum=0.9)

    def model(self, outputs=10, doc=""):
        out = helper.make_tensor_value_info(self.x, TensorProto.FLOAT, [self.batch, outputs])
        graph = helper.make_graph(self.nodes, "main_graph", [self.input], [out], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="pytorch", producer_version="2.5.0")
        m.ir_version = 8
        m.doc_string = doc
        onnx.checker.check_model(m)
        return m


def cnn_relu():
    """Conv(p1)+Relu+MaxPool, Conv(s2)+Relu, Flatten, Gemm(transB=1)+Relu, Gemm."""
    g = Builder(opset=13)
    g.conv("conv1", 1, 4, 3, pad=1)
    g.act("Relu", "/relu1/Relu")
    g.act("MaxPool", "/pool1/MaxPool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
          ceil_mode=0)
    g.conv("conv2", 4, 8, 3, stride=2)
    g.act("Relu", "/relu2/Relu")
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc1", 8 * 6 * 6, 32)
    g.act("Relu", "/relu3/Relu")
    g.linear("fc2", 32, 10)
    return g.model(doc="Conv, Relu, MaxPool, Flatten, Gemm(transB=1)")


def mlp_matmul():
    """x.view(-1, 784) as Constant+Reshape, then MatMul+Add layers (nn.Linear on 3-D inputs,
    or older exporters), fixed batch 1 as torch exports without dynamic axes."""
    g = Builder(batch=1, opset=13)
    shape = g.node("Constant", [], "/Constant",
                   value=numpy_helper.from_array(np.array([-1, 784], dtype=np.int64)))
    g.act("Reshape", "/Reshape", [shape])
    for i, (fin, fout) in enumerate([(784, 64), (64, 32), (32, 10)]):
        w = g.init(f"onnx::MatMul_{i}", uniform((fin, fout), fin))
        b = g.init(f"fc{i}.bias", uniform((fout,), fin))
        g.act("MatMul", f"/fc{i}/MatMul", [w])
        g.act("Add", f"/fc{i}/Add", [b])
        if i < 2:
            g.act("Relu", f"/relu{i}/Relu")
    return g.model(doc="Constant+Reshape, MatMul+Add")


def bn_dropout():
    """Conv(no bias)+BatchNorm2d+Relu+AveragePool, Flatten, Gemm+BatchNorm1d+Relu+Dropout,
    Identity, Gemm with alpha, beta and transB=0."""
    g = Builder()
    g.conv("conv1", 1, 6, 5, bias=False)
    g.batchnorm("bn1", 6)
    g.act("Relu", "/relu1/Relu")
    g.act("AveragePool", "/pool1/AveragePool", kernel_shape=[2, 2], strides=[2, 2],
          pads=[0, 0, 0, 0], ceil_mode=0, count_include_pad=0)
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc1", 6 * 12 * 12, 32)
    g.batchnorm("bn2", 32)
    g.act("Relu", "/relu2/Relu")
    ratio = g.init("dropout.ratio", np.array(0.25, dtype=np.float32))
    g.act("Dropout", "/dropout/Dropout", [ratio])
    g.act("Identity", "/Identity")
    w = g.init("fc2.weight_t", uniform((32, 10), 32))
    c = g.init("fc2.bias", uniform((10,), 32))
    g.act("Gemm", "/fc2/Gemm", [w, c], alpha=0.5, beta=2.0, transB=0)
    return g.model(doc="BatchNormalization folded, Dropout and Identity removed")


def he_square():
    """The CryptoNets-shaped network of the zoo's `cnn`: Conv 4x7x7 s3, Pow(x,2), Flatten,
    Gemm 256->64, Mul(x,x), Gemm 64->10: polynomial, so the HE backend runs it."""
    g = Builder()
    g.conv("conv1", 1, 4, 7, stride=3)
    two = g.init("pow.exponent", np.array(2.0, dtype=np.float32))
    g.act("Pow", "/sq1/Pow", [two])
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc1", 256, 64)
    g.act("Mul", "/sq2/Mul", [g.x])
    g.linear("fc2", 64, 10)
    return g.model(doc="Pow(x,2) and Mul(x,x) squares: HE-friendly")


def gap_pads():
    """Conv with padding 2 and stride 2, Relu, Conv with padding 1, Relu, GlobalAveragePool,
    Flatten, Gemm: GlobalAveragePool becomes an average pool over the whole map."""
    g = Builder()
    g.conv("conv1", 1, 8, 5, stride=2, pad=2)
    g.act("Relu", "/relu1/Relu")
    g.conv("conv2", 8, 32, 3, pad=1)
    g.act("Relu", "/relu2/Relu")
    g.act("GlobalAveragePool", "/gap/GlobalAveragePool")
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc", 32, 10)
    return g.model(doc="GlobalAveragePool, padded convolutions")


def he_pool():
    """HE-friendly with padding and pooling: Conv 4x5x5 s2 p2, Pow(x,2), AveragePool 2x2,
    Flatten, Gemm 196->10."""
    g = Builder()
    g.conv("conv1", 1, 4, 5, stride=2, pad=2)
    two = g.init("pow.exponent", np.array(2.0, dtype=np.float32))
    g.act("Pow", "/sq1/Pow", [two])
    g.act("AveragePool", "/pool1/AveragePool", kernel_shape=[2, 2], strides=[2, 2],
          pads=[0, 0, 0, 0], ceil_mode=0, count_include_pad=0)
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc", 4 * 7 * 7, 10)
    return g.model(doc="padded convolution, square, average pooling: HE-friendly")


def unsupported_op():
    """A Sigmoid activation: no ppml layer computes it."""
    g = Builder()
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc1", 784, 16)
    g.act("Sigmoid", "/act/Sigmoid")
    g.linear("fc2", 16, 10)
    return g.model(doc="Sigmoid: unsupported")


def unsupported_attr():
    """A grouped convolution (group=2): ppml's Conv2d is group 1."""
    g = Builder()
    g.conv("conv1", 1, 4, 3)
    w = g.init("conv2.weight", uniform((4, 2, 3, 3), 18))
    g.act("Conv", "/conv2/Conv", [w], dilations=[1, 1], group=2, kernel_shape=[3, 3],
          pads=[0, 0, 0, 0], strides=[1, 1])
    g.act("Flatten", "/Flatten", axis=1)
    g.linear("fc", 4 * 24 * 24, 10)
    return g.model(doc="group=2: unsupported")


def mnist(split, n):
    """The first `n` images of an MNIST split, normalised, and their labels."""
    with gzip.open(os.path.join(MNIST, f"{split}-images-idx3-ubyte.gz"), "rb") as f:
        pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: n * 784]
    with gzip.open(os.path.join(MNIST, f"{split}-labels-idx1-ubyte.gz"), "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
    x = (pixels.astype(np.float32) / 255.0 - np.float32(MEAN)) / np.float32(STD)
    return x.reshape(n, 1, 28, 28).astype(np.float32), labels


def run(m, x):
    """Reference outputs for a batch, one image at a time when the model's batch is fixed."""
    ref = ReferenceEvaluator(m)
    if m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1:
        return np.concatenate([ref.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    return ref.run(None, {"input": x})[0]


def fit_readout(m, x, labels):
    """Random features, trained readout: fits the last affine node's weights by least squares on
    one-hot labels, so that the test models make varied predictions with clear margins."""
    last = m.graph.node[-1]
    if last.op_type == "Add":
        matmul, add = m.graph.node[-2], last
        feats_name, w_name, b_name = matmul.input[0], matmul.input[1], add.input[1]
    else:
        feats_name, w_name, b_name = last.input
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    del probe.graph.output[:]
    probe.graph.output.append(helper.make_tensor_value_info(feats_name, TensorProto.FLOAT, None))
    feats = run(probe, x).reshape(len(x), -1).astype(np.float64)
    design = np.hstack([feats, np.ones((len(x), 1))])
    target = np.eye(10)[labels] * 4.0 - 0.4
    sol = np.linalg.lstsq(design.T @ design + 1e-2 * np.eye(design.shape[1]), design.T @ target,
                          rcond=None)[0]
    w, b = sol[:-1].astype(np.float32), sol[-1].astype(np.float32)  # w: [features, 10]
    attrs = {a.name: helper.get_attribute_value(a) for a in last.attribute}
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if last.op_type == "Gemm" and attrs.get("transB", 0) == 1:
        w = w.T
    for init in m.graph.initializer:
        if init.name == w_name:
            init.CopyFrom(numpy_helper.from_array(w / np.float32(alpha), w_name))
        if init.name == b_name:
            init.CopyFrom(numpy_helper.from_array(b / np.float32(beta), b_name))


def main():
    os.makedirs(OUT, exist_ok=True)
    x, _ = mnist("t10k", IMAGES)
    train_x, train_y = mnist("train", TRAIN)
    valid = {
        "cnn_relu": cnn_relu(),
        "mlp_matmul": mlp_matmul(),
        "bn_dropout": bn_dropout(),
        "he_square": he_square(),
        "gap_pads": gap_pads(),
        "he_pool": he_pool(),
    }
    for name, m in valid.items():
        fit_readout(m, train_x, train_y)
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(OUT, f"{name}.onnx"))
        logits = run(m, x).reshape(IMAGES, -1)
        with open(os.path.join(OUT, f"{name}.ref.json"), "w") as f:
            json.dump({
                "model": name,
                "images": IMAGES,
                "mean": MEAN,
                "std": STD,
                "logits": [[float(v) for v in row] for row in logits],
            }, f, indent=None)
            f.write("\n")
        print(f"{name}: {len(m.graph.node)} nodes, logits {logits.shape}")
    for name, m in {"unsupported_op": unsupported_op(), "unsupported_attr": unsupported_attr()}.items():
        onnx.save(m, os.path.join(OUT, f"{name}.onnx"))
        print(f"{name}: {len(m.graph.node)} nodes")
    data = valid["cnn_relu"].SerializeToString()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    print("truncated: first half of cnn_relu.onnx")


if __name__ == "__main__":
    main()
