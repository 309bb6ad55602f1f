"""The exceptions ppml raises.

Every error of the Rust core reaches Python as one of these classes, with the message the CLI
would print. All derive from :class:`Error`; some also from the builtin a Python user would
catch (``ValueError``, ``OSError``, ``ConnectionError``).
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InputError",
    "FileError",
    "ModelError",
    "DataError",
    "BackendError",
    "ProtocolError",
    "PeerError",
]


class Error(Exception):
    """Base class of every ppml error."""


class InputError(Error, ValueError):
    """Bad images (shape, dtype, NaN), arguments or backend options, or an unknown backend."""


class FileError(Error, OSError):
    """A file that cannot be found, read or written (model file, ONNX file, dataset)."""


class ModelError(Error):
    """A model that cannot be loaded or imported, or that the backend cannot run."""


class DataError(Error):
    """A malformed dataset file (IDX) or image."""


class BackendError(Error):
    """A backend that failed while it ran (setup or inference)."""


class ProtocolError(BackendError):
    """A peer (party, server, enclave) sent malformed or unauthenticated data, or its evidence
    was refused."""


class PeerError(BackendError, ConnectionError):
    """A peer that cannot be reached, went away, or did not answer in time."""
