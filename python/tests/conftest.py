"""Shared fixtures: the MNIST test images and zoo models, loaded once per session."""

import os

import numpy as np
import pytest

import ppml

#: The repository this checkout is (its models/ and data/mnist/ are the package defaults too).
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="session")
def test_set() -> ppml.datasets.Dataset:
    """The first 1000 MNIST test images and labels."""
    return ppml.datasets.mnist("test", limit=1000)


@pytest.fixture(scope="session")
def lenet() -> ppml.Model:
    return ppml.load_model("lenet")


@pytest.fixture(scope="session")
def cnn() -> ppml.Model:
    return ppml.load_model("cnn")


def normalise(pixels: np.ndarray, mean: float = 0.1307, std: float = 0.3081) -> np.ndarray:
    """Model inputs `[n, 1, h, w]` from `uint8` pixels, as ppml's client normalises them."""
    x = (pixels.astype(np.float32) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
    return x.reshape(pixels.shape[0], 1, *pixels.shape[-2:])
