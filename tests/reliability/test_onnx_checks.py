"""ONNX files that once made edgecv.load raise something other than an EdgeCVError, and the tiny models' own values."""

from __future__ import annotations

import numpy as np
import pytest

import edgecv

from .tiny_models import (
    _F32,
    EXTERNAL_DATA_NAME,
    ONNX_ZERO_OUTPUTS,
    TFLITE_ZERO_OUTPUTS,
    _external_tensor,
    _graph,
    _model,
    _node,
    _value_info,
    external_weights,
    onnx_models,
    tflite_models,
)

pytestmark = pytest.mark.device


def _relu(input_name: str | bytes = "x", dims=(1, 4)) -> bytes:
    graph = _graph("relu", [_node("Relu", [input_name], ["y"])], [_value_info(input_name, _F32, list(dims))],
                   [_value_info("y", _F32, list(dims))])
    return _model(graph)


def _write(tmp_path, data: bytes, name: str = "m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_relu_builder_runs(tmp_path):
    with edgecv.load(_write(tmp_path, _relu())) as m:
        np.testing.assert_array_equal(m.run(np.array([[-1, 0, 2, -3]], np.float32))[0], [[0, 0, 2, 0]])


def test_tensor_name_not_utf8(tmp_path):
    """ONNX Runtime accepts it, then its Python binding raised UnicodeDecodeError on the input name."""
    with pytest.raises(edgecv.ModelLoadError, match="UTF-8"):
        edgecv.load(_write(tmp_path, _relu(b"x\xe7\xff")))


def test_external_location_with_nul_byte(tmp_path):
    """os.path.realpath raised ValueError('embedded null byte')."""
    graph = _graph("ext", [_node("Add", ["x", "w"], ["y"])], [_value_info("x", _F32, [1, 4])],
                   [_value_info("y", _F32, [1, 4])], [_external_tensor("w", [4], _F32, "w\0.bin", 0, 16)])
    with pytest.raises(edgecv.ModelLoadError, match="NUL"):
        edgecv.load(_write(tmp_path, _model(graph)))


def test_input_shape_too_large_to_allocate(tmp_path):
    with pytest.raises(edgecv.ModelLoadError, match="byte limit"):
        edgecv.load(_write(tmp_path, _relu(dims=(1, 3, 100_000, 100_000))))


@pytest.mark.parametrize("name", sorted(TFLITE_ZERO_OUTPUTS))
def test_tiny_tflite_models_compute_what_they_say(tmp_path, name):
    with edgecv.load(_write(tmp_path, tflite_models()[name], name + ".tflite")) as m:
        for i in range(len(m.inputs)):
            m.input_buffer(i)[...] = 0
        np.testing.assert_allclose(m.invoke()[0], TFLITE_ZERO_OUTPUTS[name])


@pytest.mark.parametrize("name", sorted(ONNX_ZERO_OUTPUTS))
def test_tiny_onnx_models_compute_what_they_say(tmp_path, name):
    (tmp_path / EXTERNAL_DATA_NAME).write_bytes(external_weights())
    with edgecv.load(_write(tmp_path, onnx_models()[name], name + ".onnx")) as m:
        for i in range(len(m.inputs)):
            m.input_buffer(i)[...] = 0
        np.testing.assert_allclose(m.invoke()[0], ONNX_ZERO_OUTPUTS[name])


def test_tiny_if_models_take_both_branches(tmp_path):
    x = np.array([[1, 2, 3]], np.float32)
    with edgecv.load(_write(tmp_path, tflite_models()["tiny_if"], "if.tflite")) as m:
        np.testing.assert_allclose(m.run(np.array([True]), x)[0], x + 1)
        np.testing.assert_allclose(m.run(np.array([False]), x)[0], x * 3)
    with edgecv.load(_write(tmp_path, onnx_models()["tiny_if"], "if.onnx")) as m:
        np.testing.assert_allclose(m.run(np.array(True), x)[0], x + 1)
        np.testing.assert_allclose(m.run(np.array(False), x)[0], x * 3)
