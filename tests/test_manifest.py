"""Manifest and preprocessing options: parsing, validation, merging, label files."""

import json

import pytest

from edgecv import AnchorSpec, ConfigError, Manifest, Preprocessing, read_labels
from edgecv.heads import ClassificationHead, DetectionHead
from edgecv.manifest import normalize_task, parse_labels, read_sidecar, sidecar_path, write_sidecar


@pytest.mark.device
def test_round_trip_json():
    m = Manifest(task="detect", labels=["cat", "dog"], label_offset=1,
                 preprocessing={"mean": [1, 2, 3], "std": 4, "color": "bgr", "resize": "letterbox"},
                 outputs={"boxes": "b", "scores": "s"}, head={"form": "raw", "anchors": AnchorSpec.ultraface(320).to_dict()},
                 quantization={"precision": "int8"}, target="rpi4", provenance={"source_sha256": "ab"})
    back = Manifest.from_json(m.to_json())
    assert back.to_dict() == m.to_dict()
    assert back.task == "detection" and back.label_for(1) == "cat" and back.label_for(0) is None
    assert back.preprocessing.mean == (1.0, 2.0, 3.0) and back.preprocessing.std == (4.0,)
    assert isinstance(back.head, DetectionHead) and back.head.anchors == AnchorSpec.ultraface(320)


@pytest.mark.device
@pytest.mark.parametrize("task, head, match", [
    ("detection", {"form": "raw", "anchors": {"kind": "ssd"}}, "feature_maps"),
    ("detection", {"score_treshold": 0.3}, "did you mean 'score_threshold'"),
    ("detection", {"score_threshold": 1.5}, "0..1"),
    ("detection", {"iou_threshold": True}, "0..1"),
    ("detection", {"max_detections": 0}, "positive int"),
    ("detection", {"background_class": -1}, "background_class"),
    ("detection", {"box_format": "xywh"}, "did you mean"),
    ("classification", {"kind": "multi"}, "multiclass"),
    ("segmentation", {"layout": "hwc"}, "layout"),
    ("embedding", {"l2_normalized": "yes"}, "true or false"),
    (None, {"output": "logits"}, "need the task stated"),
    ("detection", {"box_coder": {"convention": "tf", "scales": 5}}, "is not a box coder"),
    ("detection", {"box_coder": {"convention": "center_variance", "variances": ["a", "b"]}}, "is not a box coder"),
    ("detection", {"box_coder": {"type": "center_size", "order": 5}}, "unknown box order"),
    ("detection", {"anchors": [[0, 0, 1], [1, 1]]}, "anchors"),
])
def test_heads_are_checked_when_read(task, head, match):
    """A manifest's head is typed on reading: unknown keys and bad values fail there, once."""
    with pytest.raises(ConfigError, match=match):
        Manifest.from_dict({"task": task, "head": head})


@pytest.mark.device
def test_typed_heads_keep_the_manifest_json():
    """Manifests written before typed heads read back to the same JSON; null background means none."""
    old = {"task": "detection", "head": {"form": "raw", "anchors": AnchorSpec.ultraface(320).to_dict(),
                                         "box_coder": {"convention": "center_variance", "variances": [0.1, 0.2]},
                                         "score_activation": "softmax", "background_class": None,
                                         "score_threshold": 0.7, "iou_threshold": 0.3, "max_detections": 200}}
    m = Manifest.from_dict(old)
    assert m.to_dict()["head"] == old["head"] and m.head == old["head"]
    assert m.head.background_column is None and m.head.background_class == "none"
    assert Manifest.from_dict({"task": "detection", "head": {"background_class": 0}}).head.background_column == 0
    assert m.head_as(ClassificationHead) == {} and m.head_as(DetectionHead) is m.head
    stated = DetectionHead(score_threshold=0.4, box_format="yxyx")
    merged = stated.merged_over(m.head)
    assert merged.score_threshold == 0.4 and merged.iou_threshold == 0.3 and merged.box_columns == (1, 0, 3, 2)


@pytest.mark.device
@pytest.mark.parametrize("bad, match", [
    ({"color": "rbg"}, "did you mean 'rgb'"),
    ({"std": 0}, "must not be zero"),
    ({"mean": [1, 2]}, "1 or 3"),
    ({"layout": "hwc"}, "layout"),
    ({"pad_value": 300}, "pad_value"),
    ({"means": 1}, "did you mean 'mean'"),
])
def test_bad_preprocessing(bad, match):
    with pytest.raises(ConfigError, match=match):
        Preprocessing.coerce(bad)


@pytest.mark.device
def test_task_names():
    assert normalize_task("segment") == "segmentation"
    with pytest.raises(ConfigError, match="did you mean"):
        normalize_task("detecton")


@pytest.mark.device
def test_newer_schema_and_bad_json_refused():
    with pytest.raises(ConfigError, match="newer"):
        Manifest.from_json(json.dumps({"schema_version": 99}))
    with pytest.raises(ConfigError, match="not valid JSON"):
        Manifest.from_json("{not json")
    with pytest.raises(ConfigError, match="object"):
        Manifest.from_json("[1, 2]")


@pytest.mark.device
def test_labels_plain_numbered_and_capped(tmp_path):
    assert parse_labels("a\nb\n\n") == ("a", "b")
    assert parse_labels("0 person\n1 bicycle\n3 car\n") == ("person", "bicycle", "", "car")
    assert parse_labels("0: cat\n1: dog") == ("cat", "dog")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(9 * 1024 * 1024)
    with pytest.raises(ConfigError, match="limit"):
        read_labels(big)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="UTF-8"):
        read_labels(binary)


@pytest.mark.device
def test_coco_labelmap_fixture(fixtures):
    labels = read_labels(fixtures / "detection" / "coco_labelmap.txt")
    assert len(labels) == 90 and labels[0] == "person" and labels[11] == "???" and labels[-1] == "toothbrush"


@pytest.mark.device
def test_sidecar_written_atomically_and_read(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    write_sidecar(model, Manifest(task="embed"))
    assert sidecar_path(model).name == "m.tflite.json"
    assert read_sidecar(model).task == "embedding"
    sidecar_path(model).write_text("{broken")
    with pytest.raises(ConfigError, match="m.tflite.json"):
        read_sidecar(model)


@pytest.mark.device
def test_oversized_sidecar_is_refused_before_reading(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with open(sidecar_path(model), "wb") as f:
        f.truncate(65 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than"):
        read_sidecar(model)


@pytest.mark.device
def test_tensor_spec_affine_reads_integer_per_tensor_quantization_only():
    from edgecv.specs import QuantParams, TensorSpec

    def spec(dtype, q):
        return TensorSpec("scores", (1, 10), dtype, q)

    assert spec("uint8", QuantParams((1 / 256,), (0,))).affine == (1 / 256, 0)
    assert spec("int8", QuantParams((0.5,), (-3,))).affine == (0.5, -3)
    assert spec("int16", QuantParams((0.25,), (0,))).affine == (0.25, 0)
    assert spec("uint8", None).affine is None                                  # not quantized
    assert spec("float32", QuantParams((0.5,), (0,))).affine is None           # float storage: read as is
    assert spec("int8", QuantParams((0.5, 0.25), (0, 0), axis=1)).affine is None   # per channel
    assert spec("uint8", QuantParams((0.0,), (0,))).affine is None             # no usable scale
    scale, zero = spec("uint8", QuantParams((0.1,), (7,))).affine
    assert type(scale) is float and type(zero) is int
