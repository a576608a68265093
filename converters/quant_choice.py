"""What a selectively quantized int8 build differs in: calibration method, layers kept in float, widened ranges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["QuantChoice"]


@dataclass(frozen=True)
class QuantChoice:
    """How one int8 artifact departs from the plain build (the fallback loop's steps are these).

    Attributes:
        method: ONNX calibration method ("minmax", "entropy", "percentile"), or None for the conversion's.
        kept_float: layers kept in float: ONNX node names / TFLite op output tensor names.
        widened: ``(tensor, min, max)``: ONNX activations quantized over this range instead of the calibrated one.
        activations: "int8", or "int16" (16-bit activations, 8-bit weights; not for the Edge TPU).
    """

    method: str | None = None
    kept_float: tuple[str, ...] = ()
    widened: tuple[tuple[str, float, float], ...] = ()
    activations: str = "int8"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kept_float": list(self.kept_float), "activations": self.activations,
                "widened": [{"tensor": t, "range": [lo, hi]} for t, lo, hi in self.widened]}
