"""The public entry points :func:`nms` and :func:`soft_nms`, and the one place their arguments are checked."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..boxes import corner_rows
from ..errors import ConfigError, did_you_mean
from .greedy import hard_nms_checked
from .ranking import IndexedBoxes, ranked_classes

__all__ = ["NMS_METHODS", "nms", "soft_nms"]

NMS_METHODS = ("hard", "linear", "gaussian")

# score dtypes whose every value is exactly a float32 (ranking by packed integer keys needs no check)
_FLOAT32_EXACT = frozenset(np.dtype(d) for d in ("float32", "float16", "int8", "uint8", "int16", "uint16", "bool"))


class _NmsArgs(NamedTuple):
    """:func:`nms` / :func:`soft_nms` arguments after checking (see :func:`_check_args`)."""

    boxes: np.ndarray | IndexedBoxes   # (N, 4) finite boxes, not converted; or boxes shared through box_index
    scores: np.ndarray                 # (N,) floating scores (integer scores as float64)
    float32_scores: bool               # every score is exactly a float32
    iou_threshold: float               # in [0, 1]
    score_threshold: float | None      # None or >= 0
    max_output: int | None             # None or >= 0
    class_ids: np.ndarray | None       # (N,) integer-valued class ids
    sigma: float                       # > 0


def _check_threshold(value, name: str, *, upper: float | None = None) -> float:
    """*value* as a float in ``[0, upper]`` (or ``>= 0`` and finite).

    Raises:
        ConfigError: not a real number, NaN, negative, infinite or above *upper*.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < 0 or math.isinf(v) or (upper is not None and v > upper):
        rng = f"[0, {upper:g}]" if upper is not None else ">= 0 and finite"
        hint = "; pass None to keep every finite score" if name == "score_threshold" else ""
        raise ConfigError(f"{name} must be {rng}, got {value!r}{hint}")
    return v


def _check_settings(iou_threshold, score_threshold, max_output, method: str, sigma
                    ) -> tuple[float, float | None, int | None]:
    """The checked ``(iou_threshold, score_threshold, max_output)``; *method* and *sigma* are checked too.

    Raises:
        ConfigError: an unknown method, a threshold out of range, ``sigma <= 0`` or a negative ``max_output``.
    """
    if method not in NMS_METHODS:
        raise ConfigError(f"unknown NMS method {method!r}{did_you_mean(str(method), NMS_METHODS)}; "
                          f"use one of {', '.join(NMS_METHODS)}")
    if iou_threshold is None:
        raise ConfigError("iou_threshold is required, e.g. iou_threshold=0.5")
    iou = _check_threshold(iou_threshold, "iou_threshold", upper=1.0)
    score = None if score_threshold is None else _check_threshold(score_threshold, "score_threshold")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma must be a finite number > 0 (Gaussian Soft-NMS width), got {sigma!r}")
    if max_output is not None and (isinstance(max_output, bool) or not isinstance(max_output, numbers.Integral)
                                   or max_output < 0):
        raise ConfigError(f"max_output must be None or an integer >= 0, got {max_output!r}")
    return iou, score, (None if max_output is None else int(max_output))


def _checked_boxes(boxes) -> np.ndarray:
    """*boxes* as an ``(N, 4)`` real array whose every coordinate is finite (not converted).

    Raises:
        ConfigError: another shape or dtype, or a NaN/infinite coordinate.
    """
    arr = np.asarray(boxes)
    if arr.dtype.kind not in "biuf" or arr.ndim != 2 or arr.shape[1] != 4:
        corner_rows(arr)                         # raises the precise error
    if arr.dtype.kind == "f" and arr.size:
        # NaN and inf survive a sum; a non-finite sum of finite values (overflow) is checked exactly.
        # Summed in the array's own dtype: a cast would allocate a 64 KiB buffer on every call.
        total = float(np.add.reduce(arr, axis=None))
        if not math.isfinite(total):
            corner_rows(arr)                     # raises on a NaN/inf coordinate, passes on overflow
    return arr


def _indexed_boxes(boxes: np.ndarray, box_index) -> IndexedBoxes:
    """*boxes* shared by candidates through *box_index*.

    Raises:
        ConfigError: *box_index* not a 1-D integer array, or a row outside *boxes*.
    """
    n = boxes.shape[0]
    rows = np.asarray(box_index)
    if rows.ndim != 1 or rows.dtype.kind not in "iu":
        raise ConfigError(f"box_index must be a 1-D integer array (one box row per candidate), "
                          f"got shape {rows.shape} dtype {rows.dtype}")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ConfigError(f"box_index holds rows outside 0..{n - 1} of the {n} boxes")
    return IndexedBoxes(boxes, rows)


def _checked_class_ids(class_ids, n: int) -> np.ndarray:
    """*class_ids* as an ``(n,)`` array of whole numbers.

    Raises:
        ConfigError: another length, a non-integer dtype, or floats that are not whole numbers.
    """
    c = np.asarray(class_ids)
    if c.ndim != 1 or c.shape[0] != n:
        raise ConfigError(f"class_ids must have shape ({n},), one per box, got {c.shape}")
    if c.dtype.kind == "f":
        if not np.isfinite(c).all() or (c != np.round(c)).any() or (np.abs(c) >= 2.0 ** 53).any():
            raise ConfigError("class_ids must be integers; float class ids must hold whole numbers "
                              "(TFLite emits classes as float: cast with .astype(int))")
    elif c.dtype.kind not in "biu":
        raise ConfigError(f"class_ids must be integers, got dtype {c.dtype}")
    return c


def _check_args(boxes, scores, *, iou_threshold, score_threshold, max_output, class_ids, method, sigma,
                box_index) -> _NmsArgs:
    """Every argument of :func:`nms` / :func:`soft_nms`, checked once.

    Raises:
        ConfigError: see :func:`nms`.
    """
    iou, score, limit = _check_settings(iou_threshold, score_threshold, max_output, method, sigma)
    arr = _checked_boxes(boxes)
    if box_index is not None:
        arr = _indexed_boxes(arr, box_index)
    n = arr.shape[0] if box_index is None else arr.index.size
    s = np.asarray(scores)
    if s.dtype.kind not in "biuf":
        raise ConfigError(f"scores must be a real numeric array, got dtype {s.dtype}")
    if s.ndim != 1 or s.shape[0] != n:
        raise ConfigError(f"scores must have shape ({n},), one per box, got {s.shape}; "
                          "pass one score per box (e.g. the max class score) or flatten it")
    float32_scores = s.dtype in _FLOAT32_EXACT
    if s.dtype.kind != "f":
        s = s.astype(np.float64)                 # integers: negation and comparisons must not wrap
    cls = None if class_ids is None else _checked_class_ids(class_ids, n)
    return _NmsArgs(arr, s, float32_scores, iou, score, limit, cls, float(sigma))   # (positional: per-call cost)


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float, score_threshold: float | None = None,
        max_output: int | None = None, class_ids: np.ndarray | None = None, method: str = "hard",
        sigma: float = 0.5, box_index: np.ndarray | None = None) -> np.ndarray:
    """Non-maximum suppression; returns kept indices ordered by descending score.

    Args:
        boxes: ``(N, 4)`` corner boxes ``x1, y1, x2, y2`` (pixels or normalised;
            inverted corners are normalised).
        scores: ``(N,)`` scores; NaN and infinite scores are dropped.
        iou_threshold: suppress a box whose IoU with a kept box is ``> iou_threshold``; in ``[0, 1]``.
        score_threshold: keep only scores ``> score_threshold`` (``>= 0``); None keeps every finite score.
        max_output: keep at most this many (None: all).
        class_ids: optional ``(N,)`` integer class per box; boxes of different
            classes never suppress each other.
        method: ``"hard"`` (greedy NMS), or ``"linear"`` / ``"gaussian"``
            Soft-NMS (see :func:`soft_nms`, whose decayed scores this drops).
        sigma: Gaussian Soft-NMS width, ``> 0``.
        box_index: optional ``(M,)`` integer rows of *boxes*: candidate m is box
            ``boxes[box_index[m]]``, and *scores* / *class_ids* hold one entry
            per candidate. Multi-class SSD outputs then share one decoded box
            per anchor instead of copying it for every (anchor, class) pair
            (see :func:`edgecv.scores_above`).

    Returns:
        int64 array of indices into *boxes* (with *box_index*: into the candidates).

    Raises:
        ConfigError: boxes not ``(N, 4)``, scores or class_ids of another length,
            a NaN/infinite coordinate, a threshold out of range, an unknown
            method, ``sigma <= 0``, a negative ``max_output`` or a *box_index*
            row outside *boxes*.
    """
    args = _check_args(boxes, scores, iou_threshold=iou_threshold, score_threshold=score_threshold,
                       max_output=max_output, class_ids=class_ids, method=method, sigma=sigma, box_index=box_index)
    if method != "hard":
        return _soft_nms_checked(args, method=method)[0]
    return hard_nms_checked(args.boxes, args.scores, iou_threshold=args.iou_threshold,
                            score_threshold=args.score_threshold, max_output=args.max_output,
                            class_ids=args.class_ids, float32_scores=args.float32_scores)


def soft_nms(boxes: np.ndarray, scores: np.ndarray, *, iou_threshold: float, score_threshold: float | None = None,
             max_output: int | None = None, class_ids: np.ndarray | None = None, method: str = "gaussian",
             sigma: float = 0.5, box_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Soft-NMS (Bodla et al. 2017): decay the scores of overlapping boxes instead of removing them.

    Repeatedly pick the candidate with the highest current score (ties: lower
    index), then multiply the score of every remaining candidate of the same
    class by a weight of its IoU with the pick:

    * ``"linear"``: ``1 - iou`` when ``iou > iou_threshold``, else 1;
    * ``"gaussian"``: ``exp(-iou**2 / sigma)`` for every remaining box
      (``iou_threshold`` is not used). TensorFlow's ``soft_nms_sigma`` is
      ``sigma / 2`` in this convention (it uses ``exp(-iou**2 / (2 * s))``).

    A candidate whose decayed score is no longer ``> score_threshold`` is
    dropped; with ``score_threshold=None`` every finite-scored box is
    eventually returned. Scores are handled in float64.

    *box_index* works as in :func:`nms`.

    Returns:
        ``(indices, decayed_scores)``: int64 indices in pick order (descending
        decayed score) and the float64 score each had when picked.

    Raises:
        ConfigError: as :func:`nms`, and ``method="hard"`` (use :func:`nms`).
    """
    if method == "hard":
        raise ConfigError("soft_nms needs method='linear' or 'gaussian'; for hard NMS call edgecv.nms")
    args = _check_args(boxes, scores, iou_threshold=iou_threshold, score_threshold=score_threshold,
                       max_output=max_output, class_ids=class_ids, method=method, sigma=sigma, box_index=box_index)
    return _soft_nms_checked(args, method=method)


def _soft_nms_checked(args: _NmsArgs, *, method: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`soft_nms` on checked arguments; *method* is ``"linear"`` or ``"gaussian"``."""
    s = args.scores.astype(np.float64, copy=False)
    boxes = args.boxes.take(np.arange(s.size)) if isinstance(args.boxes, IndexedBoxes) else args.boxes
    b = corner_rows(boxes, iou_safe=True)
    cls = ranked_classes(args.class_ids, np.arange(s.size))
    st = args.score_threshold
    ok = np.isfinite(s)
    if st is not None:
        ok &= s > st
    idx = np.flatnonzero(ok)                     # ascending: argmax picks the lower index on ties
    cur = s[idx].copy()
    x1, y1, x2, y2 = b.take(idx, axis=1)
    area = (x2 - x1) * (y2 - y1)
    cl = None if cls is None else cls[idx]
    cap = idx.size if args.max_output is None else min(args.max_output, idx.size)
    picked: list[int] = []
    picked_scores: list[float] = []
    live = np.arange(idx.size)
    while live.size and len(picked) < cap:
        a = int(np.argmax(cur[live]))
        p = int(live[a])
        picked.append(p)
        picked_scores.append(float(cur[p]))
        live = np.delete(live, a)
        if live.size == 0:
            break
        iw = np.minimum(x2[live], x2[p]) - np.maximum(x1[live], x1[p])
        ih = np.minimum(y2[live], y2[p]) - np.maximum(y1[live], y1[p])
        inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        union = (area[live] + area[p]) - inter
        iou = np.zeros(live.size)
        np.divide(inter, union, out=iou, where=(area[live] > 0) & (area[p] > 0))
        if method == "linear":
            weight = np.where(iou > args.iou_threshold, 1.0 - iou, 1.0)
        else:
            weight = np.exp(-(iou * iou) / args.sigma)
        if cl is not None:
            weight = np.where(cl[live] == cl[p], weight, 1.0)
        cur[live] *= weight
        if st is not None:
            live = live[cur[live] > st]
    return idx[np.asarray(picked, dtype=np.int64)], np.asarray(picked_scores, dtype=np.float64)
