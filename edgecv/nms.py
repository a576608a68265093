"""Non-maximum suppression: exact greedy NMS, class-aware, and Soft-NMS.

Semantics (each one is tested):

* Boxes are corner boxes ``x1, y1, x2, y2`` (see :mod:`edgecv.boxes`); inverted
  corners are normalised; IoU is computed in float64 as
  ``inter / (area_i + area_j - inter)`` and is 0 when either box has zero area.
* A box is a candidate when its score is finite and ``score > score_threshold``
  (float64 comparison); NaN and infinite scores are dropped, never picked.
* Candidates are visited by descending score; equal scores keep the lower
  index first (stable). A candidate is suppressed when its IoU with an already
  kept box is ``> iou_threshold``: exactly greedy NMS as in ``cv2.dnn.NMSBoxes``
  and ``tf.image.non_max_suppression``.
* ``class_ids`` makes it class-aware: boxes of different classes never
  suppress each other. There is no loop over classes and no coordinate offset
  trick, so large coordinates lose no precision.
* ``max_output`` keeps the first ``max_output`` kept indices.
* Results are int64 indices into the input, ordered by descending score;
  empty input gives an empty int64 array.
* NaN or infinite box coordinates raise :class:`ConfigError`.

Where the references differ: OpenCV gives two zero-area boxes an overlap of 1
(edgecv and TensorFlow: 0), does not normalise inverted corners, and both
OpenCV and TensorFlow compare scores and IoU in float32 (thresholds rounded to
float32). On boxes with positive area and float32-representable thresholds
the three agree.

Algorithm. The greedy result is the unique set ``K`` of candidates such that no
two boxes in ``K`` conflict and every other candidate conflicts with a
higher-ranked box of ``K``. Decisions inside a set of boxes that cannot
conflict with the rest depend on that set alone, so the candidates are first
split into such groups, by gaps between per-box conflict intervals (alternately
in x and y) and by class. When they split (detector output: a few objects with
many candidates each), every round keeps the best-ranked undecided box of every
group and tests each undecided box against its own group's leader, one
element-wise IoU over all boxes per round. Otherwise (one connected scene), or
for what a few such rounds leave, it is built in rounds over the rank-sorted
candidates, each round deciding the next block of undecided boxes at once:

* a block of up to 96 boxes gets a dense conflict matrix packed into one bit
  mask per row; only the rows that stay unsuppressed are visited, in rank
  order; its kept boxes then suppress the boxes further down, compared all at
  once when few, else through the index below;
* when most boxes survive (sparse scenes) blocks grow to thousands: only the
  pairs that can conflict are examined, found by a sort-and-sweep index on box
  centres (IoU > t needs ``|cx_i - cx_j| < w_i * max(1 - t, (1/t - 1) / 2)``,
  likewise in y), and the block is resolved by a vectorised fixed point
  ``keep[i] = no kept j < i conflicts with i`` (exactly greedy; a long chain
  falls back to a sequential sweep of that block).

Boxes without conflicts are kept without per-box work. Ranking sorts packed
int64 keys (score bits, index) when every score is exactly a float32, else a
stable argsort. With ``max_output`` only a prefix of the ranking is sorted, and
only its boxes are converted and examined, unless it runs out.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import threading

import numpy as np

from .boxes import corner_rows
from .errors import ConfigError, did_you_mean

__all__ = ["nms", "soft_nms", "scores_above", "quantized_threshold", "dequantize", "greater_f64", "NMS_METHODS"]

log = logging.getLogger(__name__)

NMS_METHODS = ("hard", "linear", "gaussian")

_DENSE_BLOCK = 96           # blocks up to this size are resolved with a dense conflict matrix
                            # (its float64 temporaries stay under 20 KiB each)
_MAX_BLOCK = 4096           # largest block
_PAIR_BUDGET = 1 << 20      # candidate pairs examined per round (memory bound)
_DENSE_PAIRS = 1 << 15      # kept x later boxes up to this: compare them all, skip the window search
_PREFIX = 512               # with max_output, rank at least this many candidates before the rest
_PREFIX_PER_OUTPUT = 8      # ... and this many per box asked for
_FIXED_POINT_ROUNDS = 12    # then fall back to a sequential sweep of the block
_EMPTY = np.zeros(0, dtype=np.int64)
# score dtypes whose every value is exactly a float32 (ranking by packed integer keys needs no check)
_FLOAT32_EXACT = frozenset(np.dtype(d) for d in ("float32", "float16", "int8", "uint8", "int16", "uint16", "bool"))


# --------------------------------------------------------------------------- validation

def _check_threshold(value, name: str, *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < 0 or math.isinf(v) or (upper is not None and v > upper):
        rng = f"[0, {upper:g}]" if upper is not None else ">= 0 and finite"
        hint = "; pass None to keep every finite score" if name == "score_threshold" else ""
        raise ConfigError(f"{name} must be {rng}, got {value!r}{hint}")
    return v


def _check_inputs(boxes, scores, iou_threshold, score_threshold, max_output, class_ids, method, sigma,
                  box_index=None):
    if method not in NMS_METHODS:
        raise ConfigError(f"unknown NMS method {method!r}{did_you_mean(str(method), NMS_METHODS)}; "
                          f"use one of {', '.join(NMS_METHODS)}")
    if iou_threshold is None:
        raise ConfigError("iou_threshold is required, e.g. iou_threshold=0.5")
    t = _check_threshold(iou_threshold, "iou_threshold", upper=1.0)
    st = None if score_threshold is None else _check_threshold(score_threshold, "score_threshold")
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma must be a finite number > 0 (Gaussian Soft-NMS width), got {sigma!r}")
    if max_output is not None and (isinstance(max_output, bool) or not isinstance(max_output, numbers.Integral)
                                   or max_output < 0):
        raise ConfigError(f"max_output must be None or an integer >= 0, got {max_output!r}")
    arr = _checked_boxes(boxes)
    n = arr.shape[0]
    if box_index is not None:
        bi = np.asarray(box_index)
        if bi.ndim != 1 or bi.dtype.kind not in "iu":
            raise ConfigError(f"box_index must be a 1-D integer array (one box row per candidate), "
                              f"got shape {bi.shape} dtype {bi.dtype}")
        if bi.size and (int(bi.min()) < 0 or int(bi.max()) >= n):
            raise ConfigError(f"box_index holds rows outside 0..{n - 1} of the {n} boxes")
        arr = IndexedBoxes(arr, bi)
        n = bi.size
    s = np.asarray(scores)
    if s.dtype.kind not in "biuf":
        raise ConfigError(f"scores must be a real numeric array, got dtype {s.dtype}")
    if s.ndim != 1 or s.shape[0] != n:
        raise ConfigError(f"scores must have shape ({n},), one per box, got {s.shape}; "
                          "pass one score per box (e.g. the max class score) or flatten it")
    exact32 = s.dtype in _FLOAT32_EXACT
    if s.dtype.kind != "f":
        s = s.astype(np.float64)                 # integers: negation and comparisons must not wrap
    cls = None
    if class_ids is not None:
        c = np.asarray(class_ids)
        if c.ndim != 1 or c.shape[0] != n:
            raise ConfigError(f"class_ids must have shape ({n},), one per box, got {c.shape}")
        if c.dtype.kind == "f":
            if not np.isfinite(c).all() or (c != np.round(c)).any() or (np.abs(c) >= 2.0 ** 53).any():
                raise ConfigError("class_ids must be integers; float class ids must hold whole numbers "
                                  "(TFLite emits classes as float: cast with .astype(int))")
        elif c.dtype.kind not in "biu":
            raise ConfigError(f"class_ids must be integers, got dtype {c.dtype}")
        cls = c
    return arr, s, exact32, t, st, (None if max_output is None else int(max_output)), cls, float(sigma)


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


class IndexedBoxes:
    """Boxes shared by several candidates: candidate m is row ``index[m]`` of *boxes*."""

    def __init__(self, boxes: np.ndarray, index: np.ndarray) -> None:
        self.boxes, self.index = boxes, index

    def take(self, order: np.ndarray, axis: int = 0) -> np.ndarray:
        return self.boxes.take(self.index.take(order), axis=axis)


def _ranked_rows(arr: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``(5, K)`` rows x1, y1, x2, y2, area of the boxes *order* picks (see :func:`_box_rows`)."""
    return _box_rows(corner_rows(arr.take(order, axis=0), iou_safe=True))


def _ranked_classes(cls: np.ndarray | None, order: np.ndarray) -> np.ndarray | None:
    """int64 class ids of the boxes *order* picks; ids beyond int32 are renumbered densely (same classes)."""
    if cls is None:
        return None
    c = cls.take(order).astype(np.int64)
    if c.size and (c.min() < -(2 ** 31) or c.max() >= 2 ** 31):
        c = np.unique(c, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return c


def greater_f64(values: np.ndarray, threshold: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """``values > threshold`` compared in float64 whatever the dtype of *values*.

    A plain ``>`` compares float32 scores with the threshold rounded to
    float32 (NumPy 1.x value-based casting and NumPy 2's NEP 50 alike), so
    ``float32(0.3) > 0.3`` would be False; every score threshold in edgecv
    goes through here.
    """
    return np.greater(values, threshold, out=out, signature="dd->?")


def _candidates(scores: np.ndarray, score_threshold: float | None) -> np.ndarray:
    """Indices of finite scores above the threshold (ascending index), compared in float64."""
    ok = np.isfinite(scores)
    if score_threshold is not None:
        ok &= greater_f64(scores, score_threshold)
    return ok.nonzero()[0]


def _rank_keys(scores: np.ndarray, idx: np.ndarray, exact: bool) -> np.ndarray | None:
    """Unique int64 sort keys of candidates *idx*: ascending key = descending score, then ascending index.

    The high 32 bits hold the negated score as a float32 bit pattern mapped to
    signed integer order, the low 32 bits the index, so one plain (SIMD) sort
    of the keys gives the stable ranking that a stable argsort of the scores
    would, several times faster. Needs every score to be exactly a float32
    (*exact* says the scores came as float32, float16 or 8/16-bit integers;
    else it is checked) and indices below 2**32; returns None otherwise.
    """
    if idx.size == 0 or int(idx[-1]) >= 1 << 32:
        return None
    values = scores[idx]
    neg = np.subtract(0.0, values, dtype=np.float32)     # -score; 0 - 0.0 gives +0.0 for both zeros
    if not exact and np.add(neg, values).any():          # a score that is not exactly a float32
        return None
    bits = neg.view(np.int32)
    flip = bits >> 31                                    # -1 for negative floats, else 0
    flip &= 0x7FFFFFFF
    bits ^= flip                                         # negative floats: reverse their magnitude order
    keys = bits.astype(np.int64)
    keys <<= 32
    keys |= idx
    return keys


_LOW32 = np.int64(0xFFFFFFFF)


def _ranked_prefix(scores: np.ndarray, idx: np.ndarray, horizon: int, exact: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The best-scoring part of *idx* (ascending indices) in rank order, and the rest (unsorted).

    Rank order is descending score, equal scores by ascending index. The
    prefix holds every candidate scoring at least the *horizon*-th best score
    (ties at the cut all go in), so every candidate of the rest ranks below
    every candidate of the prefix; without a cut (``idx.size <= 2 * horizon``)
    the rest is empty.
    """
    if idx.size > 2 * horizon:
        values = scores[idx]
        cut = np.partition(values, idx.size - horizon)[idx.size - horizon]   # horizon-th best score
        top = values >= cut
        idx, rest = idx[top], idx[~top]
    else:
        rest = _EMPTY
    keys = _rank_keys(scores, idx, exact)
    if keys is not None:
        keys.sort()
        keys &= _LOW32
        return keys, rest
    return idx[np.argsort(-scores[idx], kind="stable")], rest


# --------------------------------------------------------------------------- spatial index

class _CentreIndex:
    """Boxes of one member set sorted by (class, x centre), for window queries."""

    def __init__(self, members: np.ndarray, cx: np.ndarray, cls: np.ndarray | None) -> None:
        mcx = cx[members]
        if cls is None:
            order = np.argsort(mcx)
            self.keys = mcx[order]
            self.cx_sorted = None
        else:
            # exact composite integer key: class * (M + 1) + rank of cx among members
            by_cx = np.argsort(mcx)
            self.cx_sorted = mcx[by_cx]
            rank = np.empty(members.size, dtype=np.int64)
            rank[by_cx] = np.arange(members.size, dtype=np.int64)
            self.stride = members.size + 1
            key = cls[members] * self.stride + rank
            order = np.argsort(key)               # keys are unique
            self.keys = key[order]
        self.ranks = members[order]
        self.size = members.size

    def query(self, lo: np.ndarray, hi: np.ndarray, cls_q: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Half-open ranges of positions whose centre lies in ``[lo, hi]`` (and class matches)."""
        if cls_q is None:
            return np.searchsorted(self.keys, lo, "left"), np.searchsorted(self.keys, hi, "right")
        r_lo = np.searchsorted(self.cx_sorted, lo, "left")
        r_hi = np.searchsorted(self.cx_sorted, hi, "right")
        base = cls_q * self.stride
        return np.searchsorted(self.keys, base + r_lo, "left"), np.searchsorted(self.keys, base + r_hi, "left")


def _centre_factor(t: float) -> float:
    """``max(1 - t, (1/t - 1) / 2)`` for t > 0: IoU > t needs ``|c_i - c_j| < s_i * factor`` on each axis."""
    return max(1.0 - t, 0.5 * (1.0 / t - 1.0))


def _window_radius(size: np.ndarray, centre: np.ndarray, positive: np.ndarray, t: float) -> np.ndarray:
    """Upper bound on ``|c_i - c_j|`` (centres on one axis) for any j with IoU(i, j) > t.

    IoU > t implies an overlap on the axis ``> t * max(s_i, s_j)`` (s: box
    size on that axis), and the overlap is at most ``(s_i + s_j) / 2 - |c_i - c_j|``;
    maximising over ``s_j`` gives ``s_i * max(1 - t, (1/t - 1) / 2)``. Any
    overlap at all needs ``|c_i - c_j| < (s_i + s_max) / 2``. A relative margin
    and one scaled to the coordinates' magnitude keep the bound safe under
    rounding; they only widen the search. Zero-area boxes get -1 (no partners).
    """
    s_max = float(size[positive].max()) if positive.any() else 0.0
    loose = 0.5 * (size + s_max)
    if t > 0:
        radius = np.minimum(size * _centre_factor(t), loose)
    else:
        radius = loose
    radius = radius * (1.0 + 1e-7) + 1e-12 * (np.abs(centre) + size) + 1e-300
    return np.where(positive, radius, -1.0)


# --------------------------------------------------------------------------- greedy core

_TINY = np.nextafter(0.0, 1.0)   # smallest positive double: max(union, _TINY) == union whenever union > 0


class _Scratch(threading.local):
    """Per-thread work matrices for :func:`_conflicts`, grown on demand and reused by every call.

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
        """Contiguous ``(m, n)`` views: four float64 work matrices, two bool ones, then read-only zeros and _TINY.

        The views of a shape are kept (up to 64 shapes), so a repeated shape costs one dict lookup.
        """
        views = self.__dict__.get("views", {}).get((m, n))
        if views is not None:
            return views
        k = m * n
        if k > self.size:
            self.size = max(k, _DENSE_BLOCK * _DENSE_BLOCK)
            work = [np.empty(self.size) for _ in range(4)] + [np.empty(self.size, bool) for _ in range(2)]
            constants = [np.zeros(self.size), np.full(self.size, _TINY)]
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


def _conflicts(pr: np.ndarray, pc: np.ndarray, t: float, zero_area: bool = True,
               cls_r: np.ndarray | None = None, cls_c: np.ndarray | None = None) -> np.ndarray:
    """``(m, n)`` bool matrix: IoU > t between boxes of rows *pr* ``(5, m)`` and *pc* ``(5, n)``.

    Rows hold x1, y1, x2, y2, area. The y overlap is not clipped at 0: where
    the x overlap is positive and the y overlap negative the product is
    negative and so is the IoU, which never exceeds t >= 0; for every pair
    that can conflict the value is the plain ``inter / union``. Pass
    ``zero_area=False`` only when no pair consists of two zero-area boxes
    (then every union is > 0). With class ids *cls_r* / *cls_c* (int64 within
    int32 range, so exact in float64) only pairs of one class can conflict.

    The result is a view of this thread's scratch buffers: use it before the next call.
    """
    m, n = pr.shape[1], pc.shape[1]
    iw, a, b, c, conflict, same, zeros, tiny = _SCRATCH.get(m, n)
    _pairwise(np.minimum, iw, a, pr[2], pc[2])   # min(x2)
    _pairwise(np.maximum, a, b, pr[0], pc[0])    # max(x1)
    iw -= a
    np.maximum(iw, zeros, out=iw)
    _pairwise(np.minimum, a, b, pr[3], pc[3])    # min(y2)
    _pairwise(np.maximum, b, c, pr[1], pc[1])    # max(y1)
    a -= b                                       # ih
    iw *= a                                      # inter
    _pairwise(np.add, a, b, pr[4], pc[4])
    a -= iw                                      # union
    if zero_area:
        # union is 0 only for two zero-area boxes with inter 0: 0 / tiny = 0
        np.maximum(a, tiny, out=a)
    np.divide(iw, a, out=iw)
    np.greater(iw, t, out=conflict)
    if cls_r is not None:
        _pairwise(np.equal, same, a, cls_r, cls_c, b)
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


def _resolve_dense(p: np.ndarray, cls_s: np.ndarray | None, t: float, zero_area: bool = True) -> np.ndarray:
    """Greedy decisions for a small rank-ordered block given its ``(5, B)`` rows x1, y1, x2, y2, area.

    Builds the block's conflict matrix and packs each row into bits. Only the
    rows that stay unsuppressed are visited, in rank order: each is kept and
    clears the bits of the rows it suppresses (bits of earlier rows are
    already clear), so a block of B boxes with few survivors costs a few
    big-integer operations. Returns the local positions kept.
    """
    conflict = _conflicts(p, p, t, zero_area, cls_s, cls_s)
    packed = np.packbits(conflict, axis=1, bitorder="little")
    undecided = (1 << conflict.shape[0]) - 1
    keep = []
    while undecided:
        low = undecided & -undecided              # the best-ranked undecided row is kept
        r = low.bit_length() - 1
        keep.append(r)
        undecided &= ~(int.from_bytes(packed[r].tobytes(), "little") | low)
    return np.asarray(keep, dtype=np.int64)


def _suppressed_by(rows: np.ndarray, leaders: np.ndarray, later: np.ndarray, cls: np.ndarray | None,
                   t: float) -> np.ndarray:
    """Mask over *later*: True where some kept box of *leaders* (positive area) has IoU > t with it."""
    conflict = _conflicts(rows.take(leaders, axis=1), rows.take(later, axis=1), t, False,
                          None if cls is None else cls[leaders], None if cls is None else cls[later])
    return conflict.any(axis=0)


def _resolve_block(n: int, ph: np.ndarray, pl: np.ndarray) -> np.ndarray:
    """Greedy decisions inside a block of *n* rank-ordered boxes.

    ``(ph[k], pl[k])`` are conflicting pairs with ``ph < pl`` (local positions).
    Returns a bool array: True where greedy NMS keeps the box.
    """
    state = np.zeros(n, dtype=np.int8)          # 0 undecided, 1 kept, 2 suppressed
    for _ in range(_FIXED_POINT_ROUNDS):
        if ph.size == 0:
            break
        blocked = np.zeros(n, dtype=bool)
        blocked[pl] = True                       # has a parent that may still be kept
        state[(state == 0) & ~blocked] = 1
        state[pl[state[ph] == 1]] = 2
        live = (state[pl] == 0) & (state[ph] == 0)
        ph, pl = ph[live], pl[live]
    else:
        if ph.size:
            _resolve_sequential(state, ph, pl)
    state[state == 0] = 1
    return state == 1


def _resolve_sequential(state: np.ndarray, ph: np.ndarray, pl: np.ndarray) -> None:
    """Plain greedy sweep over the undecided boxes (long suppression chains)."""
    order = np.argsort(ph, kind="stable")
    ph, pl = ph[order], pl[order]
    starts = np.searchsorted(ph, np.arange(state.size + 1))
    for u in np.flatnonzero(state == 0).tolist():
        if state[u] != 0:
            continue
        state[u] = 1
        children = pl[starts[u]:starts[u + 1]]
        state[children[state[children] == 0]] = 2


class _Greedy:
    """State of one greedy NMS run over rank-ordered boxes (rank = position in score order)."""

    def __init__(self, rows: np.ndarray, cls: np.ndarray | None, t: float) -> None:
        self.t = t
        self.cls = cls
        self.rows = rows                         # x1, y1, x2, y2, area: take(..., axis=1) gathers contiguous rows
        self.positive = rows[4] > 0
        self.alive = np.ones(rows.shape[1], dtype=bool)      # undecided and not suppressed
        self._index: _CentreIndex | None = None

    def _build_index(self) -> _CentreIndex:
        x1, y1, x2, y2 = self.rows[:4]
        self.cx = (x1 + x2) * 0.5
        self.cy = (y1 + y2) * 0.5
        self.rx = _window_radius(x2 - x1, self.cx, self.positive, self.t)
        self.ry = _window_radius(y2 - y1, self.cy, self.positive, self.t)
        return _CentreIndex(np.flatnonzero(self.positive), self.cx, self.cls)

    @property
    def index(self) -> _CentreIndex:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def reindex_if_sparse(self, undecided: np.ndarray) -> None:
        """Rebuild the index over the undecided boxes once most indexed boxes are gone."""
        if self._index is not None and self._index.size > 256 and 2 * undecided.size < self._index.size:
            self._index = _CentreIndex(undecided[self.positive[undecided]], self.cx, self.cls)

    def windows(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = self.index                       # builds centres and radii on first use
        cx, rx = self.cx[q], self.rx[q]
        return index.query(cx - rx, cx + rx, None if self.cls is None else self.cls[q])

    def pairs(self, q: np.ndarray, after: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Conflicting pairs ``(i, j)``: i in *q*, j alive and ranked after i (or after *after*), IoU > t."""
        lo, hi = self.windows(q)
        counts = np.maximum(hi - lo, 0)
        ends = np.cumsum(counts)
        total = int(ends[-1]) if ends.size else 0
        if total == 0:
            return _EMPTY, _EMPTY
        i = np.repeat(q, counts)
        j = self.index.ranks[np.repeat(lo - (ends - counts), counts) + np.arange(total)]
        m = self.alive[j]
        m &= (j > i) if after is None else (j > after)
        dy = self.cy[j]
        dy -= np.repeat(self.cy[q], counts)
        np.abs(dy, out=dy)
        m &= dy < np.repeat(self.ry[q], counts)
        i, j = i[m], j[m]
        hit = _paired_conflicts(self.rows.take(i, axis=1), self.rows.take(j, axis=1), self.t)
        return i[hit], j[hit]

    def budget_prefix(self, q: np.ndarray) -> np.ndarray:
        """The longest prefix of *q* whose windows stay within the pair budget (at least one box)."""
        if q.size * self.index.size <= _PAIR_BUDGET:       # no window can be larger than the index
            return q
        lo, hi = self.windows(q)
        ends = np.cumsum(np.maximum(hi - lo, 0))
        if ends[-1] <= _PAIR_BUDGET:
            return q
        return q[:max(int(np.searchsorted(ends, _PAIR_BUDGET, "right")), 1)]


def _paired_iou(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """IoU per column between box ``pa[:, m]`` and box ``pb[:, m]`` (rows x1, y1, x2, y2, area > 0).

    Element-wise, with :func:`_conflicts`' arithmetic (``iw`` clipped at 0, ``ih`` not:
    a negative value wherever the boxes do not overlap), so every path decides a pair
    alike; both areas are > 0, so every union is.
    """
    inter = np.minimum(pa[2], pb[2])
    inter -= np.maximum(pa[0], pb[0])
    np.maximum(inter, 0.0, out=inter)
    ih = np.minimum(pa[3], pb[3])
    ih -= np.maximum(pa[1], pb[1])
    inter *= ih
    union = np.add(pa[4], pb[4])
    union -= inter
    np.divide(inter, union, out=inter)
    return inter


def _paired_conflicts(pa: np.ndarray, pb: np.ndarray, t: float) -> np.ndarray:
    """Bool per column: IoU > t between box ``pa[:, m]`` and box ``pb[:, m]`` (see :func:`_paired_iou`)."""
    return _paired_iou(pa, pb) > t


def _box_rows(b: np.ndarray) -> np.ndarray:
    """``(5, K)`` rows x1, y1, x2, y2, area from ``(4, K)`` corner rows *b*."""
    rows = np.empty((5, b.shape[1]))
    rows[:4] = b
    np.subtract(rows[2], rows[0], out=rows[4])
    rows[4] *= rows[3] - rows[1]
    return rows


_FEW = 16                   # up to this many candidates, greedy NMS runs on Python floats
_FEW_LIMIT = 2.0 ** 500     # larger coordinates take the numpy path (it scales them for exact areas)


def _greedy_few(arr, s: np.ndarray, idx: np.ndarray, t: float, limit: int | None, cls: np.ndarray | None
                ) -> np.ndarray | None:
    """Greedy NMS over a few candidates *idx* with Python floats; the kept candidates in rank order.

    The arithmetic is :func:`_conflicts`' operation for operation in IEEE float64
    (see :func:`_greedy_python`), so the result is the numpy path's exactly; a
    handful of boxes costs a few microseconds instead of two dozen numpy calls,
    which right after an inference (cold caches) cost far more than their
    arithmetic. Returns None when a coordinate is beyond ``2**500`` (the numpy
    path rescales those).
    """
    scores = s[idx].tolist()
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)   # stable: ties by index
    boxes = arr.take(idx, axis=0).tolist()
    classes = None if cls is None else cls[idx].tolist()
    rows = []
    for m in order:
        x1, y1, x2, y2 = boxes[m]
        if x1 > x2:
            x1, x2 = x2, x1
        if y1 > y2:
            y1, y2 = y2, y1
        if max(-x1, x2, -y1, y2) > _FEW_LIMIT:
            return None
        rows.append((x1, y1, x2, y2, (x2 - x1) * (y2 - y1)))
    kept = _greedy_python(rows, None if classes is None else [classes[m] for m in order], t,
                          len(order) if limit is None else limit)
    return idx[np.array([order[r] for r in kept], dtype=np.int64)]


def _greedy_python(rows: list, labels: list | None, t: float, cap: int) -> list[int]:
    """Greedy NMS in Python floats over rank-ordered ``(x1, y1, x2, y2, area)`` tuples; kept positions.

    Boxes with different *labels* never conflict. Operation for operation the float64
    arithmetic of :func:`_conflicts`: ``iw`` clipped at 0, ``ih`` not,
    ``union = (a_i + a_j) - inter`` floored at the smallest positive double, ``inter / union > t``.
    """
    kept: list[int] = []
    kept_rows: list[tuple] = []
    for r, (ax1, ay1, ax2, ay2, area) in enumerate(rows):
        if len(kept) >= cap:
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
            if union < _TINY:
                union = _TINY
            if inter / union > t:
                break
        else:
            kept.append(r)
            kept_rows.append((ax1, ay1, ax2, ay2, area, c))
    return kept


def _greedy_sorted(rows: np.ndarray, cls: np.ndarray | None, t: float, limit: int) -> np.ndarray:
    """Greedy NMS over ``(5, K)`` box rows (see :func:`_box_rows`) in rank order; returns kept ranks (ascending)."""
    k = rows.shape[1]
    if k == 0 or limit == 0:
        return _EMPTY
    if t >= 1.0:                                 # IoU never exceeds 1: nothing is suppressed
        return np.arange(min(k, limit), dtype=np.int64)
    if k <= _DENSE_BLOCK:                        # one dense block decides everything
        return _resolve_dense(rows, cls, t, zero_area=not rows[4].all())[:limit]
    kept = _greedy_grouped(rows, cls, t, limit if limit < k else None)
    if kept is not None:
        return kept[:limit]
    return _greedy_blocked(rows, cls, t, limit)


def _greedy_blocked(rows: np.ndarray, cls: np.ndarray | None, t: float, limit: int) -> np.ndarray:
    """:func:`_greedy_sorted` for more than one dense block (``K > _DENSE_BLOCK``, ``t < 1``): rounds of blocks."""
    k = rows.shape[1]
    g = _Greedy(rows, cls, t)
    alive, positive = g.alive, g.positive
    zero_area = not positive.all()
    kept: list[np.ndarray] = []
    n_kept = 0
    block = _DENSE_BLOCK
    rest = np.arange(k)          # undecided ranks that no kept box suppresses, ascending
    synced = True                # alive[r] is False for every suppressed rank r > rest[0]

    def sync() -> None:
        alive[rest[0]:] = False
        alive[rest] = True

    while rest.size and n_kept < limit:
        g.reindex_if_sparse(rest)
        if block <= _DENSE_BLOCK:
            # small block: resolve it densely; then only its kept boxes look for partners further down
            s = rest[:block]
            later = rest[s.size:]
            new = s[_resolve_dense(g.rows.take(s, axis=1), None if cls is None else cls[s], t, zero_area)]
            leaders = new[positive[new]]
            if leaders.size and later.size:
                if leaders.size * later.size <= _DENSE_PAIRS:
                    later = later[~_suppressed_by(g.rows, leaders, later, cls, t)]
                    synced = False
                else:
                    if not synced:
                        sync()
                        synced = True
                    last = int(s[-1])
                    done = 0
                    while done < leaders.size:       # chunks keep the pair arrays within budget
                        chunk = g.budget_prefix(leaders[done:])
                        alive[g.pairs(chunk, last)[1]] = False
                        done += chunk.size
                    later = later[alive[later]]
        else:
            if not synced:
                sync()
                synced = True
            s = g.budget_prefix(rest[:block])
            last = int(s[-1])
            i, j = g.pairs(s, None)
            inside = j <= last
            keep_local = _resolve_block(s.size, np.searchsorted(s, i[inside]), np.searchsorted(s, j[inside]))
            outside = ~inside
            if outside.any():
                parent_kept = keep_local[np.searchsorted(s, i[outside])]
                alive[j[outside][parent_kept]] = False
            new = s[keep_local]
            later = rest[s.size:]
            later = later[alive[later]]
        rest = later
        kept.append(new)
        n_kept += new.size
        # grow the block while most boxes survive (sparse scenes), shrink it when few do
        if 2 * new.size >= s.size:
            block = min(2 * block, _MAX_BLOCK)
        else:
            block = max(_DENSE_BLOCK, min(block, 4 * new.size))
    out = np.concatenate(kept) if kept else _EMPTY
    return out[:limit].astype(np.int64, copy=False)


# --------------------------------------------------------------------------- independent groups

_GROUP_ROUNDS = 8           # leader rounds before the groups hand what is left to the blocked path


def _conflict_intervals(rows: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Per box and axis, an interval such that two boxes with IoU > t have intersecting intervals on both axes.

    *rows* are box rows x1, y1, x2, y2, ...; returns ``(lo, hi)``, each ``(2, K)``: x, then y.
    IoU > t needs ``|c_i - c_j| < min(r_i, r_j)`` with ``r = s * max(1 - t, (1/t - 1) / 2)``
    (see :func:`_window_radius`) and, for any overlap, ``|c_i - c_j| < (s_i + s_j) / 2``;
    so ``c -+ s * min(g, 1) / 2`` serves, widened by the same rounding margins.
    """
    g = _centre_factor(t) if t > 0 else 1.0
    centre = rows[0:2] + rows[2:4]
    centre *= 0.5
    size = rows[2:4] - rows[0:2]
    half = np.abs(centre)
    half += size
    half *= 1e-12
    size *= 0.5 * min(g, 1.0) * (1.0 + 1e-7)
    half += size
    return centre - half, centre + half


def _split_groups(lo: np.ndarray, hi: np.ndarray, members: np.ndarray | None, group: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Refine *group* (one value per member) wherever the intervals ``[lo, hi]`` leave a gap.

    *members* index *lo* / *hi* (None: all of them, in order). Members are sorted by
    (group, lo) through one key, ``(lo - min) + (group - min group) * span`` with ``span``
    beyond the coordinate range, a float64 >= 0 whose bit pattern sorts like it as an
    int64; its low bits are replaced by the member's position, so one plain integer
    sort orders them. Truncating the low bits of lo's key and setting those of hi's
    (the same, monotone, rounding for both) and any rounding of the key can only merge
    two groups (a coarser split, still exact), never separate two boxes whose intervals
    intersect. Returns the members in that order and their new group numbers (ascending
    from 1), or None when the key overflows.
    """
    if members is None:
        lo, hi, members = lo.copy(), hi.copy(), np.arange(lo.size)
    else:
        lo, hi = lo.take(members), hi.take(members)
    n = members.size
    low = float(lo.min())
    span = 2.0 * (float(hi.max()) - low) + 1.0
    base, top = float(group.min()), float(group.max())
    low_bits = (1 << max(n - 1, 1).bit_length()) - 1
    if not math.isfinite(span) or not (top - base + 1.0) * (low_bits + 1) < 2.0 ** 46:
        return None                              # (the bands of two groups must stay far apart after truncation)
    lo -= low
    hi -= low
    if top != base:
        offset = group - base
        offset *= span
        lo += offset
        hi += offset
        if not math.isfinite(float(hi.max())):
            return None
    keys = lo.view(np.int64)
    keys &= ~low_bits
    keys |= np.arange(n)
    keys.sort()
    position = keys & low_bits
    keys |= low_bits
    ends = hi.view(np.int64)
    ends |= low_bits
    reach = np.maximum.accumulate(ends.take(position))
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.greater(keys[1:], reach[:-1], out=starts[1:])
    return members.take(position), np.cumsum(starts)


def _greedy_grouped(rows: np.ndarray, cls: np.ndarray | None, t: float, limit: int | None = None
                    ) -> np.ndarray | None:
    """Greedy NMS by independent groups of boxes; kept ranks (ascending), or None when the boxes do not split.

    Boxes are split into groups that cannot conflict across (gaps between conflict
    intervals, alternately in x and y, and between classes). Greedy decisions inside a
    group depend on that group alone, so every round keeps the best-ranked undecided
    box of every group at once and tests each undecided box against its own group's
    new leader only: one element-wise IoU over all boxes per round, with the arithmetic
    of :func:`_conflicts`. Scenes of a few objects with many candidates each (detector
    output, several classes) finish in a few rounds; the last ``_FEW`` undecided boxes are
    decided in Python floats, and after ``_GROUP_ROUNDS`` the boxes still undecided (each
    group's remaining boxes rank below its decided ones) by the blocked path. A scene that
    stays one big group returns None. With a *limit* (top-k), once ``limit`` boxes are kept
    the undecided ones ranked after the limit-th of them leave: they cannot be among the
    first ``limit``, which are then the only exact part of the result.
    """
    k = rows.shape[1]
    positive = rows[4] > 0
    if positive.all():
        members, kept = np.arange(k), []
        n_kept = 0
    else:                                        # zero-area boxes: IoU 0 with everything, always kept
        members, kept = np.flatnonzero(positive), [np.flatnonzero(~positive)]
        n_kept = kept[0].size
        if members.size == 0:
            return kept[0]
    lo, hi = _conflict_intervals(rows, t)
    # class ids (within int32, see _ranked_classes) seed the groups: their key bands are span/2 apart,
    # far beyond the rounding of the key, so two classes never share a group
    group = np.zeros(1) if cls is None else cls.take(members).astype(np.float64)
    split = _split_groups(lo[0], hi[0], None if members.size == k else members, group)
    groups = 0
    for axis, most in ((1, 0.75), (0, 0.5), (None, None)):
        if split is None:
            return None
        members, group = split
        if most is not None and np.bincount(group).max() > most * members.size:
            return None                          # one group holds most boxes: the blocked path is faster
        if axis is None or (axis == 0 and int(group[-1]) <= 2 * groups):
            break                                # (a third level only while the second one split well)
        groups = int(group[-1])
        split = _split_groups(lo[axis], hi[axis], members, group)
    # members by group, then rank (exact int64 keys)
    key = group * k
    key += members
    key.sort()
    group = key // k
    members = key - group * k
    own = rows.take(members, axis=1)            # no class test below: every group holds one class
    for _ in range(_GROUP_ROUNDS):
        first = np.empty(members.size, dtype=bool)
        first[0] = True
        np.not_equal(group[1:], group[:-1], out=first[1:])
        leaders = np.flatnonzero(first)
        kept.append(members.take(leaders))
        leader_of = np.cumsum(first)
        leader_of -= 1
        # a leader's IoU with itself is 1 > t (t < 1 here): it leaves with the boxes it suppresses
        stay = _paired_iou(own, own.take(leaders.take(leader_of), axis=1)) <= t
        if limit is not None:
            n_kept += leaders.size
            if n_kept >= limit:
                stay &= members < np.partition(np.concatenate(kept), limit - 1)[limit - 1]
        if not stay.any():
            members = _EMPTY
            break
        members, group, own = members[stay], group[stay], own[:, stay]
        if members.size <= _FEW:                 # a few left: in Python floats, by rank, within their groups
            by_rank = np.argsort(members)
            members = members.take(by_rank)
            decided = _greedy_python(own.take(by_rank, axis=1).T.tolist(), group.take(by_rank).tolist(), t,
                                     members.size)
            kept.append(members.take(decided))
            members = _EMPTY
            break
    if members.size:
        rest = np.sort(members)
        rest_rows = rows.take(rest, axis=1)
        rest_cls = None if cls is None else cls.take(rest)
        if rest.size <= _DENSE_BLOCK:
            decided = _resolve_dense(rest_rows, rest_cls, t, zero_area=False)
        else:
            decided = _greedy_blocked(rest_rows, rest_cls, t, rest.size)
        kept.append(rest.take(decided))
    out = np.concatenate(kept)
    out.sort()
    return out


# --------------------------------------------------------------------------- public API

def nms(boxes, scores, *, iou_threshold: float, score_threshold: float | None = None,
        max_output: int | None = None, class_ids=None, method: str = "hard", sigma: float = 0.5,
        box_index=None) -> np.ndarray:
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
            (see :func:`scores_above`).

    Returns:
        int64 array of indices into *boxes* (with *box_index*: into the candidates).

    Raises:
        ConfigError: boxes not ``(N, 4)``, scores or class_ids of another length,
            a NaN/infinite coordinate, a threshold out of range, an unknown
            method, ``sigma <= 0``, a negative ``max_output`` or a *box_index*
            row outside *boxes*.
    """
    arr, s, exact, t, st, limit, cls, sg = _check_inputs(boxes, scores, iou_threshold, score_threshold,
                                                         max_output, class_ids, method, sigma, box_index)
    if method != "hard":
        return _soft(arr, s, t, st, limit, cls, method, sg)[0]
    return hard_nms_checked(arr, s, t, st, limit, cls, exact)


def hard_nms_checked(arr, s: np.ndarray, t: float, st: float | None, limit: int | None, cls: np.ndarray | None,
                     exact: bool = False, horizon: int | None = None) -> np.ndarray:
    """:func:`nms` (method "hard") on arguments that are already checked: the Detector's per-frame entry.

    *arr* is an ``(N, 4)`` array of finite boxes (or ``IndexedBoxes``), *s* the
    float scores (NaN allowed: dropped), *t* in 0..1, *st* None or >= 0, *limit*
    None or >= 0, *cls* None or integer class ids. *exact*: every score is
    known to be exactly a float32. *horizon*: with a *limit*, how many best
    candidates to rank and examine first (default :func:`prefix_horizon`); a
    hint only, e.g. the depth at which the previous frame of a stream found its
    *limit*-th box: when that prefix keeps fewer, the next ones follow.
    """
    # Rank on the scores alone, then convert only the boxes the ranking reaches (with max_output
    # over many candidates, a small prefix of them).
    idx = _candidates(s, st)
    if idx.size == 0:
        return _EMPTY.copy()
    if idx.size <= _FEW:
        kept = _greedy_few(arr, s, idx, t, limit, cls)
        if kept is not None:
            return kept
    if idx.size <= _DENSE_BLOCK:                 # one dense block, the fewest numpy calls
        order = idx[np.argsort(-s[idx], kind="stable")]
        rows = _ranked_rows(arr, order)
        kept = _resolve_dense(rows, _ranked_classes(cls, order), t, zero_area=not rows[4].all())
        return order[kept[:limit]]
    if limit is None:
        order, _ = _ranked_prefix(s, idx, idx.size, exact)
        kept = _greedy_sorted(_ranked_rows(arr, order), _ranked_classes(cls, order), t, order.size)
        return order[kept]
    # Greedy decisions for a rank depend only on higher ranks: rank and examine a prefix of the
    # candidates; if it yields fewer than max_output boxes, carry the kept ones (which never
    # suppress each other) into the next, larger prefix of what is left.
    kept_idx = _EMPTY
    horizon = prefix_horizon(limit) if horizon is None else max(int(horizon), limit, 1)
    while True:
        prefix, idx = _ranked_prefix(s, idx, horizon, exact)
        order = np.concatenate([kept_idx, prefix])
        kept = _greedy_sorted(_ranked_rows(arr, order), _ranked_classes(cls, order), t, limit)
        kept_idx = order[kept]
        if kept_idx.size >= limit or idx.size == 0:
            return kept_idx
        horizon *= 2


def prefix_horizon(limit: int) -> int:
    """How many best-scoring candidates NMS with ``max_output=limit`` ranks and examines first."""
    return max(_PREFIX, _PREFIX_PER_OUTPUT * limit)


def quantization_pair(quantization) -> tuple[float, int]:
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


def quantized_threshold(dtype, score_threshold: float, quantization) -> int | None:
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


def dequantize(values: np.ndarray, quantization) -> np.ndarray:
    """Real float32 values of per-tensor quantized *values*: ``float32(q - zero_point) * float32(scale)``.

    The same arithmetic, rounding included, as :class:`edgecv.Model` uses for its outputs.

    Raises:
        ConfigError: bad *quantization* (see :func:`quantized_threshold`).
    """
    scale, zero = quantization_pair(quantization)
    real = np.subtract(values, np.float32(zero), dtype=np.float32)
    real *= np.float32(scale)
    return real


def scores_above(scores, score_threshold: float, *, background: int | None = None, quantization=None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            return _EMPTY.copy(), _EMPTY.copy(), np.zeros(0, np.float32)
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


def soft_nms(boxes, scores, *, iou_threshold: float, score_threshold: float | None = None,
             max_output: int | None = None, class_ids=None, method: str = "gaussian",
             sigma: float = 0.5, box_index=None) -> tuple[np.ndarray, np.ndarray]:
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
    arr, s, _, t, st, limit, cls, sg = _check_inputs(boxes, scores, iou_threshold, score_threshold,
                                                     max_output, class_ids, method, sigma, box_index)
    return _soft(arr, s, t, st, limit, cls, method, sg)


def _soft(arr, s, t, st, limit, cls, method, sigma):
    if isinstance(arr, IndexedBoxes):
        arr = arr.take(np.arange(s.size))
    b = corner_rows(arr, iou_safe=True)
    s = s.astype(np.float64, copy=False)
    cls = _ranked_classes(cls, np.arange(s.size))
    ok = np.isfinite(s)
    if st is not None:
        ok &= s > st
    idx = np.flatnonzero(ok)                     # ascending: argmax picks the lower index on ties
    cur = s[idx].copy()
    x1, y1, x2, y2 = b.take(idx, axis=1)
    area = (x2 - x1) * (y2 - y1)
    cl = None if cls is None else cls[idx]
    cap = idx.size if limit is None else min(limit, idx.size)
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
            weight = np.where(iou > t, 1.0 - iou, 1.0)
        else:
            weight = np.exp(-(iou * iou) / sigma)
        if cl is not None:
            weight = np.where(cl[live] == cl[p], weight, 1.0)
        cur[live] *= weight
        if st is not None:
            live = live[cur[live] > st]
    return idx[np.asarray(picked, dtype=np.int64)], np.asarray(picked_scores, dtype=np.float64)
