"""MNIST, as NumPy arrays of raw pixels.

``mnist()`` reads the four IDX files committed in the repository this package was built from
(``data/mnist``), or any folder holding them (raw or ``.gz``); ``load_idx()`` reads any pair of
IDX files. Images are ``uint8 [n, 28, 28]`` pixels (0-255, white digit on black), labels
``uint8 [n]``: what ``Model.predict``, ``Backend.infer`` and ``evaluate`` take.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Union

import numpy as np

from . import _ppml

__all__ = ["Dataset", "mnist", "load_idx", "default_data_dir"]

PathLike = Union[str, "os.PathLike[str]"]


class Dataset(NamedTuple):
    """Labelled images: ``images, labels = ppml.datasets.mnist()``."""

    images: np.ndarray
    """``uint8 [n, rows, cols]`` pixels."""
    labels: np.ndarray
    """``uint8 [n]`` labels."""

    @property
    def n(self) -> int:
        """The number of images."""
        return int(self.labels.shape[0])

    def take(self, n: int) -> "Dataset":
        """The first ``n`` images (all of them if there are fewer)."""
        return Dataset(self.images[:n], self.labels[:n])


def mnist(
    split: str = "test", path: Optional[PathLike] = None, limit: Optional[int] = None
) -> Dataset:
    """The MNIST ``split`` (``"test"``: 10,000 images, ``"train"``: 60,000).

    ``path``: a folder with the IDX files (default: :func:`default_data_dir`); ``limit``: only
    the first ``limit`` images. Raises :class:`ppml.FileError` for a missing file and
    :class:`ppml.DataError` for a malformed one.
    """
    images, labels = _ppml.mnist(split, None if path is None else os.fspath(path), limit)
    return Dataset(images, labels)


def load_idx(images: PathLike, labels: PathLike) -> Dataset:
    """An images file and a labels file in the IDX format (raw or ``.gz``), of the same count."""
    x, y = _ppml.load_idx(os.fspath(images), os.fspath(labels))
    return Dataset(x, y)


def default_data_dir() -> str:
    """``data/mnist`` under the current directory if it exists, else the repository's."""
    return os.fspath(_ppml.default_data_dir())
