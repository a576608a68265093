"""Pure-Python readers for model file formats (no TensorFlow, no onnx package).

They let the runtime read manifests and metadata, let ``targets.check`` list ops
and tensor types, and let loaders reject corrupt files before a native runtime
sees them.
"""

from __future__ import annotations

import os

from ..errors import ModelLoadError


def read_model_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole content of a model file.

    Raises:
        ModelLoadError: the file cannot be read (missing, a folder, no permission).
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc
