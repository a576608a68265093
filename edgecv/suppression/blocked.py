"""Greedy NMS in rounds over the rank-sorted boxes, each round deciding the next block of undecided boxes at once.

* a block of up to :data:`kernels.DENSE_BLOCK` boxes gets a dense conflict matrix
  (:func:`kernels.resolve_dense`); its kept boxes then remove the boxes further
  down that they suppress: compared all at once while kept x later boxes stay
  within ``DENSE_PAIRS`` (``alive`` is brought up to date only when next needed),
  else found through the centre index below;
* while most boxes of a block survive (sparse scenes) the next block is twice
  as large, up to ``MAX_BLOCK`` boxes (and within the pair budget): only the
  pairs that can conflict are examined, found by a sort-and-sweep index on box
  centres (IoU > t needs ``|cx_i - cx_j| < w_i * max(1 - t, (1/t - 1) / 2)``,
  likewise in y), and the block is resolved from its own pairs by a vectorised
  fixed point ``keep[i] = no kept j < i conflicts with i`` (exactly greedy; a
  chain still undecided after ``FIXED_POINT_ROUNDS`` rounds falls back to a
  sequential sweep of that block); its pairs that reach further down remove the
  boxes its kept boxes suppress. Once fewer than half survive, blocks shrink
  back towards dense ones.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import centre_factor, conflict_matrix, paired_iou, resolve_dense
from .ranking import EMPTY

__all__ = ["greedy_blocked"]

PAIR_BUDGET = 1 << 20       # candidate pairs examined per window query (memory bound)
MAX_BLOCK = 4096            # largest block
FIXED_POINT_ROUNDS = 12     # then fall back to a sequential sweep of the block
DENSE_PAIRS = 1 << 15       # kept x later boxes up to this: compare them all at once, no window search


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
        self.synced = True       # alive is False for every suppressed rank after the first undecided one
        self._index: _CentreIndex | None = None

    def sync(self, undecided: np.ndarray) -> None:
        """Bring ``alive`` up to date after suppressions made without it: alive after undecided[0] = undecided."""
        if not self.synced:
            self.alive[undecided[0]:] = False
            self.alive[undecided] = True
            self.synced = True

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
            chunk = self.budget_prefix(leaders[done:])
            self.alive[self._conflicting(chunk, after)] = False
            done += chunk.size

    def _conflicting(self, queries: np.ndarray, after: int) -> np.ndarray:
        """Alive boxes ranked after *after* with IoU > t with some box of *queries* (may repeat)."""
        return self.pairs(queries, after=after)[1]

    def pairs(self, queries: np.ndarray, *, after: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Conflicting pairs ``(i, j)``: i in *queries*, j alive and ranked after i (or after *after*), IoU > t."""
        lo, hi = self._windows(queries)
        counts = np.maximum(hi - lo, 0)
        ends = np.cumsum(counts)
        total = int(ends[-1]) if ends.size else 0
        if total == 0:
            return EMPTY, EMPTY
        i = np.repeat(queries, counts)
        j = self.index.ranks[np.repeat(lo - (ends - counts), counts) + np.arange(total)]
        m = self.alive[j]
        m &= (j > i) if after is None else (j > after)
        dy = self.cy[j]
        dy -= np.repeat(self.cy[queries], counts)
        np.abs(dy, out=dy)
        m &= dy < np.repeat(self.ry[queries], counts)
        i, j = i[m], j[m]
        hit = paired_iou(self.rows.take(i, axis=1), self.rows.take(j, axis=1)) > self.iou_threshold
        return i[hit], j[hit]

    def budget_prefix(self, queries: np.ndarray) -> np.ndarray:
        """The longest prefix of *queries* whose windows stay within the pair budget (at least one box)."""
        if queries.size * self.index.size <= PAIR_BUDGET:       # no window can be larger than the index
            return queries
        lo, hi = self._windows(queries)
        ends = np.cumsum(np.maximum(hi - lo, 0))
        if ends[-1] <= PAIR_BUDGET:
            return queries
        return queries[:max(int(np.searchsorted(ends, PAIR_BUDGET, "right")), 1)]


def _resolve_block(n: int, *, higher: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Greedy decisions inside a block of *n* rank-ordered boxes.

    ``(higher[k], lower[k])`` are conflicting pairs with ``higher < lower`` (local positions).
    Returns a bool array: True where greedy NMS keeps the box.
    """
    state = np.zeros(n, dtype=np.int8)          # 0 undecided, 1 kept, 2 suppressed
    for _ in range(FIXED_POINT_ROUNDS):
        if higher.size == 0:
            break
        blocked = np.zeros(n, dtype=bool)
        blocked[lower] = True                    # has a parent that may still be kept
        state[(state == 0) & ~blocked] = 1
        state[lower[state[higher] == 1]] = 2
        live = (state[lower] == 0) & (state[higher] == 0)
        higher, lower = higher[live], lower[live]
    else:
        if higher.size:
            _resolve_sequential(state, higher=higher, lower=lower)
    state[state == 0] = 1
    return state == 1


def _resolve_sequential(state: np.ndarray, *, higher: np.ndarray, lower: np.ndarray) -> None:
    """Plain greedy sweep over the undecided boxes (long suppression chains)."""
    order = np.argsort(higher, kind="stable")
    higher, lower = higher[order], lower[order]
    starts = np.searchsorted(higher, np.arange(state.size + 1))
    for u in np.flatnonzero(state == 0).tolist():
        if state[u] != 0:
            continue
        state[u] = 1
        children = lower[starts[u]:starts[u + 1]]
        state[children[state[children] == 0]] = 2


def _dense_round(search: _WindowSearch, rest: np.ndarray, *, block: int, zero_area: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One round over a block of up to DENSE_BLOCK boxes resolved densely: ``(block, kept, later)``."""
    rows, classes = search.rows, search.classes
    s = rest[:block]
    block_classes = None if classes is None else classes[s]
    new = s[resolve_dense(rows.take(s, axis=1), block_classes, search.iou_threshold, zero_area=zero_area)]
    later = rest[s.size:]
    leaders = new[search.positive[new]]          # zero-area boxes suppress nothing
    if leaders.size and later.size:
        if leaders.size * later.size <= DENSE_PAIRS:     # few pairs: all at once, alive left stale
            conflict = conflict_matrix(rows.take(leaders, axis=1), rows.take(later, axis=1), search.iou_threshold,
                                       zero_area=False, classes_a=None if classes is None else classes[leaders],
                                       classes_b=None if classes is None else classes[later])
            later = later[~conflict.any(axis=0)]
            search.synced = False
        else:
            search.sync(rest)
            search.suppress(leaders, after=int(s[-1]))
            later = later[search.alive[later]]
    return s, new, later


def _window_round(search: _WindowSearch, rest: np.ndarray, *, block: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One round over a large block resolved from its window pairs: ``(block, kept, later)``."""
    search.sync(rest)
    s = search.budget_prefix(rest[:block])
    last = int(s[-1])
    i, j = search.pairs(s, after=None)
    inside = j <= last
    keep_local = _resolve_block(s.size, higher=np.searchsorted(s, i[inside]), lower=np.searchsorted(s, j[inside]))
    outside = ~inside
    if outside.any():                            # pairs reaching further down: kept parents suppress
        parent_kept = keep_local[np.searchsorted(s, i[outside])]
        search.alive[j[outside][parent_kept]] = False
    later = rest[s.size:]
    return s, s[keep_local], later[search.alive[later]]


def greedy_blocked(rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float, max_output: int
                   ) -> np.ndarray:
    """Greedy NMS over ``(5, K)`` rank-ordered box rows in rounds of blocks; kept ranks (ascending).

    *classes*: int64 class ids within int32 (boxes of different classes never
    conflict) or None. Stops once *max_output* boxes are kept.
    """
    search = _WindowSearch(rows, classes, iou_threshold)
    zero_area = not search.positive.all()
    kept: list[np.ndarray] = []
    n_kept = 0
    block = kernels.DENSE_BLOCK
    rest = np.arange(rows.shape[1])              # undecided ranks that no kept box suppresses, ascending
    while rest.size and n_kept < max_output:
        search.reindex_if_sparse(rest)
        if block <= kernels.DENSE_BLOCK:
            s, new, rest = _dense_round(search, rest, block=block, zero_area=zero_area)
        else:
            s, new, rest = _window_round(search, rest, block=block)
        kept.append(new)
        n_kept += new.size
        # grow the block while most boxes survive (sparse scenes), shrink it when few do
        if 2 * new.size >= s.size:
            block = min(2 * block, MAX_BLOCK)
        else:
            block = max(kernels.DENSE_BLOCK, min(block, 4 * new.size))
    out = np.concatenate(kept) if kept else EMPTY
    return out[:max_output].astype(np.int64, copy=False)
