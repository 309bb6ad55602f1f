"""ppml: privacy-preserving MNIST inference (HE, MPC, TEE) against plain inference.

A Python front over ppml's Rust crates (the compiled module ``ppml._ppml``): the same model
zoo, ONNX importer, backends and evaluation loop as the ``ppml`` command line.

Example::

    import ppml

    model = ppml.load_model("lenet")
    images, labels = ppml.datasets.mnist("test", limit=100)
    report = ppml.evaluate(model, ppml.backend("mpc3"), images, labels, batch=100)
    print(f"accuracy {report.accuracy:.2%}, agreement with plain {report.agreement:.2%}")

Every long call releases the GIL. Errors are :class:`ppml.Error` and its subclasses (see
:mod:`ppml.errors`). Nothing is printed unless asked (``progress=``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _ppml, datasets
from ._ppml import Model
from ._torch import from_torch
from .errors import (
    BackendError,
    DataError,
    Error,
    FileError,
    InputError,
    ModelError,
    PeerError,
    ProtocolError,
)

__version__: str = _ppml.__version__

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "CallStats",
    "DataError",
    "Error",
    "EvalReport",
    "FileError",
    "InputError",
    "Model",
    "ModelError",
    "PeerError",
    "ProtocolError",
    "SetupFacts",
    "SetupReport",
    "ZooEntry",
    "backend",
    "bench",
    "datasets",
    "evaluate",
    "from_torch",
    "import_onnx",
    "load_model",
    "zoo",
]

PathLike = Union[str, "os.PathLike[str]"]
Progress = Union[None, bool, Callable[[int, int], Any]]

BACKENDS: Tuple[str, ...] = ("plain", "tee", "mpc2", "mpc3", "he")
"""The backends of this build, in the order the bench runs them."""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A model of the zoo."""

    name: str
    description: str
    committed: bool
    """Whether its trained weights are in the models folder (``load_model`` needs them)."""


@dataclasses.dataclass(frozen=True)
class SetupFacts:
    """What a backend's setup chose, typed; each backend fills what applies to it (plain: none)."""

    mode: Optional[str]
    """he: ``latency``, ``throughput`` or ``auto`` (latency for one image, throughput for more)."""
    isolation: Optional[str]
    """tee: the label of the verified evidence, e.g. ``simulated (no hardware isolation)``."""
    ring_degree: Optional[int]
    """he, hybrid: the degree N of the lattice encryption's ring."""
    latency_input_ciphertexts: Optional[int]
    """he: ciphertexts encrypting one image in latency mode."""
    throughput_input_ciphertexts: Optional[int]
    """he: ciphertexts encrypting one batch in throughput mode."""
    comparison: Optional[str]
    """mpc2, mpc3: ``bit-decomposition`` or ``fss``."""
    fractional_bits: Optional[int]
    """mpc2, mpc3: fractional bits of the fixed-point encoding."""


@dataclasses.dataclass(frozen=True)
class SetupReport:
    """What a backend's one-time setup cost (keys, dealer material, attestation)."""

    seconds: float
    bytes_sent: int
    facts: SetupFacts
    notes: List[str]
    """The same facts and more, for people (not to be parsed)."""


@dataclasses.dataclass(frozen=True)
class CallStats:
    """Communication of one inference call, all parties together."""

    bytes_sent: int
    rounds: int


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """The report of ``ppml eval --json``, field for field (see the README)."""

    model: str
    backend: str
    n: int
    batch: int
    accuracy: float
    agreement: Optional[float]
    """Fraction of predicted labels equal to plain inference's (``None`` under plain)."""
    seconds: float
    latency_ms: float
    latency_p95_ms: float
    throughput_img_per_s: float
    setup_seconds: float
    setup_bytes: int
    bytes_sent: int
    rounds: int
    client_bytes: int
    """Bytes the client itself sent and received (its shares or ciphertexts, the results)."""
    offline_bytes: int
    """Bytes of input-independent material made ahead of the queries (not in ``bytes_sent``)."""
    offline_seconds: float
    """Seconds spent making that material."""
    on_demand_calls: int
    """Calls that found no material made ahead and made it while the client waited."""
    facts: SetupFacts
    """What the backend's setup chose (mode, isolation, ring degree, comparison, ...)."""
    notes: List[str]

    def to_dict(self) -> Dict[str, Any]:
        """The fields as ``eval --json`` prints them (``agreement`` left out under plain)."""
        d = dataclasses.asdict(self)
        if d["agreement"] is None:
            del d["agreement"]
        return d

    @classmethod
    def _from_json(cls, text: str) -> "EvalReport":
        d = json.loads(text)
        d.setdefault("agreement", None)
        d["facts"] = SetupFacts(**d["facts"])
        return cls(**d)


def zoo(models_dir: Optional[PathLike] = None) -> List[ZooEntry]:
    """The model zoo, with whether each model's weights are committed in ``models_dir``
    (default: ``models/`` under the current directory if it exists, else the repository's)."""
    return [
        ZooEntry(name, what, have)
        for name, what, have in _ppml.zoo(None if models_dir is None else os.fspath(models_dir))
    ]


def load_model(name_or_path: PathLike, models_dir: Optional[PathLike] = None) -> Model:
    """A zoo model with its committed weights, or a model file (``.safetensors`` may be left
    out), as ``ppml eval --model`` resolves it."""
    return _ppml.load_model(
        os.fspath(name_or_path), None if models_dir is None else os.fspath(models_dir)
    )


def import_onnx(
    path: PathLike,
    *,
    name: Optional[str] = None,
    input_shape: Optional[Tuple[int, int, int]] = None,
    mean: Optional[float] = None,
    std: Optional[float] = None,
) -> Model:
    """Imports an ONNX model (opset 13+) as ``ppml import`` does (docs/onnx.md).

    ``input_shape`` is one image's ``(channels, height, width)`` when the graph does not say;
    ``mean``/``std`` the pixel normalisation ``(pixel / 255 - mean) / std`` (default: the
    model's ``ppml.mean``/``ppml.std`` metadata, else MNIST's). Unsupported operators raise
    :class:`ModelError` naming the node.
    """
    return _ppml.import_onnx(
        os.fspath(path), name=name, input_shape=input_shape, mean=mean, std=std
    )


class Backend:
    """A private-inference backend; make one with :func:`backend`.

    ``setup(model)`` once (keys, dealer material, attestation), then ``infer(images)`` as often
    as wanted. Calls release the GIL; one backend runs one call at a time (calls from several
    threads wait their turn), separate backends run in parallel.
    """

    def __init__(self, name: str, **options: Any) -> None:
        self._inner = _ppml.Backend(name, **options)

    @property
    def name(self) -> str:
        """The backend's name (``plain``, ``he``, ``mpc2``, ``mpc3``, ``tee``)."""
        return self._inner.name

    def setup(self, model: Model) -> SetupReport:
        """One-time work for ``model``, reported apart from inference."""
        seconds, bytes_sent, facts, notes = self._inner.setup(model)
        return SetupReport(seconds, bytes_sent, SetupFacts(**json.loads(facts)), notes)

    def infer(self, images: np.ndarray) -> Tuple[np.ndarray, CallStats]:
        """Classifies ``images`` end to end: ``(logits float32 [n, classes], stats)``.

        ``images``: ``uint8`` pixels ``[n, h, w]`` or ``[n, c, h, w]`` (normalised with the
        set-up model's normalisation), or ``float32``/``float64`` model inputs of those shapes.
        """
        logits, bytes_sent, rounds = self._inner.infer(images)
        return logits, CallStats(bytes_sent, rounds)

    def __repr__(self) -> str:
        return f"<ppml.Backend {self.name}>"


def backend(
    name: str,
    *,
    allow_simulated: bool = False,
    enclave: Optional[str] = None,
    measurement: Optional[str] = None,
    frac_bits: Optional[int] = None,
    comparison: Optional[str] = None,
    parties: Optional[PathLike] = None,
    server: Optional[str] = None,
    ca: Optional[PathLike] = None,
    timeout: float = 300.0,
    batch: Optional[int] = None,
) -> Backend:
    """A backend by name, built by the registry behind ``ppml eval --backend``.

    Options (each for the backends named, as the CLI flags of the same name):

    - ``allow_simulated`` (tee): accept simulated evidence; required without ``enclave``, when
      the enclave runs in this process with no hardware isolation.
    - ``enclave``, ``measurement`` (tee): attest the running ``ppml enclave`` at this address,
      which must prove this measurement (64 hex digits).
    - ``frac_bits``, ``comparison`` (mpc2/mpc3): fixed-point fractional bits (default 16); the
      comparison protocol, ``"bit-decomposition"`` (default) or ``"fss"``.
    - ``parties`` (mpc2/mpc3): the ``parties.toml`` of parties started with ``ppml party``; this
      process is then their client (default: the parties are threads of this process).
    - ``server`` (he): the address of a running ``ppml he-server``; this process is then its
      client (keys made and sent at ``setup``; the server's model runs, and ``setup`` checks that
      the model given takes the same input and normalisation). ``ca``: the CA certificate file
      the server's TLS certificate (name ``he-server``) must chain to (``ppml he-certs``).
      ``timeout``: seconds to wait on any read or write (default 300).
    - ``server`` (hybrid): the address of a running ``ppml hybrid-server``, whose certificate
      (name ``hybrid-server``, ``ppml he-certs --name hybrid-server``) must chain to ``ca``; the
      server's model runs, the one given to ``setup`` gives the architecture.
    - ``batch``: the batch size calls will use, when known (he prepares only that mode).

    An unknown name or a bad option raises :class:`InputError`.
    """
    return Backend(
        name,
        allow_simulated=allow_simulated,
        enclave=enclave,
        measurement=measurement,
        frac_bits=frac_bits,
        comparison=comparison,
        parties=None if parties is None else os.fspath(parties),
        server=server,
        ca=None if ca is None else os.fspath(ca),
        timeout=timeout,
        batch=batch,
    )


def _progress_callback(progress: Progress, what: str) -> Tuple[Optional[Callable[[int, int], Any]], Any]:
    """The callback for ``progress=``, and a tqdm bar to close (or ``None``)."""
    if progress is None or progress is False:
        return None, None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError as e:
            raise InputError("progress=True draws a tqdm bar: install tqdm, or pass a callback") from e
        bar = tqdm(desc=what, unit="img")

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return update, bar
    if callable(progress):
        return progress, None
    raise InputError(f"progress must be None, True or a callable, got {type(progress).__name__}")


def _labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise InputError(f"labels must be integers, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"labels of shape {y.shape} for {n} images: expected ({n},)")
    if y.size and (y.min() < 0 or y.max() > 255):
        raise InputError("labels must be in 0..=255")
    return np.ascontiguousarray(y, dtype=np.uint8)


def evaluate(
    model: Model,
    backend: Union[Backend, str],
    images: Union[np.ndarray, datasets.Dataset, None] = None,
    labels: Optional[Sequence[int]] = None,
    *,
    batch: int = 1,
    progress: Progress = None,
) -> EvalReport:
    """Evaluates ``model`` under ``backend`` with ppml's evaluation loop (the one behind
    ``ppml eval``): setup, then calls of ``batch`` images, compared with the labels and with
    plain inference. Returns the fields of ``ppml eval --json``.

    ``backend``: a :class:`Backend` or a name (built with default options).
    ``images``: ``uint8`` pixels ``[n, h, w]`` with ``labels``, or a :class:`datasets.Dataset`;
    default: the MNIST test set. ``progress``: a callable ``(done, total)`` called after each
    call, or ``True`` for a tqdm bar (tqdm must be installed); nothing is printed otherwise.
    """
    if isinstance(backend, str):
        backend = Backend(backend)
    if not isinstance(backend, Backend):
        raise InputError(f"backend must be a ppml.Backend or a name, got {type(backend).__name__}")
    if images is None:
        if labels is not None:
            raise InputError("labels without images")
        images, labels = datasets.mnist("test")
    elif isinstance(images, datasets.Dataset):
        if labels is not None:
            raise InputError("a Dataset carries its labels: pass labels=None")
        images, labels = images
    elif labels is None:
        raise InputError("images need their labels")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise InputError(f"evaluate takes uint8 pixels (0-255), got dtype {x.dtype}")
    y = _labels(labels, x.shape[0] if x.ndim else 0)
    callback, bar = _progress_callback(progress, f"{model.name} under {backend.name}")
    try:
        text = backend._inner.evaluate(model, x, y, batch, callback)
    finally:
        if bar is not None:
            bar.close()
    return EvalReport._from_json(text)


def bench(
    models: Sequence[str] = ("mlp", "cnn", "lenet"),
    backends: Optional[Sequence[str]] = None,
    *,
    limit: int = 1000,
    latency_images: int = 50,
    models_dir: Optional[PathLike] = None,
    data: Optional[PathLike] = None,
) -> List[Dict[str, Any]]:
    """Runs the comparison of ``ppml bench``: each model under each backend (default: all) and
    plain inference in the same run. Returns its rows (the ``results`` of ``results.json``:
    per pair, the latency and throughput reports and the slowdowns against plain).

    The bench prints progress bars on standard error when it is a terminal, as ``ppml bench``
    does; its ``tee`` runs the in-process enclave with simulated evidence, labelled so.
    """
    text = _ppml.bench(
        list(models),
        None if backends is None else list(backends),
        limit,
        latency_images,
        None if models_dir is None else os.fspath(models_dir),
        None if data is None else os.fspath(data),
    )
    rows: List[Dict[str, Any]] = json.loads(text)["results"]
    return rows
