"""Interpreter backends behind :class:`edgecv.Model`.

A backend owns one native session and exposes its inputs and outputs as
stable numpy arrays: ``input_arrays`` are written by the caller before
``invoke()``; ``output_arrays`` hold the raw results after it. Both stay the
same objects for the life of the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BackendNotAvailable, ConfigError, did_you_mean
from ..specs import TensorSpec

__all__ = ["Backend", "BACKENDS", "backend_for_suffix", "normalize_backend"]

BACKENDS = ("litert", "onnxruntime")
_ALIASES = {"litert": "litert", "tflite": "litert", "tensorflow-lite": "litert",
            "onnxruntime": "onnxruntime", "onnx": "onnxruntime", "ort": "onnxruntime"}
_SUFFIXES = {".tflite": "litert", ".onnx": "onnxruntime", ".ort": "onnxruntime"}


class Backend:
    """Common surface of the LiteRT and ONNX Runtime backends."""

    name: str = ""
    format: str = ""
    runtime: str = ""                      # e.g. "ai_edge_litert 2.3.0"
    accelerators: tuple[str, ...] = ()     # delegates or ORT providers really in use
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    input_arrays: tuple[np.ndarray, ...] = ()
    output_arrays: tuple[np.ndarray, ...] = ()
    metadata: dict[str, Any] = {}
    warnings: tuple[str, ...] = ()
    # True when output_arrays may be replaced by new arrays on each invoke (outputs of data-dependent shape)
    replaces_outputs: bool = False

    def invoke(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def normalize_backend(name: str) -> str:
    """Canonical backend name.

    Raises:
        ConfigError: unknown backend.
    """
    key = str(name).lower()
    if key not in _ALIASES:
        raise ConfigError(f"unknown backend {name!r}{did_you_mean(key, _ALIASES)}; choose 'litert' or 'onnxruntime'")
    return _ALIASES[key]


def backend_for_suffix(suffix: str) -> str | None:
    return _SUFFIXES.get(suffix.lower())


def missing(what: str, extra: str) -> BackendNotAvailable:
    return BackendNotAvailable(f"no {what} found; pip install 'edgecv[{extra}]'")
