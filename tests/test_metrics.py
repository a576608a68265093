"""edgecv.metrics: hand-computed values for every metric, and the errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from edgecv import metrics
from edgecv.errors import ConfigError

pytestmark = pytest.mark.device


def test_top1_accuracy_and_agreement():
    assert metrics.top1_accuracy([0, 1, 2, 3], [0, 1, 0, 3]) == 0.75
    assert metrics.top1_agreement(np.array([1, 1, 2]), np.array([1, 2, 2])) == pytest.approx(2 / 3)
    assert isinstance(metrics.top1_accuracy([1], [1]), float)


@pytest.mark.parametrize("args", [([0, 1], [0]), ([], []), ([[0, 1]], [[0, 1]]), ([0.5], [0.5])])
def test_top1_rejects_bad_input(args):
    with pytest.raises(ConfigError):
        metrics.top1_accuracy(*args)


def test_average_precision_all_point_interpolation():
    # 3 ground truths; ranked TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3
    ap = metrics.average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3)
    # envelope: recall 0..1/3 at precision 1, 1/3..2/3 at 2/3; recall beyond 2/3 never reached
    assert ap == pytest.approx(1 / 3 * 1.0 + 1 / 3 * 2 / 3)
    assert metrics.average_precision(np.array([]), np.array([], bool), 2) == 0.0
    with pytest.raises(ConfigError):
        metrics.average_precision(np.array([0.5]), np.array([True]), 0)


def test_average_precision_envelope_uses_later_higher_precision():
    # TP, FP, FP, TP, TP with 3 GT: precision at recall 1 is 3/5, which lifts the earlier dip
    ap = metrics.average_precision(np.array([5, 4, 3, 2, 1.0]), np.array([1, 0, 0, 1, 1], bool), 3)
    assert ap == pytest.approx(1 / 3 * 1.0 + 2 / 3 * 0.6)


def _img(boxes, scores=None, classes=None):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    s = np.ones(len(b)) if scores is None else np.asarray(scores, np.float64)
    c = np.zeros(len(b), np.int64) if classes is None else np.asarray(classes, np.int64)
    return b, s, c


def test_map_perfect_and_class_mismatch():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), np.array([0, 1]))]
    perfect = [_img([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 1])]
    assert metrics.mean_average_precision(perfect, gt) == 1.0
    swapped = [_img([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [1, 0])]
    assert metrics.mean_average_precision(swapped, gt) == 0.0


def test_map_iou_threshold_and_duplicates():
    gt = [(np.array([[0, 0, 10, 10.0]]), np.array([0]))]
    shifted = [_img([[5, 0, 15, 10]])]                      # IoU 1/3
    assert metrics.mean_average_precision(shifted, gt, iou_threshold=0.5) == 0.0
    assert metrics.mean_average_precision(shifted, gt, iou_threshold=0.3) == 1.0
    duplicate = [_img([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8])]   # second is a false positive after the TP
    assert metrics.mean_average_precision(duplicate, gt) == 1.0
    late = [_img([[0, 0, 10, 10], [50, 50, 60, 60]], [0.5, 0.9])]     # FP ranked first: precision 1/2 at recall 1
    assert metrics.mean_average_precision(late, gt) == pytest.approx(0.5)


def test_map_averages_over_classes_with_ground_truth():
    gt = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), np.array([0, 1])),
          (np.zeros((0, 4)), np.zeros(0, np.int64))]
    dets = [_img([[0, 0, 10, 10]], [0.9], [0]), _img([[1, 1, 5, 5]], [0.9], [2])]   # class 1 missed, class 2 has no GT
    assert metrics.mean_average_precision(dets, gt) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        metrics.mean_average_precision(dets, [(np.zeros((0, 4)), np.zeros(0))] * 2)
    with pytest.raises(ConfigError):
        metrics.mean_average_precision(dets, gt[:1])


def test_detection_agreement_counts():
    ref = [_img([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8]), _img([])]
    cand = [_img([[1, 0, 11, 10]], [0.7]), _img([[0, 0, 5, 5]], [0.6])]
    a = metrics.detection_agreement(ref, cand)
    assert (a.matched, a.reference, a.candidate) == (1, 2, 2)
    assert a.recall == 0.5 and a.precision == 0.5 and a.f1 == 0.5
    empty = metrics.detection_agreement([_img([])], [_img([])])
    assert (empty.recall, empty.precision, empty.f1) == (1.0, 1.0, 1.0)
    other_class = metrics.detection_agreement([_img([[0, 0, 10, 10]], [0.9], [0])], [_img([[0, 0, 10, 10]], [0.9], [1])])
    assert other_class.matched == 0
    agnostic = metrics.detection_agreement([_img([[0, 0, 10, 10]], [0.9], [0])], [_img([[0, 0, 10, 10]], [0.9], [1])],
                                           class_aware=False)
    assert agnostic.matched == 1


def test_confusion_matrix_and_mean_iou():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 0]])
    cm = metrics.confusion_matrix(pred, truth, 2)
    assert cm.tolist() == [[3, 1], [0, 3]]       # the 255 pixel is ignored
    # class 0: TP 3, FP 0, FN 1 -> 3/4 ; class 1: TP 3, FP 1, FN 0 -> 3/4
    assert metrics.mean_iou([pred], [truth], num_classes=2) == pytest.approx(0.75)
    # a class absent from both sides is not averaged in
    assert metrics.mean_iou([pred], [truth], num_classes=3) == pytest.approx(0.75)
    with pytest.raises(ConfigError):
        metrics.mean_iou([pred], [truth[:1]], num_classes=2)


def test_pixel_agreement():
    a = [np.array([[1, 2], [3, 4]]), np.array([[0]])]
    b = [np.array([[1, 2], [0, 4]]), np.array([[0]])]
    assert metrics.pixel_agreement(a, b) == pytest.approx(4 / 5)
    with pytest.raises(ConfigError):
        metrics.pixel_agreement(a, b[:1])


def test_cosine_similarity():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    assert metrics.cosine_similarity(a, b).tolist() == [1.0, -1.0, 0.0]
    assert metrics.mean_cosine_similarity(a[:2], b[:2]) == 0.0
    with pytest.raises(ConfigError):
        metrics.cosine_similarity(a, b[:2])
