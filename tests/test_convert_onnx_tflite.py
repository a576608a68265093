"""TFLite from ONNX: onnx2tf translates the graph, edgecv quantizes and validates as for Keras sources.

Real PyTorch-exported UltraFace models (NCHW input). The fp32 TFLite of the decoded RFB model counts the
same faces as the ONNX model on two group photos (58 on faces_group_26.jpg at score 0.7, IoU 0.3); the raw
slim model's full-integer int8 for coral-usb has uint8 I/O, passes ``targets.check`` for coral-usb and
finds every float face on faces_group_26.jpg (F1 0.98 against the float reference here).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")

import converters  # noqa: E402
import edgecv  # noqa: E402
import targets  # noqa: E402
from converters.calibration import random_crops  # noqa: E402
from converters.onnx_translate import OutputMatch, match_outputs  # noqa: E402
from edgecv.anchors import AnchorSpec  # noqa: E402
from edgecv.errors import ConversionError  # noqa: E402

PRE = {"mean": 127, "std": 128, "color": "rgb"}
DECODED = {"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none",
           "background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3, "max_detections": 200}
RAW = {"background_class": 0, "score_threshold": 0.7, "iou_threshold": 0.3,
       "box_coder": {"convention": "center_variance", "variances": [0.1, 0.2]}}




def _boxes(result):
    return np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in result.detections]).reshape(-1, 4)


# --- outputs are matched by value -----------------------------------------------------------------------------


def test_outputs_are_matched_by_value_not_name_order_or_size():
    rng = np.random.default_rng(0)
    scores, boxes = rng.random((2, 10, 2)), rng.random((2, 10, 4))
    mask = rng.random((2, 5, 6, 7))                       # NCHW in ONNX
    translated = {"output_0": boxes + 1e-7, "Identity": scores.copy(), "PartitionedCall:0": mask.transpose(0, 2, 3, 1),
                  "decoy": scores + 0.5}                   # same shape as scores, other values
    got = match_outputs({"scores": scores, "boxes": boxes, "mask": mask}, translated)
    assert got["scores"] == OutputMatch("Identity", False, 0.0)
    assert got["boxes"].name == "output_0" and not got["boxes"].to_nchw and got["boxes"].max_abs_diff < 1e-6
    assert got["mask"] == OutputMatch("PartitionedCall:0", True, 0.0)
    with pytest.raises(ConversionError, match=r"does not reproduce the ONNX output.*'scores'.*formats='onnx'"):
        match_outputs({"scores": scores}, {"decoy": scores + 0.5})


# --- the real UltraFace models ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ultraface_fp32_tflite_for_rpi4_counts_the_onnx_faces(fixtures, tmp_path, onnx2tf_tool):
    model = fixtures / "detection" / "ultraface_rfb_320.onnx"
    before = model.read_bytes()
    photos = [edgecv.read_image(fixtures / "images" / n) for n in ("faces_group_1.jpg", "faces_group_26.jpg")]
    result = converters.convert(model, task="detection", target="rpi4", precision="fp32", validation=photos[1:],
                                preprocessing=PRE, head=DECODED, labels=["face"], output_dir=tmp_path, name="uf")
    assert model.read_bytes() == before                   # onnx2tf works on a copy
    (artifact,) = result.artifacts
    assert (artifact.format, artifact.precision, artifact.io_dtype) == ("tflite", "fp32", "float32")
    (report,) = result.report.artifacts
    assert report.validated and report.metrics["detection_f1"] == 1.0
    assert report.max_abs_diff < 1e-4                      # parity of the raw outputs with the ONNX model
    assert any("onnx2tf" in n and "matched by value" in n for n in report.notes)
    with edgecv.load(artifact.path) as m:
        assert m.manifest.preprocessing.layout == "nhwc" and m.manifest.preprocessing.mean == (127.0,)
        assert m.manifest.provenance["source_kind"] == "onnx"
        assert m.manifest.provenance["converter"] == "onnx2tf + tf.lite.TFLiteConverter"
    onnx_options = dict(outputs={"boxes": "boxes", "scores": "scores"}, labels=["face"], preprocessing=PRE,
                        **DECODED)
    with edgecv.Detector(model, **onnx_options) as onnx_det, edgecv.Detector(artifact.path) as tflite_det:
        for photo in photos:
            ref, got = onnx_det.detect(photo), tflite_det.detect(photo)
            assert len(ref.detections) >= 40
            assert len(got.detections) == len(ref.detections)
            assert np.allclose(_boxes(got), _boxes(ref), atol=0.5)   # pixels
            assert all(d.label == "face" for d in got.detections)


@pytest.mark.slow
def test_ultraface_int8_for_coral_usb_has_uint8_io_and_passes_the_target_check(fixtures, tmp_path, onnx2tf_tool):
    model = fixtures / "detection" / "ultraface_slim_320_raw.onnx"
    calibration = random_crops(edgecv.read_image(fixtures / "images" / "faces_group_1.jpg"), 60, aspect=0.75)
    photo = edgecv.read_image(fixtures / "images" / "faces_group_26.jpg")
    result = converters.convert(model, task="detection", target="coral-usb", calibration=calibration,
                                validation=[photo], preprocessing=PRE, anchors=AnchorSpec.ultraface(320), head=RAW,
                                labels=["face"], output_dir=tmp_path, name="uf")
    (artifact,) = result.artifacts                        # no edgetpu_compiler here: the model it starts from
    assert (artifact.format, artifact.precision, artifact.io_dtype) == ("tflite", "int8", "uint8")
    check = targets.check(artifact.path, "coral-usb")
    assert check.ok, check.to_text()
    reference, int8 = result.report.artifacts
    assert reference.reference and reference.max_abs_diff < 1e-3
    assert int8.validated and int8.metrics["detection_recall"] >= 0.9 and int8.metrics["detection_precision"] >= 0.9
    with edgecv.Detector(artifact.path) as det:          # no arguments: the manifest says everything
        assert det.model.inputs[0].dtype == "uint8" and det.model.inputs[0].shape == (1, 240, 320, 3)
        assert len(det.detect(photo).detections) >= 40


@pytest.mark.slow
def test_nchw_output_comes_back_in_the_onnx_layout(tmp_path, onnx2tf_tool):
    """onnx2tf moves a rank-4 output's channels last; the artifact gives it back as the ONNX model does."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w"),
               numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["mask"])]
    graph = helper.make_graph(nodes, "seg", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 4, 16, 16])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "seg.onnx"))
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    result = converters.convert(tmp_path / "seg.onnx", task="segmentation", target="cpu", precision="fp32",
                                formats="tflite", validation=images, preprocessing={"mean": 127.5, "std": 127.5},
                                output_dir=tmp_path / "out")
    (report,) = result.report.artifacts
    assert report.max_abs_diff < 1e-5 and report.metrics["pixel_agreement"] == 1.0
    assert any("(NHWC -> NCHW)" in n for n in report.notes)
    with edgecv.load(result.artifacts[0].path) as m:
        assert m.manifest.preprocessing.layout == "nhwc" and m.inputs[0].shape == (1, 16, 16, 3)
        assert [o.shape for o in m.outputs] == [(1, 4, 16, 16)] and m.manifest.head.layout == "nchw"


def test_doctor_says_where_onnx2tf_is(monkeypatch, tmp_path, capsys):
    import json

    from edgecv.cli import main

    assert main(["doctor", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["onnx2tf"]
    tool = __import__("converters.onnx_translate", fromlist=["find_onnx2tf"]).find_onnx2tf()
    assert found["found"] == (tool is not None) and found["path"] == (str(tool.executable) if tool else None)
    monkeypatch.setenv("EDGECV_ONNX2TF", str(tmp_path / "nowhere"))
    assert main(["doctor"]) == 0                           # never fails: says what is wrong and what to do
    assert "onnx2tf (TFLite from ONNX): not found; EDGECV_ONNX2TF=" in capsys.readouterr().out
