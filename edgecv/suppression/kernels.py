"""The IoU arithmetic every greedy strategy shares, and the dense block that decides a few boxes at once.

Boxes arrive as ``(5, K)`` float64 rows x1, y1, x2, y2, area in rank order
(see :func:`edgecv.suppression.ranking.box_rows`). Every path computes a pair's
IoU with the same float64 operations (``iw`` clipped at 0, ``ih`` not,
``union = (a_i + a_j) - inter``, ``inter / union > t``), so whichever strategy
decides a pair, it decides it alike.
"""

from __future__ import annotations

import threading

import numpy as np

from ..floats import SMALLEST_NORMAL

__all__ = ["DENSE_BLOCK", "FEW", "centre_factor", "conflict_matrix", "paired_iou", "resolve_dense", "greedy_python"]

# Read as kernels.DENSE_BLOCK / kernels.FEW by every strategy, so that one assignment changes them all.
DENSE_BLOCK = 96            # blocks up to this size are resolved with a dense conflict matrix
                            # (its float64 temporaries stay under 20 KiB each)
FEW = 16                    # up to this many boxes, greedy NMS runs on Python floats (greedy_python)
# What a union of 0 (two zero-area boxes) becomes, so that 0 / TINY = 0. A normal number: after a
# tflite-runtime invoke on aarch64 the thread flushes subnormals to 0 (see edgecv.floats).
TINY = SMALLEST_NORMAL


def centre_factor(iou_threshold: float) -> float:
    """``max(1 - t, (1/t - 1) / 2)`` for t > 0: IoU > t needs ``|c_i - c_j| < s_i * factor`` on each axis.

    (c: box centres on one axis, s: box sizes on it.) IoU > t implies an overlap
    on the axis ``> t * max(s_i, s_j)``, and the overlap is at most
    ``(s_i + s_j) / 2 - |c_i - c_j|``; maximising over ``s_j`` gives the factor.
    """
    t = iou_threshold
    return max(1.0 - t, 0.5 * (1.0 / t - 1.0))


class _Scratch(threading.local):
    """Per-thread work matrices for :func:`conflict_matrix`, grown on demand and reused by every call.

    Every matrix operation runs on full, contiguous ``(m, n)`` views of these
    buffers, with rows and columns spread by ``np.copyto`` (which allocates
    nothing): a broadcasting ufunc such as ``np.minimum.outer`` or
    ``a[:, None] - b`` allocates iterator buffers of twice its result's size on
    each call, which for a 48 x 48 block was 38 KB per operation. Constants
    are full matrices too: ``np.maximum(m, 0.0)`` runs 3-4x slower than
    ``np.maximum(m, zeros)`` (no SIMD loop for a scalar operand).
    """

    size = 0

    def get(self, m: int, n: int) -> tuple[np.ndarray, ...]:
        """Contiguous ``(m, n)`` views: four float64 work matrices, two bool ones, then read-only zeros and TINY.

        The views of a shape are kept (up to 64 shapes), so a repeated shape costs one dict lookup.
        """
        views = self.__dict__.get("views", {}).get((m, n))
        if views is not None:
            return views
        k = m * n
        if k > self.size:
            self.size = max(k, DENSE_BLOCK * DENSE_BLOCK)
            work = [np.empty(self.size) for _ in range(4)] + [np.empty(self.size, bool) for _ in range(2)]
            constants = [np.zeros(self.size), np.full(self.size, TINY)]
            for c in constants:
                c.flags.writeable = False
            self.flat = work + constants
            self.views = {}
        elif len(self.views) >= 64:
            self.views = {}
        shape = (m, n)
        views = self.views[shape] = tuple(f[:k].reshape(shape) for f in self.flat)
        return views


_SCRATCH = _Scratch()


def conflict_matrix(rows_a: np.ndarray, rows_b: np.ndarray, iou_threshold: float, *, zero_area: bool = True,
                    classes_a: np.ndarray | None = None, classes_b: np.ndarray | None = None) -> np.ndarray:
    """``(m, n)`` bool matrix: IoU > *iou_threshold* between boxes of rows *rows_a* ``(5, m)`` and *rows_b* ``(5, n)``.

    Rows hold x1, y1, x2, y2, area. The y overlap is not clipped at 0: where
    the x overlap is positive and the y overlap negative the product is
    negative and so is the IoU, which never exceeds a threshold >= 0; for every
    pair that can conflict the value is the plain ``inter / union``. Pass
    ``zero_area=False`` only when no pair consists of two zero-area boxes
    (then every union is > 0). With class ids *classes_a* / *classes_b* (int64
    within int32 range, so exact in float64) only pairs of one class can conflict.

    The result is a view of this thread's scratch buffers: use it before the next call.
    """
    m, n = rows_a.shape[1], rows_b.shape[1]
    iw, a, b, c, conflict, same, zeros, tiny = _SCRATCH.get(m, n)
    _pairwise(np.minimum, iw, a, rows_a[2], rows_b[2])   # min(x2)
    _pairwise(np.maximum, a, b, rows_a[0], rows_b[0])    # max(x1)
    iw -= a
    np.maximum(iw, zeros, out=iw)
    _pairwise(np.minimum, a, b, rows_a[3], rows_b[3])    # min(y2)
    _pairwise(np.maximum, b, c, rows_a[1], rows_b[1])    # max(y1)
    a -= b                                               # ih
    iw *= a                                              # inter
    _pairwise(np.add, a, b, rows_a[4], rows_b[4])
    a -= iw                                              # union
    if zero_area:
        # union is 0 only for two zero-area boxes with inter 0 (or where subnormals flush to 0): 0 / tiny = 0
        np.equal(a, zeros, out=same)
        np.copyto(a, tiny, where=same)
    np.divide(iw, a, out=iw)
    np.greater(iw, iou_threshold, out=conflict)
    if classes_a is not None:
        _pairwise(np.equal, same, a, classes_a, classes_b, b)
        conflict &= same
    return conflict


def _pairwise(op, out: np.ndarray, spare: np.ndarray, row_values: np.ndarray, col_values: np.ndarray,
              spare2: np.ndarray | None = None) -> None:
    """``out[i, j] = op(row_values[i], col_values[j])`` through full matrices (no broadcasting ufunc).

    *spare* (and *spare2* when *out* cannot hold the row values, e.g. a bool *out*)
    are overwritten.
    """
    rows = out if spare2 is None else spare2
    np.copyto(rows, row_values[:, None])
    np.copyto(spare, col_values)
    op(rows, spare, out=out)


def paired_iou(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """IoU per column between box ``rows_a[:, m]`` and box ``rows_b[:, m]`` (rows x1, y1, x2, y2, area > 0).

    Element-wise, with :func:`conflict_matrix`' arithmetic (``iw`` clipped at 0, ``ih`` not:
    a negative value wherever the boxes do not overlap), so every path decides a pair
    alike; both areas are > 0, so every union is.
    """
    inter = np.minimum(rows_a[2], rows_b[2])
    inter -= np.maximum(rows_a[0], rows_b[0])
    np.maximum(inter, 0.0, out=inter)
    ih = np.minimum(rows_a[3], rows_b[3])
    ih -= np.maximum(rows_a[1], rows_b[1])
    inter *= ih
    union = np.add(rows_a[4], rows_b[4])
    union -= inter
    np.divide(inter, union, out=inter)
    return inter


def resolve_dense(rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float, *,
                  zero_area: bool = True) -> np.ndarray:
    """Greedy decisions for a small rank-ordered block given its ``(5, B)`` rows x1, y1, x2, y2, area.

    Builds the block's conflict matrix and packs each row into bits. Only the
    rows that stay unsuppressed are visited, in rank order: each is kept and
    clears the bits of the rows it suppresses (bits of earlier rows are
    already clear), so a block of B boxes with few survivors costs a few
    big-integer operations. *zero_area* as in :func:`conflict_matrix`.
    Returns the local positions kept (int64, ascending).
    """
    conflict = conflict_matrix(rows, rows, iou_threshold, zero_area=zero_area, classes_a=classes, classes_b=classes)
    packed = np.packbits(conflict, axis=1, bitorder="little")
    undecided = (1 << conflict.shape[0]) - 1
    keep = []
    while undecided:
        low = undecided & -undecided              # the best-ranked undecided row is kept
        r = low.bit_length() - 1
        keep.append(r)
        undecided &= ~(int.from_bytes(packed[r].tobytes(), "little") | low)
    return np.asarray(keep, dtype=np.int64)


def greedy_python(rows: list, labels: list | None, iou_threshold: float, max_output: int) -> list[int]:
    """Greedy NMS in Python floats over rank-ordered ``(x1, y1, x2, y2, area)`` tuples; kept positions.

    Boxes with different *labels* never conflict; at most *max_output* are kept.
    Operation for operation the float64 arithmetic of :func:`conflict_matrix`:
    ``iw`` clipped at 0, ``ih`` not, ``union = (a_i + a_j) - inter`` (a union of 0 becomes
    :data:`TINY`), ``inter / union > iou_threshold``.
    """
    kept: list[int] = []
    kept_rows: list[tuple] = []
    for r, (ax1, ay1, ax2, ay2, area) in enumerate(rows):
        if len(kept) >= max_output:
            break
        c = None if labels is None else labels[r]
        for bx1, by1, bx2, by2, b_area, bc in kept_rows:
            if bc != c:
                continue
            iw = min(ax2, bx2) - max(ax1, bx1)
            if iw < 0.0:
                iw = 0.0
            inter = iw * (min(ay2, by2) - max(ay1, by1))
            union = (area + b_area) - inter
            if union == 0.0:                 # two zero-area boxes (or a union that flushes to 0)
                union = TINY
            if inter / union > iou_threshold:
                break
        else:
            kept.append(r)
            kept_rows.append((ax1, ay1, ax2, ay2, area, c))
    return kept
