"""Greedy NMS in rounds of dense blocks, with a sort-and-sweep index for what each block suppresses further down.

Each round decides the next :data:`kernels.DENSE_BLOCK` undecided boxes in rank
order with one dense conflict matrix (:func:`kernels.resolve_dense`); its kept
boxes then remove the boxes further down that they suppress. Those are found
through an index of box centres: IoU > t needs ``|cx_i - cx_j| < w_i *
max(1 - t, (1/t - 1) / 2)``, likewise in y, so each kept box examines only the
boxes whose centre lies in its window. Scenes where most boxes survive (sparse
scenes) therefore cost about one window per kept box instead of one pair per
two boxes.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import centre_factor, paired_iou, resolve_dense
from .ranking import EMPTY

__all__ = ["greedy_blocked"]

PAIR_BUDGET = 1 << 20       # candidate pairs examined per window query (memory bound)


class _CentreIndex:
    """Boxes of one member set sorted by (class, x centre), for window queries."""

    def __init__(self, members: np.ndarray, cx: np.ndarray, classes: np.ndarray | None) -> None:
        mcx = cx[members]
        if classes is None:
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
            key = classes[members] * self.stride + rank
            order = np.argsort(key)               # keys are unique
            self.keys = key[order]
        self.ranks = members[order]
        self.size = members.size

    def query(self, lo: np.ndarray, hi: np.ndarray, classes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Half-open ranges of positions whose centre lies in ``[lo, hi]`` (and whose class is *classes*)."""
        if classes is None:
            return np.searchsorted(self.keys, lo, "left"), np.searchsorted(self.keys, hi, "right")
        r_lo = np.searchsorted(self.cx_sorted, lo, "left")
        r_hi = np.searchsorted(self.cx_sorted, hi, "right")
        base = classes * self.stride
        return np.searchsorted(self.keys, base + r_lo, "left"), np.searchsorted(self.keys, base + r_hi, "left")


def _window_radius(size: np.ndarray, centre: np.ndarray, positive: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Upper bound on ``|c_i - c_j|`` (centres on one axis) for any j with IoU(i, j) > *iou_threshold*.

    ``size * centre_factor(t)`` (see :func:`kernels.centre_factor`); any overlap at
    all needs ``|c_i - c_j| < (s_i + s_max) / 2``. A relative margin and one
    scaled to the coordinates' magnitude keep the bound safe under rounding;
    they only widen the search. Zero-area boxes get -1 (no partners).
    """
    s_max = float(size[positive].max()) if positive.any() else 0.0
    loose = 0.5 * (size + s_max)
    if iou_threshold > 0:
        radius = np.minimum(size * centre_factor(iou_threshold), loose)
    else:
        radius = loose
    radius = radius * (1.0 + 1e-7) + 1e-12 * (np.abs(centre) + size) + 1e-300
    return np.where(positive, radius, -1.0)


class _WindowSearch:
    """Rank-ordered boxes (rank = position in score order), which are still alive, and their centre index."""

    def __init__(self, rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float) -> None:
        self.iou_threshold = iou_threshold
        self.classes = classes
        self.rows = rows                         # x1, y1, x2, y2, area: take(..., axis=1) gathers contiguous rows
        self.positive = rows[4] > 0
        self.alive = np.ones(rows.shape[1], dtype=bool)      # not suppressed by a kept box
        self._index: _CentreIndex | None = None

    @property
    def index(self) -> _CentreIndex:
        """The centre index, built with centres and window radii on first use."""
        if self._index is None:
            x1, y1, x2, y2 = self.rows[:4]
            self.cx = (x1 + x2) * 0.5
            self.cy = (y1 + y2) * 0.5
            self.rx = _window_radius(x2 - x1, self.cx, self.positive, self.iou_threshold)
            self.ry = _window_radius(y2 - y1, self.cy, self.positive, self.iou_threshold)
            self._index = _CentreIndex(np.flatnonzero(self.positive), self.cx, self.classes)
        return self._index

    def reindex_if_sparse(self, undecided: np.ndarray) -> None:
        """Rebuild the index over the undecided boxes once most indexed boxes are gone."""
        if self._index is not None and self._index.size > 256 and 2 * undecided.size < self._index.size:
            self._index = _CentreIndex(undecided[self.positive[undecided]], self.cx, self.classes)

    def _windows(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = self.index
        cx, rx = self.cx[queries], self.rx[queries]
        return index.query(cx - rx, cx + rx, None if self.classes is None else self.classes[queries])

    def suppress(self, leaders: np.ndarray, *, after: int) -> None:
        """Mark dead every alive box ranked after *after* that a box of *leaders* (positive area) suppresses."""
        done = 0
        while done < leaders.size:               # chunks keep the pair arrays within budget
            chunk = self._budget_prefix(leaders[done:])
            self.alive[self._conflicting(chunk, after)] = False
            done += chunk.size

    def _conflicting(self, queries: np.ndarray, after: int) -> np.ndarray:
        """Alive boxes ranked after *after* with IoU > t with some box of *queries* (may repeat)."""
        lo, hi = self._windows(queries)
        counts = np.maximum(hi - lo, 0)
        ends = np.cumsum(counts)
        total = int(ends[-1]) if ends.size else 0
        if total == 0:
            return EMPTY
        i = np.repeat(queries, counts)
        j = self.index.ranks[np.repeat(lo - (ends - counts), counts) + np.arange(total)]
        m = self.alive[j]
        m &= j > after
        dy = self.cy[j]
        dy -= np.repeat(self.cy[queries], counts)
        np.abs(dy, out=dy)
        m &= dy < np.repeat(self.ry[queries], counts)
        i, j = i[m], j[m]
        return j[paired_iou(self.rows.take(i, axis=1), self.rows.take(j, axis=1)) > self.iou_threshold]

    def _budget_prefix(self, queries: np.ndarray) -> np.ndarray:
        """The longest prefix of *queries* whose windows stay within the pair budget (at least one box)."""
        if queries.size * self.index.size <= PAIR_BUDGET:       # no window can be larger than the index
            return queries
        lo, hi = self._windows(queries)
        ends = np.cumsum(np.maximum(hi - lo, 0))
        if ends[-1] <= PAIR_BUDGET:
            return queries
        return queries[:max(int(np.searchsorted(ends, PAIR_BUDGET, "right")), 1)]


def greedy_blocked(rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float, max_output: int
                   ) -> np.ndarray:
    """Greedy NMS over ``(5, K)`` rank-ordered box rows in rounds of dense blocks; kept ranks (ascending).

    *classes*: int64 class ids within int32 (boxes of different classes never
    conflict) or None. Stops once *max_output* boxes are kept.
    """
    search = _WindowSearch(rows, classes, iou_threshold)
    positive = search.positive
    zero_area = not positive.all()
    kept: list[np.ndarray] = []
    n_kept = 0
    rest = np.arange(rows.shape[1])              # undecided ranks that no kept box suppresses, ascending
    while rest.size and n_kept < max_output:
        search.reindex_if_sparse(rest)
        block = rest[:kernels.DENSE_BLOCK]
        block_classes = None if classes is None else classes[block]
        new = block[resolve_dense(rows.take(block, axis=1), block_classes, iou_threshold, zero_area=zero_area)]
        later = rest[block.size:]
        leaders = new[positive[new]]             # zero-area boxes suppress nothing
        if leaders.size and later.size:
            search.suppress(leaders, after=int(block[-1]))
            later = later[search.alive[later]]
        rest = later
        kept.append(new)
        n_kept += new.size
    out = np.concatenate(kept) if kept else EMPTY
    return out[:max_output].astype(np.int64, copy=False)
