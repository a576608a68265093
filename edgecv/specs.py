"""Descriptions of model inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["QuantParams", "TensorSpec", "guess_layout"]


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization ``real = scale * (q - zero_point)``; per tensor or per ``axis``."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_tensor(self) -> bool:
        return len(self.scale) == 1

    def to_dict(self) -> dict[str, Any]:
        return {"scale": list(self.scale), "zero_point": list(self.zero_point), "axis": self.axis}


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    ``shape`` is the concrete shape edgecv allocated (dynamic batch set to 1);
    ``dtype`` a numpy dtype name; ``layout`` "nhwc", "nchw" or None when the
    tensor is not an image.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: QuantParams | None = None
    layout: str | None = None
    index: int = 0

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def affine(self) -> tuple[float, int] | None:
        """``(scale, zero_point)`` when the tensor holds integers with one positive scale, else None.

        Such a tensor can be read as stored: ``real = scale * (q - zero_point)``.
        """
        q = self.quantization
        if q is None or not q.per_tensor or self.np_dtype.kind not in "ui" or not q.scale[0] > 0:
            return None
        return float(q.scale[0]), int(q.zero_point[0])

    @property
    def size_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.np_dtype.itemsize

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "quantization": self.quantization.to_dict() if self.quantization is not None else None,
            "layout": self.layout,
        }


def guess_layout(shape: tuple[int, ...]) -> str | None:
    """Image layout of a rank-4 tensor from its shape: channels of 1 or 3 last is NHWC, first is NCHW."""
    if len(shape) != 4:
        return None
    if shape[3] in (1, 3) and shape[1] not in (1, 3):
        return "nhwc"
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "nchw"
    if shape[3] in (1, 3):
        return "nhwc"
    return None
