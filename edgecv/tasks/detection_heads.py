"""The post-processing heads of the Detector: model outputs -> boxes, scores and class ids.

- :class:`PostprocessHead` reads the four outputs of TFLite_Detection_PostProcess
  (boxes, classes, scores, count): boxes already decoded and suppressed in-model.
- :class:`DenseHead` reads per-anchor boxes and class scores: already decoded boxes
  (the "decoded" form), or box encodings decoded against anchors with a box coder
  (the "raw" form); then the score threshold and NMS.

Both keep detections with ``score >= score_threshold`` (the rule of every edgecv task)
and return them best first as ``(boxes x1,y1,x2,y2 float64, scores float64, class ids int64)``
in the model's box coordinates; :class:`edgecv.Detector` maps them to image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..boxes import BoxCoder, BoxDecoder
from ..errors import ConfigError, IncompatibleModelError
from ..floats import just_below
from ..heads import SCORE_ACTIVATIONS, parse_anchors, parse_box_coder
from ..suppression import (
    IndexedBoxes,
    dequantize,
    greater_f64,
    hard_nms_checked,
    quantization_pair,
    quantized_threshold,
)

__all__ = ["DenseHead", "PostprocessHead", "box_coder_from", "anchors_from", "stored_quantization", "is_quantized",
           "strict_threshold"]

_EMPTY_BOXES = np.zeros((0, 4), np.float64)
_EMPTY_SCORES = np.zeros(0, np.float64)
_EMPTY_IDS = np.zeros(0, np.int64)
_MISSING = object()


def strict_threshold(score_threshold: float) -> float:
    """The float64 just below *score_threshold*: ``score > strict_threshold(t)`` is exactly ``score >= t``.

    The NMS and score helpers compare with ``>`` (OpenCV's and TensorFlow's rule); the
    tasks keep ``score >= threshold``. Every score is compared in float64, where no value
    lies between the two, so the results are identical, ties included (a threshold of 0 keeps
    scores of 0 also where subnormals flush to 0: :func:`edgecv.floats.just_below`).
    """
    return just_below(score_threshold)


# --------------------------------------------------------------------------- configuration helpers

def box_coder_from(value: Any) -> BoxCoder:
    """A :class:`BoxCoder` from itself or a manifest dict (see :func:`edgecv.heads.parse_box_coder`).

    Raises:
        ConfigError: anything else.
    """
    return parse_box_coder(value)


def anchors_from(value: Any, order: str = "yxhw") -> np.ndarray:
    """An ``(N, 4)`` float64 anchor array in the box coder's *order*.

    Accepts an :class:`edgecv.anchors.AnchorSpec` (generated in *order*), its
    ``to_dict()`` form, or an ``(N, 4)`` array already in *order*.

    Raises:
        ConfigError: anything that is not anchors.
    """
    anchors = parse_anchors(value)
    if anchors is None:
        raise ConfigError("anchors must be an AnchorSpec or an (N, 4) array, got None")
    if hasattr(anchors, "generate"):
        anchors = parse_anchors(anchors.generate(order))
    return anchors


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return math.log(p / (1.0 - p))


# --------------------------------------------------------------------------- heads

class PostprocessHead:
    """Reads the four outputs of TFLite_Detection_PostProcess.

    Args:
        box_columns: positions of (left, top, right, bottom) in each box row,
            e.g. ``(1, 0, 3, 2)`` for the op's ``ymin, xmin, ymax, xmax``.
    """

    def __init__(self, box_columns: Sequence[int] = (1, 0, 3, 2)) -> None:
        cols = tuple(int(c) for c in box_columns)
        if sorted(cols) != [0, 1, 2, 3]:
            raise ConfigError(f"box columns must be a permutation of 0..3, got {list(box_columns)}")
        self.box_columns = cols

    def check_outputs(self, boxes, classes, scores, count) -> int:
        """Check the four output specs against each other; return how many rows they hold.

        Raises:
            IncompatibleModelError: boxes are not ``[..., N, 4]``, classes or scores do not hold N values,
                or count holds none (outputs listed in another order than the op's, or another model).
        """
        rows = _elements(boxes.shape) // 4
        fits = (tuple(boxes.shape[-1:]) == (4,) and _elements(classes.shape) == rows == _elements(scores.shape)
                and _elements(count.shape) >= 1)
        if not fits:
            found = ", ".join(f"{s.name!r}{list(s.shape)}" for s in (boxes, classes, scores, count))
            raise IncompatibleModelError(
                f"Detector: TFLite_Detection_PostProcess outputs must be boxes [1, N, 4], classes [1, N], scores "
                f"[1, N] and count [1]; as mapped they are {found}. Name them with outputs={{'boxes': ..., "
                "'classes': ..., 'scores': ..., 'count': ...}}")
        return rows

    def run(self, boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, count: np.ndarray, *,
            score_threshold: float, max_detections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(boxes x1,y1,x2,y2, scores, class ids)`` of the rows with ``score >= score_threshold``, best first."""
        b = boxes.reshape(-1, 4)
        s = scores.reshape(-1)
        c = classes.reshape(-1)
        n = int(count.reshape(-1)[0]) if count.size else 0
        n = max(0, min(n, b.shape[0], s.shape[0], c.shape[0]))
        keep = np.flatnonzero(greater_f64(s[:n], strict_threshold(score_threshold)))
        if keep.size == 0:
            return _EMPTY_BOXES, _EMPTY_SCORES, _EMPTY_IDS
        keep = keep[np.argsort(-s[keep], kind="stable")][:max_detections]
        out = b[keep][:, self.box_columns].astype(np.float64)
        return out, s[keep].astype(np.float64), np.rint(c[keep]).astype(np.int64)


def _elements(shape: Sequence[int]) -> int:
    count = 1
    for d in shape:
        count *= int(d)
    return count


def is_quantized(spec) -> bool:
    """Whether an output spec is an integer tensor with quantization parameters."""
    return spec.quantization is not None and spec.np_dtype.kind in "ui"


def stored_quantization(spec) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of an 8/16-bit per-tensor quantized output, else None."""
    return spec.affine if spec.np_dtype.itemsize <= 2 else None


_CUT_DEPTH = 2      # a learnt score cut keeps about this many NMS first prefixes of candidates


class DenseHead:
    """Per-anchor boxes and class scores -> score prefilter -> NMS, with preallocated buffers.

    Used for the "decoded" form (boxes given) and the "raw" form (encodings
    decoded against anchors with a :class:`BoxDecoder`).

    Per frame, nothing proportional to anchors x classes is allocated: the
    activation (softmax), the background column removal (when it is not the
    first or last column), the per-anchor maximum and the score mask are
    written into buffers made once. Sigmoid scores are prefiltered on the
    logits (the sigmoid is monotonic), so the sigmoid runs on candidates only.
    Quantized outputs can be passed as stored (with their ``(scale, zero_point)``):
    the threshold is applied to the integers and only candidates are
    dequantized, with the float path's exact result. Only the anchors that have
    a candidate are decoded (all of them when they are more than half). Top-k
    NMS learns from each frame how deep in the ranking its k-th box lay, and
    the next frame with the same settings ranks about that many candidates
    first; when a frame has far more candidates than that (a low score
    threshold), the next ones first take only the scores above a cut learnt on
    it. Both give the same detections as a head without memory (see
    :meth:`_learn`); so one head serves one stream, and is not shared between threads.

    Args:
        num_anchors, num_columns: score tensor shape ``(N, C)``.
        score_activation: "sigmoid", "softmax" (over all C columns) or "none"
            (None: "none", checked once that the first frame's scores lie in 0..1).
        background_class: score column to ignore (None: every column is a class).
        decoder: a :class:`BoxDecoder` for raw encodings; None for decoded boxes.
        box_columns: for decoded boxes, positions of (x1, y1, x2, y2) in each row.
        class_agnostic: one NMS over all classes (each anchor votes with its best class)
            instead of per-class NMS over every (anchor, class) above the threshold.

    Raises:
        ConfigError: bad options.
    """

    def __init__(self, num_anchors: int, num_columns: int, *, score_activation: str | None = None,
                 background_class: int | None = None, decoder: BoxDecoder | None = None,
                 box_columns: Sequence[int] = (0, 1, 2, 3), class_agnostic: bool = False) -> None:
        if score_activation is not None and score_activation not in SCORE_ACTIVATIONS:
            raise ConfigError(f"score_activation must be one of {SCORE_ACTIVATIONS}, got {score_activation!r}")
        if background_class is not None and (not isinstance(background_class, int) or isinstance(background_class, bool)
                                             or not 0 <= background_class < num_columns):
            raise ConfigError(f"background_class must be None or a column index in 0..{num_columns - 1}, "
                              f"got {background_class!r}")
        if background_class is not None and num_columns < 2:
            raise ConfigError("background_class needs at least 2 score columns")
        cols = tuple(int(c) for c in box_columns)
        if sorted(cols) != [0, 1, 2, 3]:
            raise ConfigError(f"box columns must be a permutation of 0..3, got {list(box_columns)}")
        if decoder is not None and decoder.num_anchors != num_anchors:
            raise ConfigError(f"{decoder.num_anchors} anchors but the model scores {num_anchors} boxes")
        self.num_anchors, self.num_columns = int(num_anchors), int(num_columns)
        self.activation = score_activation
        self._check_range = score_activation is None
        self.background_class = background_class
        self.decoder = decoder
        self.box_columns = cols
        self.class_agnostic = bool(class_agnostic)
        n, c = self.num_anchors, self.num_columns
        self.num_classes = c - (1 if background_class is not None else 0)
        self._soft = np.zeros((n, c), np.float32) if score_activation == "softmax" else None
        self._row = np.zeros((n, 1), np.float32) if score_activation == "softmax" else None
        middle = background_class is not None and 0 < background_class < c - 1
        self._fg_cols = np.array([i for i in range(c) if i != background_class], np.intp) if middle else None
        self._fg = np.zeros((n, self.num_classes), np.float32) if middle else None
        # the score mask: over the gathered foreground copy when the background is a middle column, else
        # over all C columns (one contiguous compare, then the background column is cleared)
        self._mask = np.zeros((n, self.num_classes if middle else c), bool)
        self._best = np.zeros(n, np.float32)
        self._anchor_mask = np.zeros(n, bool)
        self._stored_thresholds: dict = {}     # (dtype, threshold, quantization) -> lowest passing stored value
        self._streams: dict = {}               # (dtype, threshold, quantization, k, IoU) -> (NMS horizon, cut)

    def _foreground(self, scores: np.ndarray) -> np.ndarray:
        s = scores
        if self.activation == "softmax":
            np.max(s, axis=1, keepdims=True, out=self._row)
            np.subtract(s, self._row, out=self._soft)
            np.exp(self._soft, out=self._soft)
            np.sum(self._soft, axis=1, keepdims=True, out=self._row)
            np.divide(self._soft, self._row, out=self._soft)
            s = self._soft
        bg = self.background_class
        if bg is None:
            return s
        if bg == 0:
            return s[:, 1:]
        if bg == self.num_columns - 1:
            return s[:, :-1]
        if self._fg.dtype != s.dtype:
            self._fg = np.zeros(self._fg.shape, s.dtype)
        np.take(s, self._fg_cols, axis=1, out=self._fg)
        return self._fg

    def _scored(self, s: np.ndarray, fg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The array the score threshold applies to and this head's mask buffer for it.

        Per anchor for one class (its column) or class-agnostic NMS (the best foreground
        score, computed here), else per (anchor, column): the gathered foreground copy when
        the background is a middle column, otherwise all C columns (one contiguous compare;
        :meth:`_fill_mask` clears the background column's hits).
        """
        if self.num_classes == 1:
            return fg[:, 0], self._anchor_mask
        if self.class_agnostic:
            if self._best.dtype != fg.dtype:
                self._best = np.zeros(self.num_anchors, fg.dtype)
            np.max(fg, axis=1, out=self._best)
            return self._best, self._anchor_mask
        if self._fg is not None:
            return fg, self._mask
        return s, self._mask

    def _fill_mask(self, scored: tuple[np.ndarray, np.ndarray], above) -> np.ndarray:
        """The mask buffer filled with ``above(values)`` (background column cleared)."""
        values, mask = scored
        above(values, mask)
        if mask.ndim == 2 and self._fg is None and self.background_class is not None:
            mask[:, self.background_class] = False
        return mask

    def _candidates(self, scored: tuple[np.ndarray, np.ndarray], mask: np.ndarray, fg: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """``(anchors, classes, stored scores, one_per_anchor)`` of the (anchor, class) pairs *mask* marks."""
        values = scored[0]
        if mask.ndim == 1:
            anchors = np.flatnonzero(mask)
            if self.num_classes == 1:
                return anchors, np.zeros(anchors.size, np.int64), values[anchors], True
            # argmax of candidate rows only: on the whole (strided) view numpy would copy N x C
            return anchors, np.argmax(fg[anchors], axis=1).astype(np.int64), values[anchors], True
        width = mask.shape[1]
        flat = mask.reshape(-1).nonzero()[0]     # (2-D np.nonzero is ten times slower)
        anchors = flat // width
        classes = flat - anchors * width
        if self._fg is None and self.background_class == 0:
            classes -= 1
        return anchors, classes, values.reshape(-1)[flat], False

    def _boxes(self, boxes: np.ndarray, anchors: np.ndarray, one_per_anchor: bool, quantization
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Corner boxes for the candidates' anchors and, when they are not one row per candidate, the box index.

        *anchors* is ascending (row-major candidates). Returns ``(rows, index)``:
        candidate m's box is ``rows[index[m]]`` (``rows[m]`` when index is None).
        """
        n = self.num_anchors
        if one_per_anchor:
            unique, index = anchors, None
        else:
            first = np.empty(anchors.size, bool)
            first[:1] = True
            np.not_equal(anchors[1:], anchors[:-1], out=first[1:])
            unique = anchors[first]
            index = np.cumsum(first) - 1
        stored = boxes.reshape(n, 4)
        if 2 * unique.size <= n:                 # decode the candidates' anchors only
            b = stored[unique]
            if quantization is not None:
                b = dequantize(b, quantization)
            if self.decoder is not None:
                b = self.decoder.decode_rows_checked(b, unique)
        else:
            b = stored if quantization is None else dequantize(stored, quantization)
            if self.decoder is not None:
                b = self.decoder.decode(b)
            index = anchors
        if self.decoder is None and self.box_columns != (0, 1, 2, 3):
            b = b[:, self.box_columns]
        return b, index

    def run(self, boxes: np.ndarray, scores: np.ndarray, *, score_threshold: float, iou_threshold: float,
            max_detections: int, box_quantization=None, score_quantization=None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detections as ``(boxes x1,y1,x2,y2 float64, scores float64, class ids int64)``, best first.

        Args:
            boxes: ``(..., 4)`` with N rows: decoded boxes, or encodings when the head has a decoder.
            scores: ``(..., C)`` with N rows.
            score_threshold: keep ``score >= score_threshold``.
            box_quantization, score_quantization: ``(scale, zero_point)`` when *boxes* /
                *scores* are the quantized tensors as stored (not for softmax scores).

        Raises:
            ConfigError: tensors of the wrong size, quantized softmax scores, or a bad
                iou_threshold / max_detections.
            IncompatibleModelError: scores outside 0..1 while no activation was stated.
        """
        n, c = self.num_anchors, self.num_columns
        if scores.size != n * c or boxes.size != n * 4:
            raise ConfigError(f"expected {n} boxes and {n}x{c} scores, got sizes {boxes.size} and {scores.size}")
        if not 0.0 <= iou_threshold <= 1.0 or int(max_detections) != max_detections or max_detections < 0:
            raise ConfigError(f"iou_threshold must be in 0..1 and max_detections an integer >= 0, got "
                              f"{iou_threshold!r} and {max_detections!r}")
        if score_quantization is not None and self.activation == "softmax":
            raise ConfigError("softmax needs the dequantized scores; pass score_quantization=None")
        s = scores.reshape(n, c)
        if self._check_range:
            ends = np.array([s.min(), s.max()], s.dtype)
            lo, hi = (float(v) for v in (ends if score_quantization is None else
                                         dequantize(ends, score_quantization)))
            if lo < 0.0 or hi > 1.0:
                raise IncompatibleModelError(
                    f"the score output holds values in [{lo:.3g}, {hi:.3g}], not probabilities; pass "
                    "score_activation='sigmoid' or 'softmax' (or state it in the manifest head)")
            self._check_range = False
        fg = self._foreground(s)
        sigmoid = self.activation == "sigmoid"
        strict = strict_threshold(score_threshold)      # score > strict  <=>  score >= score_threshold
        threshold = _logit(strict) if sigmoid else strict
        if sigmoid and math.isfinite(threshold):
            threshold -= 1e-6 * max(1.0, abs(threshold))  # prefilter margin; the exact test follows
        if score_quantization is None:
            def above(values: np.ndarray, out: np.ndarray) -> None:
                greater_f64(values, threshold, out=out)
        else:
            score_quantization = quantization_pair(score_quantization)
            key = (s.dtype, threshold, score_quantization)
            lowest = self._stored_thresholds.get(key, _MISSING)
            if lowest is _MISSING:
                first = quantized_threshold(s.dtype, threshold, score_quantization)
                if len(self._stored_thresholds) >= 64:       # thresholds changed at run time: keep it small
                    self._stored_thresholds.clear()
                lowest = self._stored_thresholds[key] = None if first is None else np.asarray(first, s.dtype)
            if lowest is None:
                return _EMPTY_BOXES, _EMPTY_SCORES, _EMPTY_IDS

            def above(values: np.ndarray, out: np.ndarray) -> None:
                np.greater_equal(values, lowest, out=out)
        if not s.flags.c_contiguous:
            s = np.ascontiguousarray(s)
            fg = self._foreground(s)
        limit = int(max_detections)
        scored = self._scored(s, fg)
        # What the previous frame with these settings taught (see _learn): how many ranks top-k NMS
        # examines first and, when candidates far outnumber them, a score cut to try first.
        key = None if limit == 0 else (s.dtype.str, float(score_threshold), score_quantization, limit,
                                       float(iou_threshold))
        horizon, cut = self._streams.get(key, (None, None))

        def detect(mask: np.ndarray, above_cut: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return self._detect(scored, mask, fg, boxes, box_quantization, score_quantization, strict,
                                iou_threshold, limit, key, horizon, cut if above_cut else None)
        if cut is not None:
            mask = self._fill_mask(scored, lambda v, out: np.greater_equal(v, cut, out=out))
            if horizon <= int(np.count_nonzero(mask)) <= 4 * _CUT_DEPTH * horizon:
                found = detect(mask, True)
                if found[0].shape[0] == limit:
                    return found                 # (else too few kept above the cut: every candidate)
        return detect(self._fill_mask(scored, above), False)

    def _detect(self, scored, mask, fg, boxes, box_quantization, score_quantization, strict,
                iou_threshold, limit, key, horizon, cut) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of *mask* -> boxes -> NMS (see :meth:`run`), then :meth:`_learn` under *key* (None: no).

        *strict*: candidates need ``score > strict`` (see :func:`strict_threshold`); *horizon*: NMS's first
        prefix (None: its default); *cut*: the score cut *mask* applied (None: none).
        """
        anchors, classes, stored, one_per_anchor = self._candidates(scored, mask, fg)
        cand = stored if score_quantization is None else dequantize(stored, score_quantization)
        cand = cand.astype(np.float64)
        if self.activation == "sigmoid" and anchors.size:
            cand = _sigmoid(cand)
            exact = cand > strict
            anchors, classes, cand = anchors[exact], classes[exact], cand[exact]
        if anchors.size == 0:
            return _EMPTY_BOXES, _EMPTY_SCORES, _EMPTY_IDS
        # one box per anchor, shared by every class candidate of that anchor
        rows, index = self._boxes(boxes, anchors, one_per_anchor, box_quantization)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():                     # a NaN box is dropped, never ranked
            ok = finite if index is None else finite[index]
            anchors, classes, cand = anchors[ok], classes[ok], cand[ok]
            if index is not None:
                index = index[ok]
            rows = np.where(finite[:, None], rows, 0)
            if index is None:
                rows = rows[ok]
        # nms() with the checks already made here (finite boxes, float64 scores, int64 classes, Detector thresholds)
        keep = hard_nms_checked(rows if index is None else IndexedBoxes(rows, index), cand,
                                iou_threshold=float(iou_threshold), max_output=limit,
                                class_ids=None if self.class_agnostic or self.num_classes == 1 else classes,
                                horizon=horizon)
        if key is not None:
            self._learn(key, stored, cand, keep, limit, cut)
        picked = rows[keep if index is None else index[keep]]
        return picked.astype(np.float64), cand[keep], classes[keep]

    def _learn(self, key, stored: np.ndarray, cand: np.ndarray, keep: np.ndarray, limit: int, cut) -> None:
        """Remember, for the next frame with the same settings, how deep top-k NMS went and maybe a score cut.

        Top-k NMS decides candidates in rank order and stops at the k-th kept box;
        edgecv.nms ranks a first prefix of the candidates (``prefix_horizon(k)`` by
        default, 8 per box asked for) and examines more only when that prefix keeps
        fewer than k. The depth at which this frame found its k-th box, plus a
        quarter and 16, is the next frame's first prefix (a hint: exact either way).
        Extracting, dequantizing and decoding every candidate also costs time in
        proportion to their number, which at a low score threshold reaches tens of
        thousands on a COCO SSD: when this frame's candidates (all of them: *cut* is
        None) were more than ``4 * _CUT_DEPTH`` times that prefix, the cut is the
        ``_CUT_DEPTH * prefix``-th best stored score. A later frame first takes only
        the scores ``>= cut`` (a top set of the ranking, ties included: exact) when
        they are between one and ``4 * _CUT_DEPTH`` prefixes, and every candidate when
        those above the cut keep fewer than k boxes (that frame learns anew). No cut
        after a sigmoid: distinct logits can saturate to one score.
        """
        if keep.size < limit:                    # every candidate was examined; nothing to learn
            self._streams.pop(key, None)
            return
        depth = int(np.count_nonzero(cand >= cand[keep[-1]]))
        horizon = depth + depth // 4 + 16
        if cut is None and self.activation != "sigmoid" and stored.size > 4 * _CUT_DEPTH * horizon:
            wanted = _CUT_DEPTH * horizon
            cut = np.partition(stored, stored.size - wanted)[stored.size - wanted]
        if len(self._streams) >= 64 and key not in self._streams:   # settings changed at run time: keep it small
            self._streams.clear()
        self._streams[key] = (horizon, cut)
