"""Per-layer quantization error and calibration coverage: the arithmetic, and the typed diagnosis both formats share.

For one quantized tensor with scale ``s``, zero point ``z`` and integer range
``[qmin, qmax]``, its calibrated range is ``[s (qmin - z), s (qmax - z)]``. On a
float activation ``x`` of that tensor:

* ``rmse_scale``: the RMSE of ``fake_quant(x) - x`` over ``s``, in steps of the
  scale: about 0.29 (uniform rounding) when the range fits, far more when values
  are clipped;
* ``sqnr_db``: ``10 log10(sum x^2 / sum (fake_quant(x) - x)^2)``;
* ``outside``: the share of values outside the calibrated range (clipped).

Each statistic is that of the tensor alone (every other tensor in float), so a
large one names the layer that loses the accuracy, not the layers after it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TensorQuant", "TensorStats", "LayerError", "QuantDiagnosis", "fake_quant", "accumulate", "layer_errors",
           "sqnr_db", "ROUNDING_RMSE", "CLIPPING_SHARE",
           "DEBUG_CALIBRATION_SAMPLES", "DEBUG_VALIDATION_SAMPLES"]

#: RMSE in scale steps of rounding alone (uniform error over one step: 1/sqrt(12)).
ROUNDING_RMSE = 1.0 / math.sqrt(12.0)
#: Calibration inputs the per-layer error is measured on (at most).
DEBUG_CALIBRATION_SAMPLES = 8
#: Validation inputs the coverage is measured on (at most).
DEBUG_VALIDATION_SAMPLES = 32
#: Share of values outside the calibrated range above which a tensor counts as clipped.
CLIPPING_SHARE = 1e-4


@dataclass(frozen=True)
class TensorQuant:
    """How one activation tensor is quantized.

    Attributes:
        tensor: its name in the float model.
        layer: the node / op that computes it (what is kept in float).
        op_type: that node's type ("Conv", "CONV_2D", ...).
        scale: quantization scale (per tensor).
        zero_point: zero point.
        qmin, qmax: the integer range (-128..127 for int8).
    """

    tensor: str
    layer: str
    op_type: str
    scale: float
    zero_point: int
    qmin: int = -128
    qmax: int = 127

    @property
    def range(self) -> tuple[float, float]:
        """The calibrated real range ``[s (qmin - z), s (qmax - z)]``."""
        return self.scale * (self.qmin - self.zero_point), self.scale * (self.qmax - self.zero_point)


def fake_quant(x: np.ndarray, q: TensorQuant) -> np.ndarray:
    """*x* quantized and dequantized with *q* (float64)."""
    levels = np.clip(np.round(x.astype(np.float64) / q.scale) + q.zero_point, q.qmin, q.qmax)
    return (levels - q.zero_point) * q.scale


@dataclass
class TensorStats:
    """Running sums for one tensor over several inputs (see :func:`accumulate`)."""

    count: int = 0
    outside: int = 0
    noise: float = 0.0
    signal: float = 0.0
    below: int = 0
    above: int = 0
    lowest: float = math.inf
    highest: float = -math.inf

    def rmse_scale(self, scale: float) -> float:
        """RMSE of the quantization error in steps of *scale*."""
        return math.sqrt(self.noise / max(self.count, 1)) / scale if scale > 0 else math.inf

    def sqnr_db(self) -> float:
        """Signal to quantization noise ratio in dB (inf when there is no noise)."""
        if self.noise <= 0:
            return math.inf
        return 10.0 * math.log10(max(self.signal, 1e-300) / self.noise)

    def share_outside(self) -> float:
        return self.outside / self.count if self.count else 0.0


def accumulate(stats: TensorStats, x: np.ndarray, q: TensorQuant) -> None:
    """Add the values of one float activation *x* of tensor *q* to *stats*."""
    flat = np.asarray(x, np.float64).reshape(-1)
    if flat.size == 0:
        return
    lo, hi = q.range
    err = fake_quant(flat, q) - flat
    stats.count += flat.size
    below, above = int(np.count_nonzero(flat < lo)), int(np.count_nonzero(flat > hi))
    stats.below += below
    stats.above += above
    stats.outside += below + above
    stats.noise += float(np.dot(err, err))
    stats.signal += float(np.dot(flat, flat))
    stats.lowest = min(stats.lowest, float(flat.min()))
    stats.highest = max(stats.highest, float(flat.max()))


@dataclass(frozen=True)
class LayerError:
    """The quantization error of one layer's output tensor, alone, against float.

    Attributes:
        layer, op_type, tensor: as in :class:`TensorQuant`.
        range: its calibrated real range (min, max).
        rmse_scale: RMSE of the error in quantization steps, on the calibration inputs.
        sqnr_db: signal to quantization noise on the calibration inputs (dB).
        outside_validation: share of validation values outside the calibrated range (clipped), or None.
        validation_range: lowest and highest validation value, or None.
        rmse_scale_validation: the RMSE on the validation inputs (clipping shows here), or None.
    """

    layer: str
    op_type: str
    tensor: str
    range: tuple[float, float]
    rmse_scale: float
    sqnr_db: float
    outside_validation: float | None = None
    validation_range: tuple[float, float] | None = None
    rmse_scale_validation: float | None = None

    @property
    def clipped(self) -> bool:
        """More than :data:`CLIPPING_SHARE` of the validation values fall outside the calibrated range."""
        return self.outside_validation is not None and self.outside_validation > CLIPPING_SHARE

    @property
    def badness(self) -> float:
        """Ranking key: the larger of the calibration and validation RMSE in steps (clipping raises the latter)."""
        return max(self.rmse_scale, self.rmse_scale_validation or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "op_type": self.op_type, "tensor": self.tensor,
                "range": [float(v) for v in self.range], "rmse_scale": _finite(self.rmse_scale),
                "sqnr_db": _finite(self.sqnr_db), "outside_validation": self.outside_validation,
                "validation_range": None if self.validation_range is None else list(self.validation_range),
                "rmse_scale_validation": _finite(self.rmse_scale_validation), "clipped": self.clipped}


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


@dataclass(frozen=True)
class QuantDiagnosis:
    """Per-layer error and coverage of one quantized artifact.

    Attributes:
        layers: every quantized activation tensor, worst first (by :attr:`LayerError.badness`).
        outputs: output role / name -> SQNR (dB) of the quantized model's output against float on the
            calibration inputs (the error of the outputs themselves).
        calibration_samples: calibration inputs the errors were measured on.
        validation_samples: validation inputs the coverage was measured on (0: none).
        method: how it was measured.
    """

    layers: tuple[LayerError, ...]
    outputs: Mapping[str, float] = field(default_factory=dict)
    calibration_samples: int = 0
    validation_samples: int = 0
    method: str = ""

    def clipped(self) -> list[LayerError]:
        """The layers whose validation values fall outside their calibrated range, most clipped first."""
        return sorted((e for e in self.layers if e.clipped), key=lambda e: -(e.outside_validation or 0.0))

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        layers = self.layers if top is None else self.layers[:top]
        return {"method": self.method, "calibration_samples": self.calibration_samples,
                "validation_samples": self.validation_samples, "layer_count": len(self.layers),
                "outputs_sqnr_db": {k: _finite(v) for k, v in self.outputs.items()},
                "layers": [e.to_dict() for e in layers],
                "clipped_layers": [e.layer for e in self.clipped()]}


def layer_errors(quants: Sequence[TensorQuant], calib: Mapping[str, TensorStats],
                 valid: Mapping[str, TensorStats]) -> tuple[LayerError, ...]:
    """One :class:`LayerError` per tensor measured on the calibration inputs, worst first."""
    out = []
    for q in quants:
        c = calib.get(q.tensor)
        if c is None or c.count == 0:
            continue
        v = valid.get(q.tensor)
        seen = v is not None and v.count > 0
        out.append(LayerError(q.layer, q.op_type, q.tensor, q.range, c.rmse_scale(q.scale), c.sqnr_db(),
                              v.share_outside() if seen else None, (v.lowest, v.highest) if seen else None,
                              v.rmse_scale(q.scale) if seen else None))
    return tuple(sorted(out, key=lambda e: -e.badness))


def sqnr_db(reference: Iterable[np.ndarray], got: Iterable[np.ndarray]) -> float:
    """SQNR (dB) of *got* against *reference* over pairs of arrays (inf: identical; -inf: non-finite output)."""
    signal = noise = 0.0
    for r, g in zip(reference, got):
        r64, g64 = np.asarray(r, np.float64).reshape(-1), np.asarray(g, np.float64).reshape(-1)
        if r64.size != g64.size:
            continue
        if not np.all(np.isfinite(g64)):
            return -math.inf
        d = g64 - r64
        signal += float(np.dot(r64, r64))
        noise += float(np.dot(d, d))
    if noise <= 0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-300) / noise)
