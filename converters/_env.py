"""Importing the workstation tools quietly, and recording their versions.

TensorFlow, absl and ONNX Runtime are chatty. Their log levels are turned down
here unless the user has already chosen one (an explicit
``TF_CPP_MIN_LOG_LEVEL`` in the environment, or a non-default logger level,
is left alone); the C++ lines TensorFlow writes to stderr whatever that level
says are filtered by it (:mod:`converters._native_logs`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from importlib import metadata as importlib_metadata
from typing import Any

from edgecv.errors import BackendNotAvailable

from ._native_logs import native_logs_filtered

__all__ = ["import_tensorflow", "import_onnx", "import_onnxruntime", "tool_versions"]

_TOOLS = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "opencv-python-headless")


def import_tensorflow() -> Any:
    """Import TensorFlow with its C++ and Python logging turned down.

    Raises:
        BackendNotAvailable: TensorFlow is not installed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        # absl writes its import-time notices to stderr whatever the level: filter the first import only
        with native_logs_filtered() if "tensorflow" not in sys.modules else contextlib.nullcontext():
            import tensorflow as tf
    except ImportError as exc:
        raise BackendNotAvailable("converting needs TensorFlow; pip install 'edgecv[convert]'") from exc
    _quiet_unless_configured("tensorflow")
    try:
        from absl import logging as absl_logging

        if absl_logging.get_verbosity() == absl_logging.WARNING:  # absl's default: nobody chose one
            absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    return tf


def import_onnx() -> Any:
    """Import the onnx package.

    Raises:
        BackendNotAvailable: onnx is not installed.
    """
    try:
        import onnx
    except ImportError as exc:
        raise BackendNotAvailable("ONNX export needs the onnx package; pip install 'edgecv[convert]'") from exc
    return onnx


def import_onnxruntime() -> Any:
    """Import onnxruntime (for quantization and validation) with its log noise turned down.

    Raises:
        BackendNotAvailable: onnxruntime is not installed.
    """
    from edgecv.backends.onnxrt import import_onnxruntime as _import

    return _import()


def import_tf2onnx() -> Any:
    """Import tf2onnx (after TensorFlow, quietly).

    Raises:
        BackendNotAvailable: tf2onnx is not installed.
    """
    import_tensorflow()
    try:
        with native_logs_filtered() if "tf2onnx" not in sys.modules else contextlib.nullcontext():
            import tf2onnx
    except ImportError as exc:
        raise BackendNotAvailable("TensorFlow -> ONNX export needs tf2onnx; pip install 'edgecv[convert]'") from exc
    _quiet_unless_configured("tf2onnx")
    return tf2onnx


def tool_versions(names: tuple[str, ...] = _TOOLS) -> dict[str, str]:
    """Installed versions of the conversion tools (only those installed)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def _quiet_unless_configured(name: str) -> None:
    """Show only errors from library logger *name*, unless the user has set its level already."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)
