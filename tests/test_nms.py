"""edgecv.nms (package edgecv.suppression): each documented semantic, a plain reference implementation, OpenCV and TensorFlow.

Where OpenCV / TensorFlow are compared, boxes lie on an integer grid (exact in
float32), thresholds are exact in float32 (0.25, 0.5, ...), and OpenCV gets
boxes of positive area only: it gives two empty boxes an overlap of 1 (see
``test_opencv_treats_two_empty_boxes_as_overlapping``) and does not normalise
inverted corners. Under those conditions the three agree exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgecv import nms, soft_nms
from edgecv.boxes import box_iou
from edgecv.errors import ConfigError
from edgecv.suppression import blocked, grouped, hard_nms_checked, kernels, ranking

# --------------------------------------------------------------------------- reference implementations


def _iou(b, i, j):
    x1 = [min(b[k][0], b[k][2]) for k in (i, j)]
    y1 = [min(b[k][1], b[k][3]) for k in (i, j)]
    x2 = [max(b[k][0], b[k][2]) for k in (i, j)]
    y2 = [max(b[k][1], b[k][3]) for k in (i, j)]
    ai = (x2[0] - x1[0]) * (y2[0] - y1[0])
    aj = (x2[1] - x1[1]) * (y2[1] - y1[1])
    if ai <= 0 or aj <= 0:
        return 0.0
    inter = max(min(x2) - max(x1), 0.0) * max(min(y2) - max(y1), 0.0)
    return inter / ((ai + aj) - inter)


def reference_nms(boxes, scores, t, score_threshold=None, class_ids=None, max_output=None):
    """Textbook greedy NMS with edgecv's documented semantics, one box at a time."""
    b = [[float(v) for v in row] for row in np.asarray(boxes, dtype=np.float64)]
    s = [float(v) for v in np.asarray(scores, dtype=np.float64)]
    order = [i for i in range(len(s)) if math.isfinite(s[i]) and (score_threshold is None or s[i] > score_threshold)]
    order.sort(key=lambda i: (-s[i], i))
    kept = []
    for i in order:
        if max_output is not None and len(kept) >= max_output:
            break
        if all((class_ids is not None and class_ids[k] != class_ids[i]) or _iou(b, i, k) <= t for k in kept):
            kept.append(i)
    return np.array(kept, dtype=np.int64)


def reference_soft_nms(boxes, scores, t, method, sigma, score_threshold=None, class_ids=None):
    b = [[float(v) for v in row] for row in np.asarray(boxes, dtype=np.float64)]
    cur = {i: float(v) for i, v in enumerate(np.asarray(scores, dtype=np.float64))
           if math.isfinite(v) and (score_threshold is None or v > score_threshold)}
    picked, picked_scores = [], []
    while cur:
        p = min(cur, key=lambda i: (-cur[i], i))
        picked.append(p)
        picked_scores.append(cur.pop(p))
        for i in list(cur):
            if class_ids is not None and class_ids[i] != class_ids[p]:
                continue
            iou = _iou(b, p, i)
            if method == "linear":
                cur[i] *= (1.0 - iou) if iou > t else 1.0
            else:
                cur[i] *= math.exp(-iou * iou / sigma)
            if score_threshold is not None and not cur[i] > score_threshold:
                del cur[i]
    return np.array(picked, dtype=np.int64), np.array(picked_scores)


def random_case(rng, n, grid=20, *, positive=False, classes=0):
    xy = rng.integers(0, grid, (n, 2))
    wh = rng.integers(1 if positive else 0, grid // 2 + 1, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float64)
    scores = rng.integers(0, 8, n).astype(np.float32) / 8 + rng.integers(0, 2, n) * rng.random(n).astype(np.float32)
    cls = rng.integers(0, classes, n) if classes else None
    return boxes, scores.astype(np.float32), cls


def detector_like(rng, n, per=30):
    k = max(n // per, 1)
    centre = rng.uniform(0, 1000, (k, 2))
    size = rng.uniform(20, 150, (k, 2))
    owner = rng.integers(0, k, n)
    c = centre[owner] + rng.normal(0, 0.1, (n, 2)) * size[owner]
    wh = size[owner] * np.exp(rng.normal(0, 0.15, (n, 2)))
    return np.concatenate([c - wh / 2, c + wh / 2], 1), rng.random(n).astype(np.float32)


# --------------------------------------------------------------------------- semantics, one by one


@pytest.mark.device
def test_score_threshold_keeps_strictly_greater():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], np.float64)
    scores = np.array([0.5, 0.6, 0.4], np.float32)
    assert nms(boxes, scores, iou_threshold=0.5, score_threshold=0.5).tolist() == [1]
    assert nms(boxes, scores, iou_threshold=0.5, score_threshold=0.0).tolist() == [1, 0, 2]
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == [1, 0, 2]
    # comparisons are in float64: float32(0.3) is slightly above 0.3
    assert nms(boxes[:1], np.array([0.3], np.float32), iou_threshold=0.5, score_threshold=0.3).tolist() == [0]


@pytest.mark.device
def test_iou_threshold_suppresses_strictly_greater():
    boxes = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], np.float64)     # IoU exactly 2/4 = 0.5
    scores = np.array([0.9, 0.8])
    assert box_iou(boxes[:1], boxes[1:])[0, 0] == 0.5
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == [0, 1]
    assert nms(boxes, scores, iou_threshold=0.4999).tolist() == [0]
    assert nms(boxes, scores, iou_threshold=1.0).tolist() == [0, 1]
    assert nms(boxes[[0, 0]], scores, iou_threshold=1.0).tolist() == [0, 1]   # IoU 1 is not > 1
    assert nms(boxes[[0, 0]], scores, iou_threshold=0.999).tolist() == [0]


@pytest.mark.device
def test_equal_scores_keep_the_lower_index_first():
    same = np.array([[0, 0, 10, 10]] * 4, np.float64)
    assert nms(same, np.array([0.5, 0.7, 0.7, 0.7]), iou_threshold=0.5).tolist() == [1]
    apart = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10], [20, 0, 21, 1]], np.float64)
    out = nms(apart, np.array([0.5, 0.9, 0.5, 0.9]), iou_threshold=0.5)
    assert out.tolist() == [1, 3, 0, 2] and out.dtype == np.int64


@pytest.mark.device
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.uint8, np.int64])
def test_ranking_is_stable_for_every_score_dtype(dtype):
    """Packed-key ranking (float32-exact scores) and the stable-argsort fallback give one order."""
    rng = np.random.default_rng(3)
    far = np.stack([np.arange(600) * 10.0, np.zeros(600), np.arange(600) * 10.0 + 1, np.ones(600)], 1)
    if np.dtype(dtype).kind == "f":
        scores = rng.choice(np.array([-3.5, -0.0, 0.0, 1e-30, 0.25, 0.1, 7.0, 6e4], dtype), 600)
        if dtype == np.float64:
            scores[::7] += 1e-12            # not exactly float32: the fallback ranks these
    else:
        scores = rng.integers(0, 4, 600).astype(dtype) + (dtype == np.int64) * (1 << 40)
    want = np.argsort(-scores.astype(np.float64), kind="stable")
    assert nms(far, scores, iou_threshold=0.5).tolist() == want.tolist()
    assert nms(far, scores, iou_threshold=0.5, max_output=7).tolist() == want[:7].tolist()


@pytest.mark.device
def test_zero_area_boxes_have_iou_zero():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 2, 8], [3, 3, 3, 3], [3, 3, 3, 3], [0, 5, 10, 5]], np.float64)
    scores = np.array([0.1, 0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, iou_threshold=0.0).tolist() == [1, 2, 3, 4, 0]
    assert (box_iou(boxes, boxes)[1:, :] == 0).all()


@pytest.mark.device
def test_zero_area_boxes_and_a_zero_threshold_after_a_tflite_invoke(fixtures):
    """On aarch64, tflite-runtime leaves flush-to-zero on in the thread that invoked it: subnormal doubles then
    read as 0 there, so a subnormal floor under a union divided by zero (ZeroDivisionError from nms) and
    a score threshold of 0 dropped scores of 0. The floors are normal numbers now (edgecv.floats)."""
    import edgecv
    from edgecv.floats import SMALLEST_NORMAL, just_below
    from edgecv.tasks.detection_heads import strict_threshold

    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as model:
        model.invoke()                           # same thread as the suppression below, as in Detector.detect
    points = np.array([[5, 5, 5, 5]] * 3, np.float32)
    assert nms(points, np.array([0.3, 0.9, 0.6]), iou_threshold=0.0).tolist() == [1, 2, 0]
    rng = np.random.default_rng(0)
    lines = np.repeat(rng.uniform(0, 50, (40, 2)), 2, axis=1)[:, [0, 2, 1, 3]]     # x1 == x2: zero area
    assert nms(lines, rng.random(40), iou_threshold=0.0).size == 40                  # numpy path (> kernels.FEW)
    assert 0.0 > strict_threshold(0.0) and 0.0 > just_below(0.0) == -SMALLEST_NORMAL
    assert kernels.TINY == SMALLEST_NORMAL > 0.0 and just_below(0.5) == math.nextafter(0.5, -math.inf)
    assert just_below(SMALLEST_NORMAL) == 0.0 and just_below(-1.0) == math.nextafter(-1.0, -math.inf)
    assert math.isnan(just_below(math.nan)) and just_below(-math.inf) == -math.inf


@pytest.mark.device
def test_inverted_corners_are_normalised():
    boxes = np.array([[0, 0, 10, 10], [10, 10, 0, 0], [10, 0, 0, 10], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), iou_threshold=0.5).tolist() == [0, 3]
    assert nms(boxes[[1, 3]], np.array([0.9, 0.1]), iou_threshold=0.5).tolist() == [0, 1]


@pytest.mark.device
def test_nan_and_infinite_scores_are_dropped():
    boxes = np.array([[0, 0, 10, 10]] * 4 + [[50, 50, 60, 60]], np.float64)
    scores = np.array([np.nan, np.inf, -np.inf, 0.2, np.nan])
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == [3]
    assert nms(boxes, np.full(5, np.nan), iou_threshold=0.5).tolist() == []


@pytest.mark.device
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_coordinates_raise(bad):
    boxes = np.array([[0, 0, 10, 10], [0, 0, bad, 10]])
    with pytest.raises(ConfigError, match="row 1"):
        nms(boxes, np.array([0.9, 0.1]), iou_threshold=0.5)


@pytest.mark.device
def test_empty_input_gives_empty_int64():
    out = nms(np.zeros((0, 4)), np.zeros(0), iou_threshold=0.5)
    assert out.dtype == np.int64 and out.shape == (0,)
    out = nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, score_threshold=0.5)
    assert out.dtype == np.int64 and out.shape == (0,)
    idx, dec = soft_nms(np.zeros((0, 4)), np.zeros(0), iou_threshold=0.5)
    assert idx.dtype == np.int64 and idx.shape == (0,) and dec.shape == (0,)


@pytest.mark.device
def test_max_output_caps_the_result():
    rng = np.random.default_rng(3)
    boxes, scores = detector_like(rng, 400)
    full = nms(boxes, scores, iou_threshold=0.5)
    assert full.size > 10
    for cap in (0, 1, 7, full.size, full.size + 5):
        assert nms(boxes, scores, iou_threshold=0.5, max_output=cap).tolist() == full[:cap].tolist()


@pytest.mark.device
def test_max_output_beyond_the_ranked_prefix():
    # with max_output only a prefix of the ranking is sorted first; here it runs out and the rest is ranked
    n = 3000
    boxes = np.tile([0.0, 0.0, 10.0, 10.0], (n, 1))
    boxes[-5:] = [[100.0 * k, 100.0, 100.0 * k + 10, 110.0] for k in range(1, 6)]
    scores = np.linspace(1.0, 0.5, n)
    assert nms(boxes, scores, iou_threshold=0.5, max_output=6).tolist() == [0] + list(range(n - 5, n))
    rng = np.random.default_rng(4)
    boxes, scores = detector_like(rng, 5000, per=200)
    for cap in (1, 20, 100):
        assert nms(boxes, scores, iou_threshold=0.5, max_output=cap).tolist() == \
            reference_nms(boxes, scores, 0.5, max_output=cap).tolist()


@pytest.mark.device
def test_first_prefix_hint_never_changes_the_result():
    """The Detector passes the depth of the previous frame's k-th box as NMS's first prefix: any
    value, far too shallow (the prefix keeps fewer than k and the next ones follow) or deeper than
    every candidate, gives the default's result."""
    rng = np.random.default_rng(12)
    boxes, scores = detector_like(rng, 3000, per=60)
    cls = rng.integers(0, 5, boxes.shape[0])
    checked = np.ascontiguousarray(boxes, dtype=np.float64)
    wide = scores.astype(np.float64)
    for cap, classes in ((10, None), (100, cls), (400, cls)):
        want = reference_nms(boxes, scores, 0.5, class_ids=classes, max_output=cap)
        for horizon in (None, 1, cap // 2, cap + 3, 5 * cap, 10 ** 6):
            got = hard_nms_checked(checked, wide, iou_threshold=0.5, max_output=cap, class_ids=classes, horizon=horizon)
            assert got.tolist() == want.tolist(), (cap, horizon)


@pytest.mark.device
def test_class_aware_never_crosses_classes():
    boxes = np.array([[0, 0, 10, 10]] * 4, np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=[0, 1, 0, 2]).tolist() == [0, 1, 3]
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=np.array([3.0, 3.0, 5.0, 5.0])).tolist() == [0, 2]
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=[-(2 ** 40), 2 ** 40, 0, 0]).tolist() == [0, 1, 2]
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=[0, 0, 0, 0]).tolist() == [0]


@pytest.mark.device
def test_class_aware_is_exact_at_large_coordinates():
    # IoU 0.6 (0.75 / 1.25) near x = 1e7: float32 cannot tell the boxes apart (IoU would read 1)
    base = 1.0e7
    boxes = np.array([[base, 0, base + 1, 1], [base + 0.25, 0, base + 1.25, 1],
                      [base, 0, base + 1, 1], [base + 0.25, 0, base + 1.25, 1]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, iou_threshold=0.7, class_ids=[0, 0, 1, 1]).tolist() == [0, 1, 2, 3]
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=[0, 0, 1, 1]).tolist() == [0, 2]
    # random fine-grained layouts far from the origin, many classes, against the reference
    rng = np.random.default_rng(11)
    for offset in (1e6, 1e9, 1e12):
        b, s, c = random_case(rng, 300, grid=40, classes=5)
        b = offset + b / 8.0
        expected = reference_nms(b, s, 0.5, class_ids=c)
        assert nms(b, s, iou_threshold=0.5, class_ids=c).tolist() == expected.tolist()


@pytest.mark.device
@pytest.mark.parametrize("call, match", [
    (lambda: nms(np.zeros((3, 5)), np.zeros(3), iou_threshold=0.5), r"shape \(N, 4\)"),
    (lambda: nms(np.zeros(4), np.zeros(1), iou_threshold=0.5), r"shape \(N, 4\)"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(2), iou_threshold=0.5), r"one per box"),
    (lambda: nms(np.zeros((3, 4)), np.zeros((3, 1)), iou_threshold=0.5), r"one per box"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=-0.1), r"iou_threshold must be \[0, 1\]"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=1.5), r"iou_threshold must be \[0, 1\]"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=float("nan")), r"iou_threshold"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=None), r"required"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, score_threshold=-0.1), r"pass None"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, method="gausian"), r"did you mean 'gaussian'"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, sigma=0.0), r"sigma must be"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, sigma=-1.0), r"sigma must be"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, max_output=-1), r"max_output"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, max_output=2.5), r"max_output"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, class_ids=[0, 1]), r"class_ids must have"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, class_ids=[0.5, 1, 2]), r"whole numbers"),
    (lambda: nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, class_ids=["a", "b", "c"]), r"integers"),
    (lambda: nms(np.zeros((3, 4)), np.array(["a", "b", "c"]), iou_threshold=0.5), r"real numeric"),
    (lambda: soft_nms(np.zeros((3, 4)), np.zeros(3), iou_threshold=0.5, method="hard"), r"edgecv.nms"),
])
def test_bad_arguments_raise_config_error(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


# --------------------------------------------------------------------------- Soft-NMS

@pytest.mark.device
def test_soft_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]], np.float64)   # IoU(0, 1) = 1/3
    scores = np.array([0.9, 0.8, 0.7])
    idx, dec = soft_nms(boxes, scores, iou_threshold=0.3, method="gaussian", sigma=0.5)
    assert idx.tolist() == [0, 2, 1]
    np.testing.assert_allclose(dec, [0.9, 0.7, 0.8 * math.exp(-(1 / 9) / 0.5)], rtol=1e-15)
    idx, dec = soft_nms(boxes, scores, iou_threshold=0.3, method="linear")
    assert idx.tolist() == [0, 2, 1]
    np.testing.assert_allclose(dec, [0.9, 0.7, 0.8 * (2 / 3)], rtol=1e-15)
    idx, dec = soft_nms(boxes, scores, iou_threshold=0.5, method="linear")     # 1/3 is not > 0.5: no decay
    assert idx.tolist() == [0, 1, 2] and dec.tolist() == [0.9, 0.8, 0.7]
    idx, _ = soft_nms(boxes, scores, iou_threshold=0.3, method="gaussian", sigma=0.5, score_threshold=0.65)
    assert idx.tolist() == [0, 2]                                  # 0.8 * e^(-2/9) = 0.64 drops out
    idx, dec = soft_nms(boxes, scores, iou_threshold=0.3, class_ids=[0, 1, 0])
    assert idx.tolist() == [0, 1, 2] and dec.tolist() == [0.9, 0.8, 0.7]
    assert nms(boxes, scores, iou_threshold=0.3, method="gaussian").tolist() == [0, 2, 1]
    assert soft_nms(boxes, scores, iou_threshold=0.3, max_output=2)[0].tolist() == [0, 2]


@pytest.mark.device
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_reference(method):
    rng = np.random.default_rng(5)
    for case in range(60):
        boxes, scores, cls = random_case(rng, int(rng.integers(0, 40)), classes=3 if case % 2 else 0)
        st = None if case % 3 else 0.2
        idx, dec = soft_nms(boxes, scores, iou_threshold=0.3, method=method, sigma=0.4,
                            score_threshold=st, class_ids=cls)
        ref_idx, ref_dec = reference_soft_nms(boxes, scores, 0.3, method, 0.4, st, cls)
        assert idx.tolist() == ref_idx.tolist()
        np.testing.assert_allclose(dec, ref_dec, rtol=1e-12)


# --------------------------------------------------------------------------- against the reference

@pytest.mark.device
def test_matches_reference_on_random_grids():
    rng = np.random.default_rng(7)
    for case in range(400):
        n = int(rng.integers(0, 120))
        boxes, scores, cls = random_case(rng, n, grid=int(rng.choice([6, 20, 60])), classes=3 if case % 2 else 0)
        if case % 4 == 0:
            boxes = boxes[:, [2, 3, 0, 1]]                    # inverted corners
        t = float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]))
        st = None if case % 3 else 0.25
        cap = None if case % 5 else int(rng.integers(0, 12))
        got = nms(boxes, scores, iou_threshold=t, score_threshold=st, class_ids=cls, max_output=cap)
        assert got.tolist() == reference_nms(boxes, scores, t, st, cls, cap).tolist(), case


@pytest.mark.device
@pytest.mark.parametrize("per", [1, 5, 30, 150])
def test_matches_reference_on_detector_like_scenes(per):
    rng = np.random.default_rng(per)
    boxes, scores = detector_like(rng, 800, per=per)
    cls = rng.integers(0, 4, boxes.shape[0])
    for t in (0.3, 0.5, 0.8):
        assert nms(boxes, scores, iou_threshold=t).tolist() == reference_nms(boxes, scores, t).tolist()
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=cls).tolist() == \
        reference_nms(boxes, scores, 0.5, class_ids=cls).tolist()


@pytest.mark.device
def test_long_suppression_chain():
    # box k overlaps box k+1 with IoU 0.6; falling scores: greedy keeps every other box
    n = 3000
    x = np.arange(n) * 0.25
    boxes = np.stack([x, np.zeros(n), x + 1.0, np.ones(n)], 1)
    scores = np.linspace(1.0, 0.1, n)
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == list(range(0, n, 2))
    # rising scores: the chain resolves from the other end
    assert nms(boxes, scores[::-1], iou_threshold=0.5).tolist() == list(range(n - 1, -1, -2))


@pytest.mark.device
@pytest.mark.parametrize("dense_pairs", [0, 1 << 15])
def test_every_code_path_matches_reference(monkeypatch, dense_pairs):
    """Tiny budgets force chunked pair searches, window-resolved blocks and the sequential fallback; with
    dense pairs allowed, rounds that leave ``alive`` stale alternate with rounds that bring it up to date."""
    monkeypatch.setattr(grouped, "greedy_grouped", lambda *args: None)   # the blocked path for every scene
    monkeypatch.setattr(blocked, "PAIR_BUDGET", 40)
    monkeypatch.setattr(blocked, "DENSE_PAIRS", dense_pairs)
    monkeypatch.setattr(blocked, "FIXED_POINT_ROUNDS", 1)
    rng = np.random.default_rng(9)
    for case in range(25):
        boxes, scores = detector_like(rng, 500, per=int(rng.choice([1, 3, 20, 100])))
        cls = rng.integers(0, 3, 500) if case % 2 else None
        t = float(rng.choice([0.0, 0.3, 0.5]))
        assert nms(boxes, scores, iou_threshold=t, class_ids=cls).tolist() == \
            reference_nms(boxes, scores, t, class_ids=cls).tolist(), case


@pytest.mark.device
@pytest.mark.parametrize("rounds", [0, 1, 12])
def test_growing_blocks_match_reference(monkeypatch, rounds):
    """Sparse scenes grow window-resolved blocks; 0 rounds sends each one to the sequential sweep."""
    calls = {"window": 0, "sequential": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(grouped, "greedy_grouped", lambda *args: None)
    monkeypatch.setattr(blocked, "FIXED_POINT_ROUNDS", rounds)
    monkeypatch.setattr(blocked, "_window_round", counting("window", blocked._window_round))
    monkeypatch.setattr(blocked, "_resolve_sequential", counting("sequential", blocked._resolve_sequential))
    rng = np.random.default_rng(33)
    for case in range(12):
        boxes, scores = detector_like(rng, 800, per=1)
        if case % 4 == 3:                        # ties and zero-area boxes
            scores = np.round(scores, 1)
            flat = rng.random(800) < 0.05
            boxes[flat, 3] = boxes[flat, 1]
        cls = rng.integers(0, 3, 800) if case % 2 else None
        t = float(rng.choice([0.3, 0.5, 0.7]))
        limit = None if case % 3 else int(rng.integers(100, 600))
        assert nms(boxes, scores, iou_threshold=t, class_ids=cls, max_output=limit).tolist() == \
            reference_nms(boxes, scores, t, class_ids=cls, max_output=limit).tolist(), case
    assert calls["window"] > 0
    assert calls["sequential"] > 0 or rounds > 0


@pytest.mark.device
@pytest.mark.parametrize("block, dense_pairs", [(5, 1 << 15), (7, 0), (200, 1 << 15)])
def test_dense_block_rounds_match_reference(monkeypatch, block, dense_pairs):
    """Small dense blocks force many rounds (and the carried undecided set); a large one, a single block."""
    monkeypatch.setattr(grouped, "greedy_grouped", lambda *args: None)
    monkeypatch.setattr(kernels, "DENSE_BLOCK", block)
    monkeypatch.setattr(blocked, "DENSE_PAIRS", dense_pairs)
    rng = np.random.default_rng(21)
    for case in range(20):
        boxes, scores = detector_like(rng, int(rng.integers(1, 300)), per=int(rng.choice([1, 5, 40])))
        cls = rng.integers(0, 4, len(scores)) if case % 2 else None
        t = float(rng.choice([0.0, 0.3, 0.6]))
        limit = None if case % 3 else int(rng.integers(1, 30))
        assert nms(boxes, scores, iou_threshold=t, class_ids=cls, max_output=limit).tolist() == \
            reference_nms(boxes, scores, t, class_ids=cls, max_output=limit).tolist(), case


def _grouped_scene(rng, n):
    """Detector-like boxes with zero-area, duplicated and far-away boxes mixed in, at a random scale."""
    boxes, scores = detector_like(rng, n, per=int(rng.choice([3, 30, 120])))
    pick = rng.random(n)
    boxes[pick < 0.03, 2] = boxes[pick < 0.03, 0]                      # zero width
    dup = np.flatnonzero((pick > 0.03) & (pick < 0.08))
    boxes[dup] = boxes[rng.integers(0, n, dup.size)]                    # exact duplicates
    scores[pick > 0.95] = scores[0]                                     # ties
    scale, shift = float(rng.choice([1e-3, 1.0, 1e4])), float(rng.choice([0.0, 1e6]))
    return boxes * scale + shift, scores


@pytest.mark.device
@pytest.mark.parametrize("rounds", [8, 1])
def test_grouped_rounds_match_reference_and_blocked_path(monkeypatch, rounds):
    """Scenes that split into independent groups take the leader rounds (checked); one round hands the rest over."""
    monkeypatch.setattr(grouped, "GROUP_ROUNDS", rounds)
    used = []
    original = grouped.greedy_grouped

    def spy(*args):
        kept = original(*args)
        used.append(kept is not None)
        return kept
    monkeypatch.setattr(grouped, "greedy_grouped", spy)
    rng = np.random.default_rng(31 + rounds)
    for case in range(24):
        n = int(rng.integers(kernels.DENSE_BLOCK + 1, 500))
        boxes, scores = _grouped_scene(rng, n)
        cls = None
        if case % 4 == 1:
            cls = rng.integers(-2, 5, n)
        elif case % 4 == 3:                                             # the int32 extremes as class ids
            cls = rng.choice(np.array([-2 ** 31, 7, 2 ** 31 - 1]), n)
        t = float(rng.choice([0.0, 0.2, 0.5, 0.8]))
        limit = None if case % 3 else int(rng.integers(1, 60))
        want = reference_nms(boxes, scores, t, class_ids=cls, max_output=limit).tolist()
        assert nms(boxes, scores, iou_threshold=t, class_ids=cls, max_output=limit).tolist() == want, case
        with monkeypatch.context() as m:
            m.setattr(grouped, "greedy_grouped", lambda *args: None)
            assert nms(boxes, scores, iou_threshold=t, class_ids=cls, max_output=limit).tolist() == want, case
    assert sum(used) >= len(used) // 2          # most scenes split (the others fell back to the blocked path)


@pytest.mark.device
def test_grouped_rounds_with_every_top_k_give_the_first_k_boxes(monkeypatch):
    """Top-k rounds drop the undecided boxes ranked after the k-th box kept so far: for every k, the
    result is the first k of the full greedy result (checked on scenes where that drop happened)."""
    dropped = []
    original = grouped.greedy_grouped

    def spy(rows, cls, t, limit=None):
        kept = original(rows, cls, t, limit)
        if kept is not None and limit is not None:
            full = original(rows, cls, t)
            dropped.append(full.size > limit and not np.isin(full[limit:], kept).all())
        return kept
    monkeypatch.setattr(grouped, "greedy_grouped", spy)
    rng = np.random.default_rng(77)
    for case in range(6):
        boxes, scores = _grouped_scene(rng, int(rng.integers(150, 400)))
        cls = rng.integers(0, 3, boxes.shape[0]) if case % 2 else None
        full = reference_nms(boxes, scores, 0.5, class_ids=cls).tolist()
        for k in range(1, len(full) + 1):
            assert nms(boxes, scores, iou_threshold=0.5, class_ids=cls, max_output=k).tolist() == full[:k], (case, k)
    assert sum(dropped) > len(dropped) // 2


@pytest.mark.device
def test_group_split_keeps_touching_intervals_together():
    """Intervals that touch or overlap share a group, a gap splits, seeds (classes) never share one; a key
    that could not keep two seeds apart after its low bits hold positions declines."""
    split = grouped.split_groups
    lo, hi = np.array([0.0, 1.0, 3.0, 2.5]), np.array([1.0, 2.0, 4.0, 2.9])
    members, group = split(lo, hi, None, np.zeros(1))
    assert members.tolist() == [0, 1, 3, 2] and group.tolist() == [1, 1, 2, 3]
    members, group = split(lo, hi, np.array([3, 1, 0]), np.array([4.0, 9.0, 9.0]))
    assert members.tolist() == [3, 0, 1] and group.tolist() == [1, 2, 2]
    # one spot, two seeds: two groups whatever the coordinates
    same = np.full(6, 1e6)
    members, group = split(same, same + 1e-3, None, np.array([-2.0 ** 31, 2.0 ** 31 - 1] * 3))
    assert group.tolist() == [1, 1, 1, 2, 2, 2] and sorted(members[:3].tolist()) == [0, 2, 4]
    big = np.arange(1 << 15, dtype=np.float64)
    assert split(big, big + 0.5, None, np.where(big < 5, -2.0 ** 31, 2.0 ** 31 - 1)) is None


@pytest.mark.device
def test_grouped_path_declines_one_connected_scene():
    """Uniformly spread overlapping boxes form one group: the blocked path runs instead (and agrees)."""
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 300, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 40, (400, 2))], 1)
    scores = rng.random(400)
    order = np.argsort(-scores, kind="stable")
    rows = ranking.ranked_rows(boxes, order)
    assert grouped.greedy_grouped(rows, None, 0.5) is None
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == reference_nms(boxes, scores, 0.5).tolist()


@pytest.mark.device
def test_grouped_path_keeps_classes_apart_inside_one_place():
    """Two classes stacked on the same spot: each class keeps its own best box, whatever the grouping."""
    base = np.array([[10.0, 10.0, 50.0, 50.0]])
    boxes = np.repeat(base, 200, axis=0) + np.linspace(0, 1, 200)[:, None]
    scores = np.linspace(1, 0.5, 200)
    cls = np.arange(200) % 2
    assert nms(boxes, scores, iou_threshold=0.5, class_ids=cls).tolist() == [0, 1]


@pytest.mark.device
def test_few_candidates_python_path_is_bit_identical_to_numpy(monkeypatch):
    """Up to _FEW candidates run greedy NMS on Python floats: same decisions as the numpy kernel, pair for pair.

    Random real-valued boxes (IoU lands anywhere, including within rounding of t), inverted and zero-area
    boxes, tied scores, classes, max_output, tiny and huge coordinates (beyond 2**500 the Python path
    hands over to the numpy path, which rescales).
    """
    rng = np.random.default_rng(33)
    cases = []
    for case in range(600):
        n = int(rng.integers(1, kernels.FEW + 1))
        if case % 4 == 0:
            boxes, scores, cls = random_case(rng, n, grid=int(rng.choice([4, 12])), classes=int(rng.choice([0, 3])))
        else:
            boxes, scores = detector_like(rng, n, per=int(rng.choice([1, 4, 12])))
            cls = rng.integers(0, 2, n) if case % 3 == 0 else None
            if case % 5 == 0:
                boxes[:, [0, 2]] = boxes[:, [2, 0]]                      # inverted corners
            if case % 7 == 0:
                boxes = boxes * float(rng.choice([1e-160, 2.0 ** 499, 2.0 ** 520, 1e300]))
        t = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0, float(rng.random())]))
        limit = None if case % 3 else int(rng.integers(0, 6))
        cases.append((boxes, scores, cls, t, limit))
    few = [nms(b, s, iou_threshold=t, class_ids=c, max_output=lim) for b, s, c, t, lim in cases]
    monkeypatch.setattr(kernels, "FEW", 0)
    for case, ((b, s, c, t, lim), got) in enumerate(zip(cases, few)):
        want = nms(b, s, iou_threshold=t, class_ids=c, max_output=lim)
        assert got.dtype == want.dtype == np.int64
        assert got.tolist() == want.tolist(), case
        if case % 4 == 0:
            assert got.tolist() == reference_nms(b, s, t, class_ids=c, max_output=lim).tolist(), case


# --------------------------------------------------------------------------- OpenCV

def _xywh(boxes):
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


@pytest.mark.device
def test_matches_opencv_nmsboxes():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(13)
    for case in range(300):
        boxes, scores, _ = random_case(rng, int(rng.integers(1, 150)), grid=int(rng.choice([8, 30])), positive=True)
        t = float(rng.choice([0.0, 0.25, 0.5, 0.75]))
        st = float(rng.choice([0.0, 0.25, 0.5]))
        expected = np.asarray(cv2.dnn.NMSBoxes(_xywh(boxes), scores, st, t), dtype=np.int64).reshape(-1)
        assert nms(boxes, scores, iou_threshold=t, score_threshold=st).tolist() == expected.tolist(), case


@pytest.mark.device
def test_matches_opencv_nmsboxes_batched():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(17)
    for case in range(200):
        boxes, scores, cls = random_case(rng, int(rng.integers(1, 150)), positive=True, classes=4)
        t = float(rng.choice([0.25, 0.5]))
        expected = np.asarray(cv2.dnn.NMSBoxesBatched(_xywh(boxes), scores, cls.astype(np.int32), 0.0, t),
                              dtype=np.int64).reshape(-1)
        assert nms(boxes, scores, iou_threshold=t, score_threshold=0.0, class_ids=cls).tolist() == \
            expected.tolist(), case


@pytest.mark.device
def test_opencv_treats_two_empty_boxes_as_overlapping():
    """The documented disagreement: OpenCV's overlap of two zero-area rects is 1, edgecv's IoU is 0."""
    cv2 = pytest.importorskip("cv2")
    boxes = np.array([[1, 1, 1, 1], [5, 5, 5, 5]], np.float64)
    scores = np.array([0.9, 0.8], np.float32)
    assert np.asarray(cv2.dnn.NMSBoxes(_xywh(boxes), scores, 0.0, 0.5)).reshape(-1).tolist() == [0]
    assert nms(boxes, scores, iou_threshold=0.5, score_threshold=0.0).tolist() == [0, 1]


@pytest.mark.device
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_opencv(method):
    cv2 = pytest.importorskip("cv2")
    flag = cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_LINEAR if method == "linear" else cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_GAUSSIAN
    rng = np.random.default_rng(19)
    for case in range(100):
        n = int(rng.integers(1, 40))
        boxes, _, _ = random_case(rng, n, positive=True)
        scores = rng.uniform(0.05, 1.0, n).astype(np.float32)          # continuous: no exact ties
        rects = _xywh(boxes).astype(np.int32)
        cv_scores, cv_idx = cv2.dnn.softNMSBoxes(rects, scores, 0.1, 0.25, sigma=0.5, method=flag)
        idx, dec = soft_nms(boxes, scores, iou_threshold=0.25, method=method, sigma=0.5, score_threshold=0.1)
        assert idx.tolist() == np.asarray(cv_idx).reshape(-1).tolist(), case
        np.testing.assert_allclose(dec, np.asarray(cv_scores).reshape(-1), rtol=2e-6)


# --------------------------------------------------------------------------- TensorFlow (full environment)

def test_matches_tensorflow_non_max_suppression():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(23)
    for case in range(150):
        n = int(rng.integers(1, 100))
        boxes, scores, _ = random_case(rng, n, grid=int(rng.choice([8, 30])))       # degenerate boxes included
        if case % 3 == 0:
            boxes = boxes[:, [2, 3, 0, 1]]                                         # inverted corners
        t = float(rng.choice([0.0, 0.25, 0.5, 0.75]))
        st = None if case % 2 else 0.25
        cap = n if case % 4 else int(rng.integers(0, 6))
        yx = boxes[:, [1, 0, 3, 2]].astype(np.float32)
        expected = tf.image.non_max_suppression(yx, scores, cap, iou_threshold=t,
                                                score_threshold=-np.inf if st is None else st).numpy()
        got = nms(boxes, scores, iou_threshold=t, score_threshold=st, max_output=cap)
        assert got.tolist() == expected.tolist(), case


def test_gaussian_soft_nms_matches_tensorflow_with_half_sigma():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(29)
    for case in range(60):
        n = int(rng.integers(1, 40))
        boxes, _, _ = random_case(rng, n)
        scores = rng.uniform(0.05, 1.0, n).astype(np.float32)
        yx = boxes[:, [1, 0, 3, 2]].astype(np.float32)
        tf_idx, tf_scores = tf.image.non_max_suppression_with_scores(
            yx, scores, n, iou_threshold=1.0, score_threshold=0.1, soft_nms_sigma=0.25)
        idx, dec = soft_nms(boxes, scores, iou_threshold=0.5, method="gaussian", sigma=0.5, score_threshold=0.1)
        assert idx.tolist() == tf_idx.numpy().tolist(), case
        np.testing.assert_allclose(dec, tf_scores.numpy(), rtol=2e-6)


# --------------------------------------------------------------------------- property tests (hypothesis)

def _hypothesis():
    return pytest.importorskip("hypothesis")


def test_property_matches_reference():
    hypothesis = _hypothesis()
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    @hypothesis.settings(max_examples=2500, deadline=None, derandomize=True)
    @hypothesis.given(data=st.data())
    def check(data):
        n = data.draw(st.integers(0, 40))
        boxes = data.draw(hnp.arrays(np.int64, (n, 4), elements=st.integers(0, 12))).astype(np.float64)
        scores = data.draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from(
            [0.0, 0.125, 0.25, 0.5, 0.75, 1.0, float("nan"), float("inf")])))
        cls = data.draw(st.one_of(st.none(), hnp.arrays(np.int64, (n,), elements=st.integers(0, 2))))
        t = data.draw(st.sampled_from([0.0, 0.2, 0.25, 0.5, 0.75, 1.0]))
        score_threshold = data.draw(st.sampled_from([None, 0.0, 0.25, 0.5]))
        cap = data.draw(st.one_of(st.none(), st.integers(0, 10)))
        got = nms(boxes, scores, iou_threshold=t, score_threshold=score_threshold, class_ids=cls, max_output=cap)
        assert got.tolist() == reference_nms(boxes, scores, t, score_threshold, cls, cap).tolist()
        # the characterisation of greedy NMS without a cap: kept boxes never conflict, dropped ones always do
        if cap is None and n:
            kept = set(got.tolist())
            iou = box_iou(boxes, boxes)
            same = np.ones((n, n), bool) if cls is None else cls[:, None] == cls[None, :]
            for i in kept:
                assert not any(iou[i, k] > t and same[i, k] for k in kept if k != i)

    check()


def test_property_matches_opencv():
    hypothesis = _hypothesis()
    cv2 = pytest.importorskip("cv2")
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    @hypothesis.settings(max_examples=1000, deadline=None, derandomize=True)
    @hypothesis.given(data=st.data())
    def check(data):
        n = data.draw(st.integers(1, 40))
        xy = data.draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 12)))
        wh = data.draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(1, 8)))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float64)
        scores = data.draw(hnp.arrays(np.float32, (n,), elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])))
        cls = data.draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, 2)))
        t = data.draw(st.sampled_from([0.0, 0.25, 0.5, 0.75]))
        expected = np.asarray(cv2.dnn.NMSBoxes(_xywh(boxes), scores, 0.0, t)).reshape(-1)
        assert nms(boxes, scores, iou_threshold=t, score_threshold=0.0).tolist() == expected.tolist()
        batched = np.asarray(cv2.dnn.NMSBoxesBatched(_xywh(boxes), scores, cls, 0.0, t)).reshape(-1)
        assert nms(boxes, scores, iou_threshold=t, score_threshold=0.0, class_ids=cls).tolist() == batched.tolist()

    check()


# --------------------------------------------------------------------------- SSD candidate selection

@pytest.mark.device
def test_box_index_shares_one_box_per_anchor():
    """Class-aware SSD candidates by (anchor, class) give what gathering a box per candidate gives."""
    from edgecv.suppression import scores_above

    rng = np.random.default_rng(5)
    anchors, _ = detector_like(rng, 400, per=20)
    logits = rng.random((400, 6)).astype(np.float32)
    for threshold, cap in ((0.5, None), (0.2, 30), (0.9, 5)):
        rows, cols, values = scores_above(logits, threshold, background=0)
        shared = nms(anchors, values, iou_threshold=0.45, class_ids=cols, box_index=rows, max_output=cap)
        copied = nms(anchors[rows], values, iou_threshold=0.45, class_ids=cols, max_output=cap)
        assert shared.tolist() == copied.tolist() and shared.size
        kept, decayed = soft_nms(anchors, values, iou_threshold=0.45, class_ids=cols, box_index=rows, max_output=cap)
        kept2, decayed2 = soft_nms(anchors[rows], values, iou_threshold=0.45, class_ids=cols, max_output=cap)
        assert kept.tolist() == kept2.tolist() and np.array_equal(decayed, decayed2)
    with pytest.raises(ConfigError, match="box_index holds rows outside"):
        nms(anchors, values, iou_threshold=0.5, box_index=np.full(values.size, 400))
    with pytest.raises(ConfigError, match="box_index must be a 1-D integer"):
        nms(anchors, values, iou_threshold=0.5, box_index=rows.astype(float))
    with pytest.raises(ConfigError, match="scores must have shape"):
        nms(anchors, values[:-1], iou_threshold=0.5, box_index=rows)


@pytest.mark.device
def test_scores_above_selects_every_class_without_a_loop():
    from edgecv.suppression import scores_above

    scores = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, np.nan], [0.5, 0.5, 0.8]], np.float32)
    rows, cols, values = scores_above(scores, 0.5)
    assert rows.tolist() == [0, 0, 1, 2] and cols.tolist() == [0, 2, 1, 2]
    np.testing.assert_array_equal(values, np.float32([0.9, 0.7, 0.6, 0.8]))
    rows, cols, values = scores_above(scores, 0.5, background=0)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [2, 1, 2]
    rows, cols, values = scores_above(scores, 0.5, background=2)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    rows, cols, _ = scores_above(scores, 0.5, background=1)
    assert rows.tolist() == [0, 0, 2] and cols.tolist() == [0, 2, 2]
    # every background column against a plain filter of the full selection
    rng = np.random.default_rng(0)
    many = rng.random((300, 7)).astype(np.float32)
    r_all, c_all, v_all = scores_above(many, 0.4)
    for bg in range(7):
        keep = c_all != bg
        r, c, v = scores_above(many, 0.4, background=bg)
        assert r.tolist() == r_all[keep].tolist() and c.tolist() == c_all[keep].tolist()
        np.testing.assert_array_equal(v, v_all[keep])
    # compared in float64: float32(0.3) is slightly above 0.3
    assert scores_above(np.float32([[0.3]]), 0.3)[0].tolist() == [0]
    with pytest.raises(ConfigError, match=r"\(N, C\)"):
        scores_above(scores[None], 0.5)
    with pytest.raises(ConfigError, match="background"):
        scores_above(scores, 0.5, background=3)


@pytest.mark.parametrize("dtype, scale, zero", [("uint8", 1 / 256, 0), ("uint8", 0.0235, 131), ("int8", 0.05, -7),
                                                ("int16", 3e-4, 12), ("uint16", 1e-5, 0)])
def test_scores_above_on_stored_integers_equals_the_float_path(dtype, scale, zero):
    """Thresholding the stored integers selects exactly what thresholding the dequantized floats does."""
    from edgecv.suppression import dequantize, quantized_threshold, scores_above

    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    stored = rng.integers(info.min, int(info.max) + 1, size=(400, 9)).astype(dtype)
    real = dequantize(stored, (scale, zero))
    # the float path as edgecv.Model dequantizes: float32(q - zero) * float32(scale)
    np.testing.assert_array_equal(real, (stored.astype(np.float32) - np.float32(zero)) * np.float32(scale))
    levels = np.unique(real)
    # thresholds exactly at stored levels (the strict '>' matters), between them, and outside the range
    thresholds = [float(levels[0]) - 1, float(levels[0]), float(levels[len(levels) // 2]),
                  float(levels[len(levels) // 2]) + 1e-9, float(np.nextafter(levels[-2], np.float32(-np.inf))),
                  float(levels[-1]), float(levels[-1]) + 1.0]
    for threshold in thresholds:
        for background in (None, 0, 4, 8):
            want = scores_above(real, threshold, background=background)
            got = scores_above(stored, threshold, background=background, quantization=(scale, zero))
            assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist(), threshold
            assert got[2].dtype == np.float32
            np.testing.assert_array_equal(got[2], want[2])
        first = quantized_threshold(dtype, threshold, (scale, zero))
        above = real > np.float64(threshold)
        if first is None:
            assert not above.any()
        else:
            assert np.array_equal(stored >= first, above)


def test_quantized_threshold_takes_tflite_and_quant_params_forms():
    from edgecv.specs import QuantParams
    from edgecv.suppression import quantized_threshold, scores_above

    assert quantized_threshold("uint8", 0.5, (1 / 256, 0)) == 129          # 128/256 == 0.5 is not > 0.5
    assert quantized_threshold("uint8", 0.5, QuantParams((1 / 256,), (0,))) == 129
    assert quantized_threshold("uint8", -1.0, (1 / 256, 0)) == 0
    assert quantized_threshold("uint8", 1.0, (1 / 256, 0)) is None
    assert quantized_threshold("int8", 0.0, (0.1, -128)) == -127
    empty = scores_above(np.full((3, 2), 255, np.uint8), 1.0, quantization=(1 / 256, 0))
    assert [a.size for a in empty] == [0, 0, 0] and empty[0].dtype == np.int64
    for bad, words in [((0.0, 0), "scale"), ((math.nan, 0), "scale"), ((-1.0, 0), "scale"), ((0.1, 0.5), "zero_point"), ((0.1, math.nan), "zero_point"),
                       ((0.1, math.inf), "zero_point"),
                       (0.1, r"\(scale, zero_point\)"), (QuantParams((0.1, 0.2), (0, 0), axis=1), "per-axis")]:
        with pytest.raises(ConfigError, match=words):
            quantized_threshold("uint8", 0.5, bad)
    with pytest.raises(ConfigError, match="8- or 16-bit"):
        quantized_threshold("int32", 0.5, (0.1, 0))
    with pytest.raises(ConfigError, match="8- or 16-bit"):
        scores_above(np.zeros((2, 2), np.float32), 0.5, quantization=(0.1, 0))


def test_nms_from_several_threads_at_once_matches_the_reference():
    """The dense kernel's work matrices are per thread: concurrent calls never see each other's."""
    import threading

    rng = np.random.default_rng(11)
    cases = []
    for n in (30, 48, 120, 400):
        centres = rng.uniform(0, 200, (n, 2))
        sizes = rng.uniform(5, 60, (n, 2))
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
        cases.append((boxes, rng.random(n), rng.integers(0, 3, n)))
    want = [reference_nms(b, s, 0.4, class_ids=c).tolist() for b, s, c in cases]
    failures: list = []
    done: list = []

    def hammer(k: int) -> None:
        for i in range(60):
            b, s, c = cases[(i + k) % len(cases)]
            got = nms(b, s, iou_threshold=0.4, class_ids=c).tolist()
            if got != want[(i + k) % len(cases)]:
                failures.append((k, i))
        done.append(k)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures and sorted(done) == [0, 1, 2, 3]
