"""A real PyTorch-exported ONNX model: UltraFace RFB-320 quantized to int8 QDQ keeps the float model's faces.

Calibration: 60 random crops of faces_group_1.jpg; validation: faces_group_26.jpg (a different photo, so no
overlap). With MinMax calibration the int8 model finds 56 of the float model's 58 faces at the upstream demo's
thresholds (score 0.7, IoU 0.3): recall 0.97 against float, F1 0.97. The test requires 0.9.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")

import converters  # noqa: E402
import edgecv  # noqa: E402
from converters.calibration import random_crops  # noqa: E402
from edgecv.tasks.detector import Detector  # noqa: E402

pytestmark = pytest.mark.slow

HEAD = {"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none",
        "background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3, "max_detections": 200}




def test_ultraface_int8_onnx_keeps_the_float_faces(fixtures, tmp_path):
    model = fixtures / "detection" / "ultraface_rfb_320.onnx"
    calibration = random_crops(edgecv.read_image(fixtures / "images" / "faces_group_1.jpg"), 60, aspect=0.75)
    photo = edgecv.read_image(fixtures / "images" / "faces_group_26.jpg")
    result = converters.convert(model, task="detection", target=None, precision="int8", calibration=calibration,
                                validation=[photo], preprocessing={"mean": 127, "std": 128, "color": "rgb"},
                                head=HEAD, labels=["face"], output_dir=tmp_path, name="ultraface",
                                float_fallback=False)      # the loop's figures are in bench/convert.py
    assert [(a.format, a.precision) for a in result.artifacts] == [("onnx", "int8")]
    report = result.report
    reference, int8 = report.artifacts
    assert reference.reference and reference.path is None and reference.max_abs_diff == 0.0
    assert int8.validated, int8.notes
    assert int8.metrics["detection_recall"] >= 0.9          # 56 of 58 float faces here
    assert int8.metrics["detection_precision"] >= 0.9
    assert int8.size_bytes < reference.size_bytes / 2
    assert any("opset upgraded 9 -> 13" in n for n in int8.notes)
    debug = int8.quant_debug                                  # per-layer error and coverage of every tensor
    assert debug["layer_count"] >= 52 and debug["validation_samples"] == 1      # at least each convolution
    assert set(debug["outputs_sqnr_db"]) == {"scores", "boxes"}
    assert int8.delegate["int8_convolutions"] == "52/52" and int8.kept_float == ()
    if not int8.within_budget:                               # the miss is explained by the clipped layers
        assert debug["clipped_layers"] and any("calibration ranges do not cover" in n for n in int8.notes)

    path = result.artifacts[0].path
    with edgecv.load(path) as m:
        assert m.manifest.preprocessing.layout == "nchw" and m.manifest.preprocessing.mean == (127.0,)
        assert m.manifest.outputs == {"boxes": "boxes", "scores": "scores"}
        assert m.manifest.provenance["source_kind"] == "onnx"
    # the same agreement, counted directly from the two detectors
    with Detector(model, **_detector_options()) as float_det, Detector(path) as int8_det:
        ref = float_det.detect(photo).detections
        got = int8_det.detect(photo).detections
    assert len(ref) >= 40
    matched = sum(1 for d in ref if any(_iou(d.box, g.box) >= 0.5 for g in got))
    assert matched / len(ref) >= 0.9
    assert all(d.label == "face" for d in got)


@pytest.mark.slow
def test_ultraface_int8_for_jetson_is_symmetric_and_its_float_tail_keeps_the_faces(fixtures, tmp_path):
    """TensorRT takes zero points of 0 only; symmetric int8 then loses the small faces' boxes (a decoded box
    tensor spans the image, one step is pixels) until the loop keeps the decoding after the last convolutions
    float. The figure itself (F1 against float) is printed by bench/convert.py --part 4."""
    import targets

    model = fixtures / "detection" / "ultraface_rfb_320.onnx"
    calibration = random_crops(edgecv.read_image(fixtures / "images" / "faces_group_1.jpg"), 60, aspect=0.75)
    photo = edgecv.read_image(fixtures / "images" / "faces_group_26.jpg")
    result = converters.convert(model, task="detection", target="jetson-orin", precision="int8",
                                calibration=calibration, validation=[photo], head=HEAD, labels=["face"],
                                preprocessing={"mean": 127, "std": 128, "color": "rgb"}, output_dir=tmp_path,
                                name="ultraface")
    int8 = result.report.find("onnx", "int8")
    steps = {s["step"].split(" (")[0]: s for s in int8.fallback}
    plain, tail = steps["plain int8"], steps["post-processing tail in float"]
    assert tail["metric"] >= 0.95 and tail["metric"] > plain["metric"] + 0.2, int8.fallback
    assert tail["kept_float"] and not any(n.startswith("Conv") for n in tail["kept_float"])
    assert {"Softmax", "Exp"} <= {n.split("_")[0] for n in tail["kept_float"]}
    assert int8.metrics["detection_f1"] >= tail["metric"]
    assert int(int8.delegate["int8_convolutions"].split("/")[0]) >= 26          # most convolutions stay int8
    assert any("weights listed as graph inputs made constants" in n for n in int8.notes)
    path = result.artifacts[0].path
    assert not [p for p in targets.check(path, "jetson-orin").problems if p.code == "zero-point"]
    with edgecv.load(path) as m:
        assert m.manifest.quantization["symmetric_activations"] is True
        assert m.manifest.quantization["kept_float"] == list(int8.kept_float)


def _detector_options():
    return dict(outputs={"boxes": "boxes", "scores": "scores"}, form="decoded", box_format="xyxy",
                box_normalized=True, score_activation="none", background_class=0, score_threshold=0.7,
                iou_threshold=0.3, max_detections=200, labels=["face"],
                preprocessing={"mean": 127, "std": 128, "color": "rgb"})


def _iou(a, b):
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0
