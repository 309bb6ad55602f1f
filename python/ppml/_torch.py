"""``from_torch``: a PyTorch module to a ppml model, through ONNX in memory."""

from __future__ import annotations

import inspect
import io
from typing import Any, Optional

from . import _ppml
from .errors import InputError

#: The ONNX opset ``from_torch`` exports (the importer reads 13 and later).
OPSET = 17


def from_torch(
    module: Any,
    example_input: Any,
    *,
    name: Optional[str] = None,
    mean: Optional[float] = None,
    std: Optional[float] = None,
) -> "_ppml.Model":
    """Exports ``module`` to ONNX in memory with ``torch.onnx.export`` (the TorchScript
    exporter, opset 17) and imports it as :func:`ppml.import_onnx` does.

    ``example_input``: a tensor ``[n, c, h, w]`` of the shape the module takes. ``mean``/``std``:
    the normalisation the model expects of raw pixels, ``(pixel / 255 - mean) / std`` (default:
    MNIST's). Needs PyTorch (and the ``onnx`` package it exports with); without it, raises
    ``ImportError`` saying so.
    """
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            "ppml.from_torch needs PyTorch (pip install torch); without it, export the model to "
            "ONNX elsewhere and use ppml.import_onnx"
        ) from e
    if not isinstance(module, torch.nn.Module):
        raise InputError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise InputError("example_input must be a torch.Tensor [n, channels, height, width]")
    buf = io.BytesIO()
    kwargs: dict = {"opset_version": OPSET, "input_names": ["input"], "output_names": ["logits"]}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            torch.onnx.export(module, (example_input,), buf, **kwargs)
    finally:
        module.train(was_training)
    c, h, w = (int(d) for d in example_input.shape[1:])
    return _ppml.import_onnx_bytes(
        buf.getvalue(),
        name=name or type(module).__name__.lower(),
        input_shape=(c, h, w),
        mean=mean,
        std=std,
    )
