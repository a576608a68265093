"""NaN, infinite, empty and degenerate boxes: what tests/test_nms.py does not already pin down.

Soft-NMS drops NaN/inf scores like hard NMS; a detector whose model emits
NaN/inf boxes and scores (a broken export, an overflow in an int8 model)
returns the finite detections and never raises.
Coordinates so large that box areas would overflow float64 are scaled exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgecv import nms, soft_nms
from edgecv.tasks import Detector

from .tiny_models import _F32, _attr_int, _graph, _model, _node, _tensor, _value_info

pytestmark = pytest.mark.device


def test_soft_nms_drops_nan_and_infinite_scores():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [70, 70, 80, 80]], np.float64)
    indices, scores = soft_nms(boxes, np.array([np.nan, 0.5, np.inf, -np.inf]), iou_threshold=0.5)
    assert indices.tolist() == [1] and scores.tolist() == [0.5]


def test_empty_and_all_degenerate_boxes_are_not_errors():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), iou_threshold=0.5).tolist() == []
    points = np.array([[5, 5, 5, 5]] * 3, np.float32)  # zero area: IoU 0, nothing suppressed
    assert nms(points, np.array([0.3, 0.9, 0.6]), iou_threshold=0.0).tolist() == [1, 2, 0]


def test_identical_boxes_with_huge_coordinates_suppress_each_other():
    boxes = np.array([[0, 0, 1e200, 1e200], [0, 0, 1e200, 1e200]])
    with np.errstate(all="ignore"):
        assert nms(boxes, np.array([0.9, 0.8]), iou_threshold=0.5).tolist() == [0]


def _constant_detector(tmp_path, boxes: np.ndarray, scores: np.ndarray) -> Detector:
    """A decoded-form ONNX detector whose outputs are the given constants (the image only feeds a * 0)."""
    n = boxes.shape[0]
    nodes = [_node("ReduceSum", ["image"], ["s"], [_attr_int("keepdims", 0)]), _node("Mul", ["s", "zero"], ["z"]),
             _node("Add", ["const_boxes", "z"], ["boxes"]), _node("Add", ["const_scores", "z"], ["scores"])]
    graph = _graph("constant_detector", nodes, [_value_info("image", _F32, [1, 3, 32, 32])],
                   [_value_info("boxes", _F32, [1, n, 4]), _value_info("scores", _F32, [1, n, 2])],
                   [_tensor("zero", np.array(0, np.float32), _F32),
                    _tensor("const_boxes", boxes[None].astype(np.float32), _F32),
                    _tensor("const_scores", scores[None].astype(np.float32), _F32)])
    path = tmp_path / "constant_detector.onnx"
    path.write_bytes(_model(graph))
    return Detector(path, form="decoded", outputs={"boxes": "boxes", "scores": "scores"}, score_threshold=0.3,
                    box_normalized=True, background_class=0, score_activation="none", box_format="xyxy",
                    preprocessing={"mean": 127.5, "std": 127.5})


def test_detector_keeps_only_finite_detections_from_a_model_emitting_nan_and_inf(tmp_path):
    nan, inf = np.nan, np.inf
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, nan, 0.6], [0.0, 0.0, inf, 1.0], [0.6, 0.6, 0.6, 0.9],
                      [0.55, 0.55, 0.95, 0.95], [0.1, 0.1, 0.5, 0.5], [0.6, 0.1, 0.9, 0.4]])
    scores = np.array([[0.1, 0.9], [0.1, 0.8], [0.0, 0.95], [0.2, 0.7], [0.1, nan], [nan, 0.85], [0.0, inf]])
    with _constant_detector(tmp_path, boxes, scores) as detector:
        result = detector.detect(np.zeros((100, 200, 3), np.uint8))
    got = [(d.score, d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in result.detections]
    # row 0 only: NaN/inf boxes dropped, the zero-width box maps to nothing, NaN/inf scores never picked,
    # row 5 (a duplicate of row 0 with score 0.85) suppressed by it
    assert got == [(pytest.approx(0.9), pytest.approx(20.0), pytest.approx(10.0), pytest.approx(100.0),
                    pytest.approx(50.0))]


def test_detector_with_nothing_finite_returns_no_detections(tmp_path):
    boxes = np.full((3, 4), np.nan)
    scores = np.full((3, 2), np.nan)
    with _constant_detector(tmp_path, boxes, scores) as detector:
        assert detector.detect(np.zeros((50, 50, 3), np.uint8)).detections == ()
