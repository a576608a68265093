"""Exact greedy (hard) NMS on checked inputs: rank the candidates, then pick the strategy that suits them.

* up to ``kernels.FEW`` candidates: Python floats (:func:`_greedy_few`), a few
  microseconds instead of two dozen numpy calls;
* up to ``kernels.DENSE_BLOCK``: one dense conflict matrix
  (:func:`kernels.resolve_dense`);
* more: independent groups (:func:`grouped.greedy_grouped`) when the boxes
  split into them (detector output), else rounds of blocks with a centre
  index, dense ones, or in sparse scenes growing ones resolved from their
  window pairs (:func:`blocked.greedy_blocked`).

With ``max_output`` only a prefix of the ranking is sorted and examined first
(:func:`ranking.ranked_prefix`), and more only when it keeps too few boxes.
"""

from __future__ import annotations

import numpy as np

from . import grouped, kernels
from .blocked import greedy_blocked
from .candidates import candidate_indices
from .kernels import greedy_python, resolve_dense
from .ranking import EMPTY, IndexedBoxes, prefix_horizon, ranked_classes, ranked_prefix, ranked_rows

__all__ = ["hard_nms_checked"]

_FEW_LIMIT = 2.0 ** 500     # larger coordinates take the numpy path (it scales them for exact areas)


def hard_nms_checked(boxes: np.ndarray | IndexedBoxes, scores: np.ndarray, *, iou_threshold: float,
                     score_threshold: float | None = None, max_output: int | None = None,
                     class_ids: np.ndarray | None = None, float32_scores: bool = False,
                     horizon: int | None = None) -> np.ndarray:
    """:func:`edgecv.nms` (method "hard") on arguments that are already checked: the Detector's per-frame entry.

    Args:
        boxes: ``(N, 4)`` array of finite corner boxes, or :class:`IndexedBoxes`.
        scores: ``(N,)`` float scores (NaN allowed: dropped).
        iou_threshold: in ``[0, 1]``.
        score_threshold: None or ``>= 0``.
        max_output: None or ``>= 0``.
        class_ids: None or ``(N,)`` integer class ids.
        float32_scores: every score is known to be exactly a float32 (ranks by packed keys unchecked).
        horizon: with *max_output*, how many best candidates to rank and examine
            first (default :func:`prefix_horizon`); a hint only, e.g. the depth at
            which the previous frame of a stream found its *max_output*-th box:
            when that prefix keeps fewer, the next ones follow.

    Returns:
        int64 indices of the kept candidates, by descending score.
    """
    # Rank on the scores alone, then convert only the boxes the ranking reaches (with max_output
    # over many candidates, a small prefix of them).
    idx = candidate_indices(scores, score_threshold)
    if idx.size == 0:
        return EMPTY.copy()
    if idx.size <= kernels.FEW:
        kept = _greedy_few(boxes, scores, idx, iou_threshold, max_output, class_ids)
        if kept is not None:
            return kept
    if idx.size <= kernels.DENSE_BLOCK:          # one dense block, the fewest numpy calls
        order = idx[np.argsort(-scores[idx], kind="stable")]
        rows = ranked_rows(boxes, order)
        kept = resolve_dense(rows, ranked_classes(class_ids, order), iou_threshold, zero_area=not rows[4].all())
        return order[kept[:max_output]]
    if max_output is None:
        order, _ = ranked_prefix(scores, idx, horizon=idx.size, float32_scores=float32_scores)
        kept = _greedy_sorted(ranked_rows(boxes, order), ranked_classes(class_ids, order), iou_threshold,
                              order.size)
        return order[kept]
    # Greedy decisions for a rank depend only on higher ranks: rank and examine a prefix of the
    # candidates; if it yields fewer than max_output boxes, carry the kept ones (which never
    # suppress each other) into the next, larger prefix of what is left.
    kept_idx = EMPTY
    horizon = prefix_horizon(max_output) if horizon is None else max(int(horizon), max_output, 1)
    while True:
        prefix, idx = ranked_prefix(scores, idx, horizon=horizon, float32_scores=float32_scores)
        order = np.concatenate([kept_idx, prefix])
        kept = _greedy_sorted(ranked_rows(boxes, order), ranked_classes(class_ids, order), iou_threshold,
                              max_output)
        kept_idx = order[kept]
        if kept_idx.size >= max_output or idx.size == 0:
            return kept_idx
        horizon *= 2


def _greedy_few(boxes: np.ndarray | IndexedBoxes, scores: np.ndarray, idx: np.ndarray, iou_threshold: float,
                max_output: int | None, class_ids: np.ndarray | None) -> np.ndarray | None:
    """Greedy NMS over a few candidates *idx* with Python floats; the kept candidates in rank order.

    The arithmetic is :func:`kernels.conflict_matrix`' operation for operation in IEEE
    float64 (see :func:`kernels.greedy_python`), so the result is the numpy path's
    exactly; a handful of boxes costs a few microseconds instead of two dozen numpy
    calls, which right after an inference (cold caches) cost far more than their
    arithmetic. Returns None when a coordinate is beyond ``2**500`` (the numpy path
    rescales those).
    """
    values = scores[idx].tolist()
    order = sorted(range(len(values)), key=values.__getitem__, reverse=True)   # stable: ties by index
    corners = boxes.take(idx, axis=0).tolist()
    classes = None if class_ids is None else class_ids[idx].tolist()
    rows = []
    for m in order:
        x1, y1, x2, y2 = corners[m]
        if x1 > x2:
            x1, x2 = x2, x1
        if y1 > y2:
            y1, y2 = y2, y1
        if max(-x1, x2, -y1, y2) > _FEW_LIMIT:
            return None
        rows.append((x1, y1, x2, y2, (x2 - x1) * (y2 - y1)))
    kept = greedy_python(rows, None if classes is None else [classes[m] for m in order], iou_threshold,
                         len(order) if max_output is None else max_output)
    return idx[np.array([order[r] for r in kept], dtype=np.int64)]


def _greedy_sorted(rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float, max_output: int
                   ) -> np.ndarray:
    """Greedy NMS over ``(5, K)`` rank-ordered box rows (see :func:`ranking.box_rows`); kept ranks (ascending)."""
    k = rows.shape[1]
    if k == 0 or max_output == 0:
        return EMPTY
    if iou_threshold >= 1.0:                     # IoU never exceeds 1: nothing is suppressed
        return np.arange(min(k, max_output), dtype=np.int64)
    if k <= kernels.DENSE_BLOCK:                 # one dense block decides everything
        return resolve_dense(rows, classes, iou_threshold, zero_area=not rows[4].all())[:max_output]
    kept = grouped.greedy_grouped(rows, classes, iou_threshold, max_output if max_output < k else None)
    if kept is not None:
        return kept[:max_output]
    return greedy_blocked(rows, classes, iou_threshold, max_output)
