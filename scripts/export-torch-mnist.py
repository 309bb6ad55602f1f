#!/usr/bin/env python3
"""Trains a small PyTorch `nn.Sequential` on MNIST for one epoch and exports it to ONNX: the
PyTorch user's path into ppml, shown with a committed file (PyTorch from PyPI is gigabytes, too
much for CI to install; `ppml.from_torch` does the same export in memory where torch is).

Writes `python/tests/data/torch_mnist.onnx` and `python/tests/data/torch_mnist.ref.npz` (torch's
own logits and predictions on the first 200 MNIST test images, which the Python test compares
ppml against).

Usage, from the repository root, in a venv of its own:
    python3 -m venv /tmp/torch-venv
    /tmp/torch-venv/bin/pip install -r scripts/requirements-torch.txt
    /tmp/torch-venv/bin/python scripts/export-torch-mnist.py
"""

import gzip
import os

import numpy as np
import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MNIST = os.path.join(ROOT, "data", "mnist")
OUT = os.path.join(ROOT, "python", "tests", "data")
MEAN, STD = 0.1307, 0.3081
REF_IMAGES = 200


def idx(name: str) -> np.ndarray:
    with gzip.open(os.path.join(MNIST, name + ".gz"), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def inputs(pixels: np.ndarray) -> torch.Tensor:
    x = (pixels.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x).unsqueeze(1)


def main() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=5, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 12 * 12, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    x_train, y_train = inputs(idx("train-images-idx3-ubyte")), idx("train-labels-idx1-ubyte")
    y_train = torch.from_numpy(y_train.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    order = torch.randperm(len(y_train))
    model.train()
    for start in range(0, len(order), 64):  # one epoch
        batch = order[start:start + 64]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        loss.backward()
        opt.step()
    model.eval()

    test_pixels, test_labels = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
    with torch.no_grad():
        logits = model(inputs(test_pixels)).numpy()
    accuracy = float(np.mean(logits.argmax(1) == test_labels))
    print(f"test accuracy after one epoch: {accuracy:.2%}")

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "torch_mnist.onnx")
    kwargs = {"opset_version": 17, "input_names": ["input"], "output_names": ["logits"],
              "dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}}
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        kwargs["dynamo"] = False  # the TorchScript exporter, as ppml.from_torch uses
    torch.onnx.export(model, (inputs(test_pixels[:1]),), path, **kwargs)
    np.savez(os.path.join(OUT, "torch_mnist.ref.npz"), logits=logits[:REF_IMAGES],
             accuracy=np.float64(accuracy), torch_version=np.array(torch.__version__))
    print(f"wrote {path} ({os.path.getsize(path)} bytes) with torch {torch.__version__}")


if __name__ == "__main__":
    main()
