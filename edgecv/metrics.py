"""Accuracy metrics for the four tasks, as pure functions on numpy arrays.

Used by the converters' validation report and by anyone evaluating a model
on a labelled set. Every function returns plain Python numbers.

Conventions:
    * Boxes are ``x1, y1, x2, y2`` corners (any unit, the same for both sides);
      IoU is :func:`edgecv.boxes.box_iou` (continuous coordinates, no "+1").
    * mAP@0.5 is the PASCAL VOC 2010+ definition: per class, detections sorted
      by score are matched greedily to the unmatched ground-truth box of the
      same class with the highest IoU (>= the threshold); AP is the area under
      the precision-recall curve with **all-point interpolation** (precision
      made monotonically non-increasing, summed over every recall step); mAP
      is the mean over classes that have at least one ground-truth box.
    * mIoU is the mean over classes that occur in the prediction or the truth
      of ``TP / (TP + FP + FN)`` accumulated over the whole set.
    * TAR@FAR and recall@k live in :mod:`edgecv.metrics_embedding`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .boxes import box_iou
from .errors import ConfigError

__all__ = [
    "top1_accuracy",
    "top1_agreement",
    "average_precision",
    "mean_average_precision",
    "DetectionAgreement",
    "detection_agreement",
    "confusion_matrix",
    "mean_iou",
    "pixel_agreement",
    "cosine_similarity",
    "mean_cosine_similarity",
]


def _int_vector(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D sequence of class indices, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iub":
        raise ConfigError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise ConfigError(f"{what}: {len(a)} predictions but {len(b)} references; pass one per image")
    if len(a) == 0:
        raise ConfigError(f"{what}: empty input; pass at least one image")


def top1_accuracy(predicted: Sequence[int] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Fraction (0-1) of images whose top-1 class equals the label.

    Raises:
        ConfigError: different lengths, empty, or non-integer classes.
    """
    return _fraction_equal(predicted, labels, "labels", "top1_accuracy")


def _fraction_equal(predicted, other, other_name: str, what: str) -> float:
    """Fraction of positions where two integer class vectors agree (checked as :func:`top1_accuracy` says)."""
    p, o = _int_vector(predicted, "predicted"), _int_vector(other, other_name)
    _same_length(p, o, what)
    return float(np.mean(p == o))


def top1_agreement(predicted: Sequence[int] | np.ndarray, reference: Sequence[int] | np.ndarray) -> float:
    """Fraction (0-1) of images where two models pick the same top-1 class.

    Raises:
        ConfigError: different lengths, empty, or non-integer classes.
    """
    return _fraction_equal(predicted, reference, "reference", "top1_agreement")


def _boxes(boxes: np.ndarray | Sequence, name: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ConfigError(f"{name} must have shape (N, 4) as x1,y1,x2,y2, got {arr.shape}")
    return arr


def average_precision(scores: np.ndarray, is_true_positive: np.ndarray, num_ground_truth: int) -> float:
    """AP with all-point interpolation from scored detections marked TP/FP.

    Args:
        scores: (K,) detection scores.
        is_true_positive: (K,) bools, aligned with *scores*.
        num_ground_truth: ground-truth boxes of this class (> 0).

    Raises:
        ConfigError: num_ground_truth < 1 or mismatched lengths.
    """
    if num_ground_truth < 1:
        raise ConfigError("average_precision needs at least one ground-truth box")
    s = np.asarray(scores, np.float64).reshape(-1)
    tp = np.asarray(is_true_positive, bool).reshape(-1)
    if s.shape != tp.shape:
        raise ConfigError(f"{len(s)} scores but {len(tp)} TP flags")
    if s.size == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    tp_cum = np.cumsum(tp[order])
    fp_cum = np.cumsum(~tp[order])
    recall = tp_cum / num_ground_truth
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


Detections = Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]   # per image: boxes (k,4), scores (k,), classes (k,)
GroundTruth = Sequence[tuple[np.ndarray, np.ndarray]]              # per image: boxes (g,4), classes (g,)


def _match_image(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                 iou_threshold: float) -> np.ndarray:
    """TP flags for one image and one class: greedy by score, best unmatched GT by IoU."""
    tp = np.zeros(len(det_boxes), bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    iou = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    for i in np.argsort(-det_scores, kind="stable"):
        candidates = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= iou_threshold:
            taken[j] = True
            tp[i] = True
    return tp


def mean_average_precision(detections: Detections, ground_truth: GroundTruth, *,
                           iou_threshold: float = 0.5) -> float:
    """mAP (0-1) at one IoU threshold, VOC all-point interpolation (see module doc).

    Args:
        detections: per image ``(boxes (k,4), scores (k,), class_ids (k,))``.
        ground_truth: per image ``(boxes (g,4), class_ids (g,))``, same image order.
        iou_threshold: minimum IoU for a match (0.5 for mAP@0.5).

    Raises:
        ConfigError: different image counts, malformed arrays, or no ground-truth box at all.
    """
    if len(detections) != len(ground_truth):
        raise ConfigError(f"mean_average_precision: {len(detections)} images of detections but "
                          f"{len(ground_truth)} of ground truth")
    per_class_scores: dict[int, list[np.ndarray]] = {}
    per_class_tp: dict[int, list[np.ndarray]] = {}
    gt_counts: dict[int, int] = {}
    for (d_boxes, d_scores, d_classes), (g_boxes, g_classes) in zip(detections, ground_truth):
        d_boxes, g_boxes = _boxes(d_boxes, "detection boxes"), _boxes(g_boxes, "ground-truth boxes")
        d_scores = np.asarray(d_scores, np.float64).reshape(-1)
        d_classes = np.asarray(d_classes, np.int64).reshape(-1)
        g_classes = np.asarray(g_classes, np.int64).reshape(-1)
        if not (len(d_boxes) == len(d_scores) == len(d_classes)) or len(g_boxes) != len(g_classes):
            raise ConfigError("each image needs as many scores and classes as boxes")
        for c in np.unique(g_classes):
            gt_counts[int(c)] = gt_counts.get(int(c), 0) + int(np.sum(g_classes == c))
        for c in np.unique(d_classes):
            sel = d_classes == c
            tp = _match_image(d_boxes[sel], d_scores[sel], g_boxes[g_classes == c], iou_threshold)
            per_class_scores.setdefault(int(c), []).append(d_scores[sel])
            per_class_tp.setdefault(int(c), []).append(tp)
    if not gt_counts:
        raise ConfigError("mean_average_precision: the ground truth holds no boxes; mAP is undefined")
    aps = []
    for c, n in sorted(gt_counts.items()):
        if c in per_class_scores:
            aps.append(average_precision(np.concatenate(per_class_scores[c]), np.concatenate(per_class_tp[c]), n))
        else:
            aps.append(0.0)
    return float(np.mean(aps))


@dataclass(frozen=True)
class DetectionAgreement:
    """How well a candidate model's detections reproduce a reference model's.

    Attributes:
        recall: fraction of reference detections the candidate also finds (0-1).
        precision: fraction of candidate detections the reference also has (0-1).
        f1: harmonic mean of the two; 1.0 when both sides are empty everywhere.
        matched: number of matched pairs; reference / candidate: detection counts.
    """

    recall: float
    precision: float
    f1: float
    matched: int
    reference: int
    candidate: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def detection_agreement(reference: Detections, candidate: Detections, *,
                        iou_threshold: float = 0.5, class_aware: bool = True) -> DetectionAgreement:
    """Match candidate detections to reference detections (same class, IoU >= threshold).

    Matching per image is greedy in candidate score order, each candidate
    taking the unmatched reference box with the highest IoU.

    Raises:
        ConfigError: different image counts or malformed arrays.
    """
    if len(reference) != len(candidate):
        raise ConfigError(f"detection_agreement: {len(reference)} reference images but {len(candidate)} candidate")
    matched = n_ref = n_cand = 0
    for (r_boxes, _r_scores, r_classes), (c_boxes, c_scores, c_classes) in zip(reference, candidate):
        r_boxes, c_boxes = _boxes(r_boxes, "reference boxes"), _boxes(c_boxes, "candidate boxes")
        r_classes = np.asarray(r_classes, np.int64).reshape(-1)
        c_classes = np.asarray(c_classes, np.int64).reshape(-1)
        c_scores = np.asarray(c_scores, np.float64).reshape(-1)
        n_ref += len(r_boxes)
        n_cand += len(c_boxes)
        if not class_aware:
            matched += int(_match_image(c_boxes, c_scores, r_boxes, iou_threshold).sum())
            continue
        for c in np.unique(c_classes):
            sel = c_classes == c
            matched += int(_match_image(c_boxes[sel], c_scores[sel], r_boxes[r_classes == c], iou_threshold).sum())
    recall = matched / n_ref if n_ref else 1.0
    precision = matched / n_cand if n_cand else 1.0
    f1 = 2.0 * matched / (n_ref + n_cand) if n_ref + n_cand else 1.0
    return DetectionAgreement(float(recall), float(precision), float(f1), matched, n_ref, n_cand)


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 pixel counts, rows = truth class, columns = predicted class.

    Pixels whose truth or prediction is outside ``0..num_classes-1`` are ignored
    (use that for an "ignore" label such as 255).

    Raises:
        ConfigError: shapes differ or num_classes < 1.
    """
    p, t = np.asarray(predicted), np.asarray(truth)
    if p.shape != t.shape:
        raise ConfigError(f"mask shapes differ: predicted {p.shape} vs truth {t.shape}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    p, t = p.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64)
    valid = (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)
    return np.bincount(t[valid] * num_classes + p[valid], minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def mean_iou(predicted: Sequence[np.ndarray] | np.ndarray, truth: Sequence[np.ndarray] | np.ndarray, *,
             num_classes: int) -> float:
    """mIoU (0-1) over a set of class-id masks (see module doc).

    Raises:
        ConfigError: different counts or shapes, or no valid pixel.
    """
    if len(predicted) != len(truth) or len(truth) == 0:
        raise ConfigError(f"mean_iou: {len(predicted)} predicted masks but {len(truth)} truth masks")
    cm = np.zeros((num_classes, num_classes), np.int64)
    for p, t in zip(predicted, truth):
        cm += confusion_matrix(p, t, num_classes)
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    if not present.any():
        raise ConfigError("mean_iou: no pixel with a valid class in prediction or truth")
    return float(np.mean(tp[present] / union[present]))


def pixel_agreement(masks_a: Sequence[np.ndarray] | np.ndarray, masks_b: Sequence[np.ndarray] | np.ndarray) -> float:
    """Fraction (0-1) of pixels with the same class id in both sets of masks.

    Raises:
        ConfigError: different counts or shapes, or empty input.
    """
    if len(masks_a) != len(masks_b) or len(masks_a) == 0:
        raise ConfigError(f"pixel_agreement: {len(masks_a)} masks vs {len(masks_b)}")
    equal = total = 0
    for a, b in zip(masks_a, masks_b):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ConfigError(f"mask shapes differ: {a.shape} vs {b.shape}")
        equal += int(np.count_nonzero(a == b))
        total += a.size
    if total == 0:
        raise ConfigError("pixel_agreement: masks hold no pixels")
    return equal / total


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ConfigError(f"{name} must be (N, D) embeddings, got shape {np.asarray(x).shape}")
    return arr


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N,D) and (N,D); a zero vector has similarity 0.

    Raises:
        ConfigError: shapes differ or are not 2-D.
    """
    a, b = _matrix(a, "a"), _matrix(b, "b")
    if a.shape != b.shape:
        raise ConfigError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    denom = na * nb
    out = np.zeros(len(a))
    np.divide(np.sum(a * b, axis=1), denom, out=out, where=denom > 0)
    return out


def mean_cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Mean row-wise cosine similarity (-1..1) of two embedding sets of the same images."""
    return float(np.mean(cosine_similarity(a, b)))
