"""TFLite_Detection_PostProcess options: read with edgecv's FlexBuffers reader, refused when NaN/inf or out of
range; an SSD copy cut short by one byte raises instead of loading without its packed labels (issue 21)."""

from __future__ import annotations

import math

import pytest

import edgecv
from edgecv.formats.flexbuffer import read_flexbuffer_map
from edgecv.formats.tflite import parse_tflite

from .flatbuffer import Bytes
from .tflite_rewrite import decode, rebuild

pytestmark = pytest.mark.device

_SSD_OPTIONS = {"_output_quantized": True, "h_scale": 5.0, "max_classes_per_detection": 1, "max_detections": 10,
                "nms_iou_threshold": 0.6, "nms_score_threshold": 1e-8, "num_classes": 90, "w_scale": 5.0,
                "x_scale": 10.0, "y_scale": 10.0}


def _ssd(fixtures) -> bytes:
    return (fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite").read_bytes()


def _with_options(data: bytes, options: dict) -> bytes:
    flexbuffers = pytest.importorskip("flatbuffers.flexbuffers")
    model = decode(data)
    for op in model.fields[2].tables[0].fields[3].tables:
        if 5 in op.fields:
            op.fields[5] = Bytes(bytes(flexbuffers.Dumps(options)), align=4)
    return rebuild(model, data)


def _postprocess_options(data: bytes) -> bytes:
    model = decode(data)
    return next(op.fields[5].data for op in model.fields[2].tables[0].fields[3].tables if 5 in op.fields)


def test_the_fixture_options_read_as_published(fixtures):
    options = read_flexbuffer_map(_postprocess_options(_ssd(fixtures)))
    assert options.keys() == _SSD_OPTIONS.keys()
    for key, value in _SSD_OPTIONS.items():
        assert options[key] == pytest.approx(value, rel=1e-6), key


def test_options_written_again_still_load(fixtures):
    parse_tflite(_with_options(_ssd(fixtures), _SSD_OPTIONS))


@pytest.mark.parametrize(("key", "value", "match"), [
    ("y_scale", math.nan, "y_scale = nan"), ("nms_score_threshold", math.inf, "must be finite"),
    ("h_scale", 0.0, "must be positive"), ("nms_iou_threshold", 1.5, "between 0 and 1"),
    ("max_detections", 10**9, "max_detections = 1000000000"), ("num_classes", 0, "num_classes = 0"),
])
def test_bad_postprocess_options_are_refused_at_parse(fixtures, key, value, match):
    with pytest.raises(edgecv.ModelLoadError, match=match):
        parse_tflite(_with_options(_ssd(fixtures), {**_SSD_OPTIONS, key: value}))


@pytest.mark.parametrize("cut", [1, 3, 40])
def test_damaged_options_are_refused_not_handed_to_the_op(cut):
    raw = b"y_scale\0\x01\t\0\0\x03\0\0\0\x01\0\0\0\x01\0\0\0\0\0 A\x0e\x05&\x01"  # {"y_scale": 10.0}
    assert read_flexbuffer_map(raw) == {"y_scale": 10.0}
    with pytest.raises(edgecv.ModelLoadError):
        read_flexbuffer_map(raw[:-cut] if cut < len(raw) else b"")


def test_the_ssd_fixture_cut_by_one_byte_raises_the_promised_error(fixtures, tmp_path):
    path = tmp_path / "cut.tflite"
    path.write_bytes(_ssd(fixtures)[:-1])
    with pytest.raises(edgecv.ModelLoadError, match="truncated"):
        edgecv.load(path)


def test_the_class_count_comes_from_the_num_classes_option(fixtures, tmp_path):
    """EfficientDet-Lite / Model Maker detectors have no background column: the op's num_classes says so."""
    from edgecv.tasks.postprocess_classes import postprocess_num_classes

    original = tmp_path / "ssd.tflite"
    original.write_bytes(_ssd(fixtures))
    no_background = tmp_path / "ssd_91.tflite"          # 91 score columns, all of them classes
    no_background.write_bytes(_with_options(_ssd(fixtures), {**_SSD_OPTIONS, "num_classes": 91}))
    with edgecv.load(original) as model:
        assert postprocess_num_classes(model) == 90
    with edgecv.load(no_background) as model:
        assert postprocess_num_classes(model) == 91
