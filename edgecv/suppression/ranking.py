"""Ranking candidates for greedy NMS: descending score, equal scores by ascending index.

Ranking sorts packed int64 keys (score bits, index) when every score is exactly
a float32, else it runs a stable argsort. With ``max_output`` only a prefix of
the ranking is sorted (:func:`ranked_prefix`), and only its boxes are converted
to the ``(5, K)`` rows the greedy strategies read (:func:`ranked_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import corner_rows

__all__ = ["IndexedBoxes", "prefix_horizon", "ranked_prefix", "ranked_rows", "ranked_classes", "box_rows"]

EMPTY = np.zeros(0, dtype=np.int64)
_PREFIX = 512               # with max_output, rank at least this many candidates before the rest
_PREFIX_PER_OUTPUT = 8      # ... and this many per box asked for
_LOW32 = np.int64(0xFFFFFFFF)


@dataclass(frozen=True, eq=False)
class IndexedBoxes:
    """Boxes shared by several candidates: candidate m is row ``index[m]`` of *boxes*.

    Attributes:
        boxes: ``(N, 4)`` corner boxes x1, y1, x2, y2.
        index: ``(M,)`` integer rows of *boxes*, one per candidate.
    """

    boxes: np.ndarray
    index: np.ndarray

    def take(self, order: np.ndarray, axis: int = 0) -> np.ndarray:
        """The boxes of candidates *order*, as ``ndarray.take`` would give them."""
        return self.boxes.take(self.index.take(order), axis=axis)


def prefix_horizon(max_output: int) -> int:
    """How many best-scoring candidates NMS with *max_output* ranks and examines first."""
    return max(_PREFIX, _PREFIX_PER_OUTPUT * max_output)


def box_rows(corners: np.ndarray) -> np.ndarray:
    """``(5, K)`` float64 rows x1, y1, x2, y2, area from ``(4, K)`` corner rows."""
    rows = np.empty((5, corners.shape[1]))
    rows[:4] = corners
    np.subtract(rows[2], rows[0], out=rows[4])
    rows[4] *= rows[3] - rows[1]
    return rows


def ranked_rows(boxes: np.ndarray | IndexedBoxes, order: np.ndarray) -> np.ndarray:
    """``(5, K)`` rows x1, y1, x2, y2, area of the boxes *order* picks (see :func:`box_rows`)."""
    return box_rows(corner_rows(boxes.take(order, axis=0), iou_safe=True))


def ranked_classes(class_ids: np.ndarray | None, order: np.ndarray) -> np.ndarray | None:
    """int64 class ids of the boxes *order* picks; ids beyond int32 are renumbered densely (same classes)."""
    if class_ids is None:
        return None
    c = class_ids.take(order).astype(np.int64)
    if c.size and (c.min() < -(2 ** 31) or c.max() >= 2 ** 31):
        c = np.unique(c, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return c


def _rank_keys(scores: np.ndarray, candidates: np.ndarray, float32_scores: bool) -> np.ndarray | None:
    """Unique int64 sort keys of *candidates*: ascending key = descending score, then ascending index.

    The high 32 bits hold the negated score as a float32 bit pattern mapped to
    signed integer order, the low 32 bits the index, so one plain (SIMD) sort
    of the keys gives the stable ranking that a stable argsort of the scores
    would, several times faster. Needs every score to be exactly a float32
    (*float32_scores* says the scores came as float32, float16 or 8/16-bit
    integers; else it is checked) and indices below 2**32; returns None otherwise.
    """
    if candidates.size == 0 or int(candidates[-1]) >= 1 << 32:
        return None
    values = scores[candidates]
    neg = np.subtract(0.0, values, dtype=np.float32)     # -score; 0 - 0.0 gives +0.0 for both zeros
    if not float32_scores and np.add(neg, values).any():  # a score that is not exactly a float32
        return None
    bits = neg.view(np.int32)
    flip = bits >> 31                                    # -1 for negative floats, else 0
    flip &= 0x7FFFFFFF
    bits ^= flip                                         # negative floats: reverse their magnitude order
    keys = bits.astype(np.int64)
    keys <<= 32
    keys |= candidates
    return keys


def ranked_prefix(scores: np.ndarray, candidates: np.ndarray, *, horizon: int, float32_scores: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The best-scoring part of *candidates* (ascending indices) in rank order, and the rest (unsorted).

    The prefix holds every candidate scoring at least the *horizon*-th best
    score (ties at the cut all go in), so every candidate of the rest ranks
    below every candidate of the prefix; without a cut (``candidates.size <= 2 *
    horizon``) the rest is empty. *float32_scores*: every score is known to be
    exactly a float32 (see :func:`_rank_keys`).
    """
    if candidates.size > 2 * horizon:
        values = scores[candidates]
        cut = np.partition(values, candidates.size - horizon)[candidates.size - horizon]   # horizon-th best
        top = values >= cut
        candidates, rest = candidates[top], candidates[~top]
    else:
        rest = EMPTY
    keys = _rank_keys(scores, candidates, float32_scores)
    if keys is not None:
        keys.sort()
        keys &= _LOW32
        return keys, rest
    return candidates[np.argsort(-scores[candidates], kind="stable")], rest
