"""The float source exported once per conversion and shared by its artifacts: a SavedModel and a float ONNX graph.

The TFLite converter reads a SavedModel folder; every ONNX precision starts
from the float ONNX graph (tf2onnx for TensorFlow sources, the source itself
for ONNX ones). Both are made on first use and kept, so rebuilding one
artifact with other settings does not export again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .source import SourceModel

__all__ = ["SourceExports"]


class SourceExports:
    """Lazily made, cached exports of one source with its output roles (and in-graph transform).

    Use as a context manager, or call :meth:`close`, to remove the temporary SavedModel folder.
    """

    def __init__(self, source: SourceModel, roles: Mapping[str, str],
                 transform: Callable[[Any, dict], dict] | None, opset: int) -> None:
        self.source = source
        self.roles = dict(roles)
        self.transform = transform
        self.opset = opset
        self._saved_model: Path | None = None
        self._onnx_float: Any = None

    def saved_model(self) -> Path:
        """The SavedModel folder whose ``serving_default`` returns ``{role: tensor}`` (batch 1).

        Raises:
            ConversionError: an ONNX source, or TensorFlow failed to save it.
        """
        if self._saved_model is None:
            self._saved_model = Path(tempfile.mkdtemp(prefix="edgecv-savedmodel-"))
            self.source.write_saved_model(self.roles, self._saved_model / "model", self.transform)
        return self._saved_model / "model"

    def float_onnx(self) -> Any:
        """The float32 ONNX ModelProto (the source's own for ONNX sources).

        Raises:
            UnsupportedOpError: tf2onnx has no mapping for an op.
            ConversionError: tf2onnx failed otherwise.
        """
        if self._onnx_float is None:
            if self.source.is_onnx:
                self._onnx_float = self.source.handle
            else:
                from .onnx_export import tf_to_onnx

                self._onnx_float = tf_to_onnx(self.source.serving_function(self.roles, self.transform),
                                              self.source.input_shape, opset=self.opset)
        return self._onnx_float

    def close(self) -> None:
        """Remove the temporary SavedModel folder."""
        if self._saved_model is not None:
            shutil.rmtree(self._saved_model, ignore_errors=True)

    def __enter__(self) -> SourceExports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
