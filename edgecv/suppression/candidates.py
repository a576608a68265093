"""Candidate extraction before NMS: score thresholds compared in float64, and on quantized scores as stored.

Every score threshold in edgecv goes through :func:`greater_f64`. A quantized
model's 8- or 16-bit scores are thresholded on the stored integers
(:func:`quantized_threshold`) and only the candidates are dequantized
(:func:`dequantize`), with exactly the float path's result.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Union

import numpy as np

from ..errors import ConfigError
from ..specs import QuantParams
from .ranking import EMPTY

__all__ = ["greater_f64", "candidate_indices", "quantization_pair", "quantized_threshold", "dequantize",
           "scores_above"]

Quantization = Union[tuple[float, int], QuantParams]   # (scale, zero_point), or per-tensor QuantParams


def greater_f64(values: np.ndarray, threshold: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """``values > threshold`` compared in float64 whatever the dtype of *values*.

    A plain ``>`` compares float32 scores with the threshold rounded to
    float32 (NumPy 1.x value-based casting and NumPy 2's NEP 50 alike), so
    ``float32(0.3) > 0.3`` would be False; every score threshold in edgecv
    goes through here.
    """
    return np.greater(values, threshold, out=out, signature="dd->?")


def candidate_indices(scores: np.ndarray, score_threshold: float | None) -> np.ndarray:
    """Indices of finite *scores* above *score_threshold* (ascending index), compared in float64; None: every finite."""
    ok = np.isfinite(scores)
    if score_threshold is not None:
        ok &= greater_f64(scores, score_threshold)
    return ok.nonzero()[0]


def quantization_pair(quantization: Quantization) -> tuple[float, int]:
    """``(scale, zero_point)`` as ``(float, int)`` from a pair or a per-tensor :class:`edgecv.specs.QuantParams`.

    Raises:
        ConfigError: not a pair, per-axis parameters, a scale that is not finite and > 0,
            or a zero point that is not an integer.
    """
    if type(quantization) is tuple and len(quantization) == 2 and type(quantization[0]) is float \
            and type(quantization[1]) is int and 0 < quantization[0] < math.inf:
        return quantization                                  # already normalised (the Detector's per-frame call)
    scale, zero = getattr(quantization, "scale", None), getattr(quantization, "zero_point", None)
    if scale is not None:                                    # QuantParams: one-element tuples when per tensor
        if len(scale) != 1 or len(zero) != 1:
            raise ConfigError("per-axis quantization has no single (scale, zero_point); dequantize the tensor first")
        scale, zero = scale[0], zero[0]
    else:
        try:
            scale, zero = quantization
        except (TypeError, ValueError):
            raise ConfigError(f"quantization must be (scale, zero_point), got {quantization!r}") from None
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"quantization scale must be a finite number > 0, got {scale!r}")
    if isinstance(zero, bool) or not isinstance(zero, numbers.Real) or not math.isfinite(zero) \
            or float(zero) != int(zero):
        raise ConfigError(f"quantization zero_point must be an integer, got {zero!r}")
    return float(scale), int(zero)


@functools.lru_cache(maxsize=128)
def _first_stored_above(dtype: str, threshold: float, scale: float, zero: int) -> int | None:
    values = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1)
    real = dequantize(values.astype(dtype), (scale, zero))
    passing = greater_f64(real, threshold)
    return int(values[passing.argmax()]) if passing[-1] else None   # (q - zero) * scale grows with q


def quantized_threshold(dtype: np.typing.DTypeLike, score_threshold: float, quantization: Quantization) -> int | None:
    """The smallest stored value whose dequantized score is ``> score_threshold``; None if none is.

    Dequantized means as :func:`dequantize` (and :class:`edgecv.Model`) compute it,
    ``float32(q - zero_point) * float32(scale)``, and compared in float64, so
    ``q >= quantized_threshold(...)`` selects exactly the scores the float path
    would, reading the 8- or 16-bit tensor as the runtime wrote it.

    Raises:
        ConfigError: *dtype* not an integer type of at most 16 bits, or bad *quantization*.
    """
    dt = np.dtype(dtype)
    if dt.kind not in "iu" or dt.itemsize > 2:
        raise ConfigError(f"quantized scores must be 8- or 16-bit integers, got {dt}")
    scale, zero = quantization_pair(quantization)
    return _first_stored_above(dt.str, float(score_threshold), scale, zero)


def dequantize(values: np.ndarray, quantization: Quantization) -> np.ndarray:
    """Real float32 values of per-tensor quantized *values*: ``float32(q - zero_point) * float32(scale)``.

    The same arithmetic, rounding included, as :class:`edgecv.Model` uses for its outputs.

    Raises:
        ConfigError: bad *quantization* (see :func:`quantized_threshold`).
    """
    scale, zero = quantization_pair(quantization)
    real = np.subtract(values, np.float32(zero), dtype=np.float32)
    real *= np.float32(scale)
    return real


def scores_above(scores: np.ndarray, score_threshold: float, *, background: int | None = None,
                 quantization: Quantization | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row, class) of a ``(N, C)`` score matrix with ``score > score_threshold``.

    The SSD candidate step before class-aware NMS: one pass over the matrix,
    no per-class loop. NaN scores never pass.

    Args:
        scores: ``(N, C)`` real scores, one row per anchor; with *quantization*, the
            8- or 16-bit integer scores as a quantized model outputs them.
        score_threshold: keep ``score > score_threshold``.
        background: a class column to skip (0 for TF OD API SSD models), or None.
        quantization: ``(scale, zero_point)`` of integer *scores* (TFLite's
            ``output_details[i]["quantization"]``, or a per-tensor
            :class:`edgecv.specs.QuantParams`): the threshold is applied to the stored
            integers (a quarter of the memory traffic of float32) and only the
            candidates are dequantized, with exactly the float path's result.

    Returns:
        ``(rows, classes, values)``: int64 row and column indices in row-major
        order and the scores there (float32 when dequantized here).

    Raises:
        ConfigError: *scores* is not a 2-D real array (integer of at most 16 bits
            with *quantization*), a NaN threshold, a background column outside
            the matrix, or bad *quantization*.
    """
    s = np.asarray(scores)
    if s.ndim != 2 or s.dtype.kind not in "biuf":
        raise ConfigError(f"scores must be a real (N, C) array, got shape {s.shape} dtype {s.dtype}; "
                          "drop the batch axis first, e.g. scores[0]")
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real) \
            or math.isnan(score_threshold):
        raise ConfigError(f"score_threshold must be a number, got {score_threshold!r}")
    n, c = s.shape
    if background is not None and (isinstance(background, bool) or not isinstance(background, numbers.Integral)
                                   or not 0 <= background < c):
        raise ConfigError(f"background must be None or a class column in 0..{c - 1}, got {background!r}")
    threshold = float(score_threshold)
    if quantization is None:
        def above(v: np.ndarray) -> np.ndarray:
            return greater_f64(v, threshold)
    else:
        first_q = quantized_threshold(s.dtype, threshold, quantization)
        if first_q is None:
            return EMPTY.copy(), EMPTY.copy(), np.zeros(0, np.float32)
        stored = np.asarray(first_q, dtype=s.dtype)

        def above(v: np.ndarray) -> np.ndarray:
            return np.greater_equal(v, stored)
    first = 0
    if background is None:
        mask = above(s)
    elif background in (0, c - 1):
        first = 1 if background == 0 else 0
        mask = above(s[:, first:first + c - 1])   # foreground columns only
    else:
        mask = above(s)
        mask[:, background] = False
    width = mask.shape[1]
    flat = mask.reshape(-1).nonzero()[0]
    rows = flat // width
    cols = flat - rows * width                   # (np.divmod is several times slower)
    if first:
        cols += first
    values = s.reshape(-1).take(rows * c + cols)
    return rows, cols, values if quantization is None else dequantize(values, quantization)
