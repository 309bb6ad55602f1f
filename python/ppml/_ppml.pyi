"""Stubs of the compiled module ``ppml._ppml`` (python/src). The public API is ``ppml``."""

from os import PathLike
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, PathLike[str]]

class Model:
    """A neural network with its weights (immutable)."""

    @property
    def name(self) -> str: ...
    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """One input image as ``(channels, height, width)``."""
    @property
    def normalization(self) -> Tuple[float, float]:
        """``(mean, std)`` of ``(pixel / 255 - mean) / std``."""
    @property
    def classes(self) -> int: ...
    @property
    def param_count(self) -> int: ...
    @property
    def is_polynomial(self) -> bool:
        """True when every activation is a polynomial (what ``he`` runs)."""
    @property
    def layers(self) -> List[str]:
        """The layers' operator names."""
    @property
    def import_notes(self) -> List[str]:
        """What an ONNX import did beyond one-to-one translation."""
    def summary(self) -> str: ...
    def predict(self, images: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Plain logits ``[n, classes]`` of ``uint8`` pixels or float model inputs."""
    def save(self, path: _Path) -> str:
        """Writes the model file (``.safetensors`` appended when missing); returns its path."""

class Backend:
    def __init__(
        self,
        name: str,
        *,
        allow_simulated: bool = False,
        enclave: Optional[str] = None,
        measurement: Optional[str] = None,
        frac_bits: Optional[int] = None,
        comparison: Optional[str] = None,
        parties: Optional[_Path] = None,
        server: Optional[str] = None,
        ca: Optional[_Path] = None,
        timeout: float = 300.0,
        batch: Optional[int] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    def setup(self, model: Model) -> Tuple[float, int, str, List[str]]:
        """``(seconds, bytes_sent, facts as a JSON object, notes)``."""
    def infer(self, images: npt.ArrayLike) -> Tuple[npt.NDArray[np.float32], int, int]:
        """``(logits, bytes_sent, rounds)``."""
    def evaluate(
        self,
        model: Model,
        images: npt.NDArray[np.uint8],
        labels: npt.NDArray[np.uint8],
        batch: int,
        progress: Optional[Callable[[int, int], Any]] = None,
    ) -> str:
        """The ``ppml eval --json`` report as JSON."""

def zoo(models_dir: Optional[_Path] = None) -> List[Tuple[str, str, bool]]: ...
def load_model(name_or_path: str, models_dir: Optional[_Path] = None) -> Model: ...
def import_onnx(
    path: _Path,
    *,
    name: Optional[str] = None,
    input_shape: Optional[Tuple[int, int, int]] = None,
    mean: Optional[float] = None,
    std: Optional[float] = None,
) -> Model: ...
def import_onnx_bytes(
    data: bytes,
    *,
    name: Optional[str] = None,
    input_shape: Optional[Tuple[int, int, int]] = None,
    mean: Optional[float] = None,
    std: Optional[float] = None,
) -> Model: ...
def mnist(
    split: str = "test", path: Optional[_Path] = None, limit: Optional[int] = None
) -> Tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
def load_idx(
    images: _Path, labels: _Path
) -> Tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
def default_data_dir() -> str: ...
def bench(
    models: List[str],
    backends: Optional[List[str]] = None,
    limit: int = 1000,
    latency_images: int = 50,
    models_dir: Optional[_Path] = None,
    data: Optional[_Path] = None,
) -> str:
    """The bench's ``results.json`` as JSON."""
