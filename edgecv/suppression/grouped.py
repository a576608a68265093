"""Greedy NMS by independent groups: detector output, a few objects with many candidate boxes each.

The greedy result is the unique set ``K`` of candidates such that no two boxes
in ``K`` conflict and every other candidate conflicts with a higher-ranked box
of ``K``. Decisions inside a set of boxes that cannot conflict with the rest
depend on that set alone, so the candidates are split into such groups, by gaps
between per-box conflict intervals (alternately in x and y) and by class; then
every round keeps the best-ranked undecided box of every group and tests each
undecided box against its own group's leader, one element-wise IoU over all
boxes per round.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from .blocked import greedy_blocked
from .kernels import centre_factor, greedy_python, paired_iou
from .ranking import EMPTY

__all__ = ["greedy_grouped", "split_groups"]

GROUP_ROUNDS = 8            # leader rounds before the groups hand what is left to the blocked path


def _conflict_intervals(rows: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per box and axis, an interval such that two boxes with IoU > t have intersecting intervals on both axes.

    *rows* are box rows x1, y1, x2, y2, ...; returns ``(lo, hi)``, each ``(2, K)``: x, then y.
    IoU > t needs ``|c_i - c_j| < min(r_i, r_j)`` with ``r = s * centre_factor(t)``
    (see :func:`kernels.centre_factor`) and, for any overlap, ``|c_i - c_j| < (s_i + s_j) / 2``;
    so ``c -+ s * min(g, 1) / 2`` serves, widened by rounding margins.
    """
    g = centre_factor(iou_threshold) if iou_threshold > 0 else 1.0
    centre = rows[0:2] + rows[2:4]
    centre *= 0.5
    size = rows[2:4] - rows[0:2]
    half = np.abs(centre)
    half += size
    half *= 1e-12
    size *= 0.5 * min(g, 1.0) * (1.0 + 1e-7)
    half += size
    return centre - half, centre + half


def split_groups(lo: np.ndarray, hi: np.ndarray, members: np.ndarray | None, group: np.ndarray
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


def _group_members(rows: np.ndarray, members: np.ndarray, classes: np.ndarray | None, iou_threshold: float
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """*members* (positive-area ranks) by group, then rank, and their group numbers; None when they do not split.

    Groups come from gaps in x, then y, then x again (a third level only while the
    second one split well); class ids (within int32, see :func:`ranking.ranked_classes`)
    seed them: their key bands are span/2 apart, far beyond the rounding of the key,
    so two classes never share a group.
    """
    k = rows.shape[1]
    lo, hi = _conflict_intervals(rows, iou_threshold)
    group = np.zeros(1) if classes is None else classes.take(members).astype(np.float64)
    split = split_groups(lo[0], hi[0], None if members.size == k else members, group)
    groups = 0
    for axis, most in ((1, 0.75), (0, 0.5), (None, None)):
        if split is None:
            return None
        members, group = split
        if most is not None and np.bincount(group).max() > most * members.size:
            return None                          # one group holds most boxes: the blocked path is faster
        if axis is None or (axis == 0 and int(group[-1]) <= 2 * groups):
            break
        groups = int(group[-1])
        split = split_groups(lo[axis], hi[axis], members, group)
    key = group * k                              # members by group, then rank (exact int64 keys)
    key += members
    key.sort()
    group = key // k
    return key - group * k, group


def greedy_grouped(rows: np.ndarray, classes: np.ndarray | None, iou_threshold: float,
                   max_output: int | None = None) -> np.ndarray | None:
    """Greedy NMS by independent groups of boxes; kept ranks (ascending), or None when the boxes do not split.

    *rows*: ``(5, K)`` rank-ordered box rows (``iou_threshold < 1``); *classes*: int64
    class ids within int32, or None. Every round keeps the best-ranked undecided box of
    every group at once and tests each undecided box against its own group's new leader
    only (the arithmetic of :func:`kernels.conflict_matrix`). The last ``kernels.FEW``
    undecided boxes are decided in Python floats, and after ``GROUP_ROUNDS`` the boxes
    still undecided (each group's remaining boxes rank below its decided ones) by
    :func:`blocked.greedy_blocked`. With *max_output* (top-k), once that many boxes are
    kept the undecided ones ranked after the k-th of them leave: they cannot be among
    the first k, which are then the only exact part of the result.
    """
    positive = rows[4] > 0
    if positive.all():
        members, kept = np.arange(rows.shape[1]), []
    else:                                        # zero-area boxes: IoU 0 with everything, always kept
        members, kept = np.flatnonzero(positive), [np.flatnonzero(~positive)]
        if members.size == 0:
            return kept[0]
    n_kept = kept[0].size if kept else 0
    grouped = _group_members(rows, members, classes, iou_threshold)
    if grouped is None:
        return None
    members, group = grouped
    own = rows.take(members, axis=1)            # no class test below: every group holds one class
    for _ in range(GROUP_ROUNDS):
        first = np.empty(members.size, dtype=bool)
        first[0] = True
        np.not_equal(group[1:], group[:-1], out=first[1:])
        leaders = np.flatnonzero(first)
        kept.append(members.take(leaders))
        leader_of = np.cumsum(first)
        leader_of -= 1
        # a leader's IoU with itself is 1 > t (t < 1 here): it leaves with the boxes it suppresses
        stay = paired_iou(own, own.take(leaders.take(leader_of), axis=1)) <= iou_threshold
        if max_output is not None:
            n_kept += leaders.size
            if n_kept >= max_output:
                stay &= members < np.partition(np.concatenate(kept), max_output - 1)[max_output - 1]
        if not stay.any():
            members = EMPTY
            break
        members, group, own = members[stay], group[stay], own[:, stay]
        if members.size <= kernels.FEW:          # a few left: in Python floats, by rank, within their groups
            by_rank = np.argsort(members)
            members = members.take(by_rank)
            decided = greedy_python(own.take(by_rank, axis=1).T.tolist(), group.take(by_rank).tolist(),
                                    iou_threshold, members.size)
            kept.append(members.take(decided))
            members = EMPTY
            break
    if members.size:
        rest = np.sort(members)
        rest_classes = None if classes is None else classes.take(rest)
        kept.append(rest.take(greedy_blocked(rows.take(rest, axis=1), rest_classes, iou_threshold, rest.size)))
    out = np.concatenate(kept)
    out.sort()
    return out
