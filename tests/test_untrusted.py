"""Untrusted model content: ONNX external data must stay inside the model's folder."""

import numpy as np
import pytest

import edgecv

onnx = pytest.importorskip("onnx")


def _model_with_external(tmp_path, location):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4,), np.float32), name="w")
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    path = _model_with_external(tmp_path, location)
    with pytest.raises(edgecv.ModelLoadError, match="absolute path|outside the model folder"):
        edgecv.load(path)


def test_external_data_symlink_escaping_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    path = _model_with_external(tmp_path, "w.bin")
    (path.parent / "w.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(edgecv.ModelLoadError, match="outside the model folder"):
        edgecv.load(path)


def test_external_data_beside_the_model_loads(tmp_path):
    path = _model_with_external(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(np.full(4, 2.0, np.float32).tobytes())
    with edgecv.load(path, backend="onnxruntime") as m:
        np.testing.assert_allclose(m.run(np.ones(4, np.float32))[0], [3, 3, 3, 3])


def test_missing_external_data_names_the_file(tmp_path):
    path = _model_with_external(tmp_path, "w.bin")
    with pytest.raises(edgecv.ModelLoadError, match="w.bin"):
        edgecv.load(path)
