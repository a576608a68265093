"""Valid TFLite flatbuffers with wrong-typed tensors or reordered outputs (issue 21).

A float classifier whose output is declared STRING or RESOURCE segfaulted in
``edgecv.load``; declared UINT8 or INT8 it corrupted the heap (the float kernel
writes four bytes per element into a one-byte buffer). ``edgecv check`` called
them OK. The models are rebuilt with :mod:`.tflite_rewrite`, since a float32
tensor's type field is usually absent and cannot be patched in place.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import edgecv
from edgecv.formats.tflite import parse_tflite

from .flatbuffer import serialize
from .tflite_rewrite import decode, graph_io, retype_tensor, set_outputs
from .tiny_models import tflite_models

pytestmark = pytest.mark.device

_TYPES = {"string": 5, "resource": 13, "variant": 14, "complex64": 8, "uint8": 3, "int8": 9, "int64": 4, "bool": 6}
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _classifier(fixtures) -> bytes:
    return (fixtures / "classification" / "mobilenet_v1_0.25_224_float.tflite").read_bytes()


def _ssd(fixtures) -> bytes:
    return (fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite").read_bytes()


def test_a_rebuilt_model_is_the_same_model():
    data = tflite_models()["tiny_conv"]
    rebuilt = serialize(decode(data), b"TFL3")
    assert parse_tflite(rebuilt).main == parse_tflite(data).main


@pytest.mark.parametrize("type_name", sorted(_TYPES))
def test_a_float_op_output_declared_another_type_is_refused_before_the_runtime(type_name):
    data = tflite_models()["tiny_conv"]
    out = graph_io(decode(data))[1][0]
    with pytest.raises(edgecv.ModelLoadError, match=type_name):
        parse_tflite(retype_tensor(data, out, _TYPES[type_name]))


@pytest.mark.parametrize("type_name", ["string", "resource", "variant", "complex64"])
def test_a_graph_input_of_a_non_array_type_is_refused(type_name):
    data = tflite_models()["tiny_add"]
    with pytest.raises(edgecv.ModelLoadError, match=f"input 'x' has type {type_name}"):
        parse_tflite(retype_tensor(data, graph_io(decode(data))[0][0], _TYPES[type_name]))


@pytest.mark.parametrize("type_name", ["string", "resource", "uint8", "int8", "complex64"])
def test_the_float_classifier_with_a_retyped_output_raises_in_load(fixtures, tmp_path, type_name):
    data = _classifier(fixtures)
    path = tmp_path / f"{type_name}.tflite"
    path.write_bytes(retype_tensor(data, graph_io(decode(data))[1][0], _TYPES[type_name]))
    with pytest.raises(edgecv.ModelLoadError, match=type_name):
        edgecv.load(path)


def test_check_reports_a_retyped_output_instead_of_ok(fixtures, tmp_path):
    data = _classifier(fixtures)
    path = tmp_path / "uint8_out.tflite"
    path.write_bytes(retype_tensor(data, graph_io(decode(data))[1][0], _TYPES["uint8"]))
    done = subprocess.run([sys.executable, "-m", "edgecv.cli", "check", "--target", "cpu", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "declared uint8" in done.stderr and "OK" not in done.stdout


def test_postprocess_outputs_declared_uint8_are_refused(fixtures):
    data = _ssd(fixtures)
    boxes = graph_io(decode(data))[1][0]
    with pytest.raises(edgecv.ModelLoadError, match="TFLite_Detection_PostProcess .* declared uint8"):
        parse_tflite(retype_tensor(data, boxes, _TYPES["uint8"]))


def test_ssd_outputs_listed_in_reverse_order_raise_incompatible_model(fixtures, tmp_path):
    data = _ssd(fixtures)
    path = tmp_path / "reversed.tflite"
    path.write_bytes(set_outputs(data, graph_io(decode(data))[1][::-1]))
    with pytest.raises(edgecv.IncompatibleModelError, match="boxes \\[1, N, 4\\]"):
        edgecv.Detector(path)


def test_ssd_with_a_duplicated_output_still_detects(fixtures, tmp_path):
    data = _ssd(fixtures)
    outs = graph_io(decode(data))[1]
    path = tmp_path / "duplicated.tflite"
    path.write_bytes(set_outputs(data, outs + [outs[0]]))
    with edgecv.Detector(path, outputs={"boxes": "TFLite_Detection_PostProcess",
                                        "classes": "TFLite_Detection_PostProcess:1",
                                        "scores": "TFLite_Detection_PostProcess:2",
                                        "count": "TFLite_Detection_PostProcess:3"}) as det:
        assert len(det.detect(np.zeros((60, 80, 3), np.uint8)).detections) <= 10


def test_a_huge_max_detections_allocates_only_what_the_model_can_return(fixtures):
    path = fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite"
    with edgecv.Detector(path, max_detections=10**9, score_threshold=0.0) as det:
        result = det.detect(np.zeros((60, 80, 3), np.uint8))
    assert len(result.detections) <= 10


def test_a_classifier_on_a_boolean_output_is_incompatible_not_a_type_error(tmp_path):
    from .tiny_models import _BOOL, _FLOAT32, TfliteBuilder

    b = TfliteBuilder()
    tensors = [b.tensor("x", [1, 4, 4, 3], _FLOAT32), b.tensor("c", [1], _FLOAT32, data=np.array([0.5], np.float32)),
               b.tensor("y", [1, 4, 4, 3], _BOOL)]
    b.subgraph("main", tensors, [0], [2], [b.op("LESS", [0, 1], [2])])
    path = tmp_path / "bool_out.tflite"
    path.write_bytes(b.finish("boolean output"))
    with pytest.raises(edgecv.IncompatibleModelError, match="holds bool values"):
        edgecv.Classifier(path)
