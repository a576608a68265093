"""The float source exported once per conversion and shared by its artifacts: a SavedModel and a float ONNX graph.

The TFLite converter reads a SavedModel folder (for ONNX sources, onnx2tf's
translation wrapped to return the roles: :mod:`converters.onnx_translate`);
every ONNX precision starts from the float ONNX graph (tf2onnx for TensorFlow
sources, the source itself for ONNX ones). Both are made on first use and kept, so rebuilding one
artifact with other settings does not export again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .source import SourceModel

__all__ = ["SourceExports"]


class SourceExports:
    """Lazily made, cached exports of one source with its output roles (and in-graph transform).

    Use as a context manager, or call :meth:`close`, to remove the temporary SavedModel folder.
    """

    def __init__(self, source: SourceModel, roles: Mapping[str, str],
                 transform: Callable[[Any, dict], dict] | None, opset: int, probe: np.ndarray | None = None) -> None:
        self.source = source
        self.probe = probe
        self.roles = dict(roles)
        self.transform = transform
        self.opset = opset
        self._saved_model: Path | None = None
        self._onnx_float: Any = None
        self.translated: Any = None

    def saved_model(self) -> Path:
        """The SavedModel folder whose ``serving_default`` returns ``{role: tensor}`` (batch 1).

        ONNX sources are translated by onnx2tf first (their SavedModel takes NHWC images;
        :attr:`translated` then says how, for the report).

        Raises:
            BackendNotAvailable: an ONNX source and onnx2tf is not installed.
            ConversionError: TensorFlow failed to save it, or onnx2tf to translate it.
        """
        if self._saved_model is None:
            folder = Path(tempfile.mkdtemp(prefix="edgecv-savedmodel-"))
            try:
                if self.source.is_onnx:
                    from .onnx_translate import translated_saved_model

                    self.translated = translated_saved_model(self.source, self.roles, self._probe(), folder)
                else:
                    self.source.write_saved_model(self.roles, folder / "model", self.transform)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._saved_model = folder
        return self._saved_model / "model"

    def _probe(self) -> np.ndarray:
        if self.probe is not None:
            return self.probe
        rng = np.random.default_rng(0)
        return rng.uniform(-1.0, 1.0, (2, *self.source.input_shape[1:])).astype(np.float32)

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
