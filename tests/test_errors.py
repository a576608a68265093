"""Bad inputs raise the right EdgeCVError subclass with a message that says what to do."""

import builtins
import shutil
import sys

import numpy as np
import pytest

import edgecv
from edgecv import errors


@pytest.mark.device
def test_error_tree_roots():
    for cls in (errors.ConfigError, errors.BackendNotAvailable, errors.ModelLoadError,
                errors.IncompatibleModelError, errors.InferenceError, errors.ConversionError,
                errors.CalibrationError, errors.UnsupportedOpError, errors.UnknownTargetError):
        assert issubclass(cls, errors.EdgeCVError)
    assert issubclass(errors.CalibrationError, errors.ConversionError)


@pytest.mark.device
def test_missing_file(tmp_path):
    with pytest.raises(errors.ModelLoadError, match="does not exist"):
        edgecv.load(tmp_path / "nope.tflite")


@pytest.mark.device
def test_empty_file(tmp_path):
    p = tmp_path / "empty.tflite"
    p.write_bytes(b"")
    with pytest.raises(errors.ModelLoadError, match="empty"):
        edgecv.load(p)


@pytest.mark.device
def test_non_model_file(tmp_path):
    p = tmp_path / "notes.tflite"
    p.write_text("this is a text file, not a model\n" * 10)
    with pytest.raises(errors.ModelLoadError, match="not a TFLite"):
        edgecv.load(p)
    q = tmp_path / "notes.onnx"
    q.write_text("this is a text file, not a model\n" * 10)
    with pytest.raises(errors.ModelLoadError, match="ONNX"):
        edgecv.load(q)


@pytest.mark.device
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_tflite(fixtures, tmp_path, fraction):
    data = (fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()
    p = tmp_path / "cut.tflite"
    p.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(errors.ModelLoadError) as info:
        edgecv.load(p)
    assert "re-" in str(info.value) or "truncated" in str(info.value)


@pytest.mark.device
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_onnx(fixtures, tmp_path, fraction):
    data = (fixtures / "detection" / "ultraface_rfb_320.onnx").read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(errors.ModelLoadError, match="ONNX"):
        edgecv.load(p)


@pytest.mark.device
def test_unknown_suffix_names_the_fix(fixtures, tmp_path):
    p = tmp_path / "model.bin"
    shutil.copy(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite", p)
    with pytest.raises(errors.ConfigError, match=r"rename it to \.tflite"):
        edgecv.load(p)
    with edgecv.load(p, backend="litert") as m:  # an explicit backend works whatever the suffix
        assert m.format == "tflite"


@pytest.mark.device
def test_unknown_backend(fixtures):
    with pytest.raises(errors.ConfigError, match="did you mean 'litert'"):
        edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite", backend="litrt")


@pytest.mark.device
def test_wrong_input_shape_and_dtype(fixtures):
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        with pytest.raises(errors.ConfigError, match=r"expects shape \[1, 224, 224, 3\]"):
            m.run(np.zeros((1, 100, 100, 3), np.uint8))
        with pytest.raises(errors.ConfigError, match="astype"):
            m.run(np.zeros((1, 224, 224, 3), np.float32))
        with pytest.raises(errors.ConfigError, match="takes 1 input"):
            m.run()


@pytest.mark.device
def test_closed_model_raises(fixtures):
    m = edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite")
    m.close()
    with pytest.raises(errors.InferenceError, match="closed"):
        m.invoke()


def _hide_modules(monkeypatch, prefixes):
    real_import = builtins.__import__
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            monkeypatch.delitem(sys.modules, name)

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in prefixes:
            raise ImportError(f"No module named {name!r} (hidden by test)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


@pytest.mark.device
def test_missing_tflite_runtime_names_the_extra(fixtures, monkeypatch):
    _hide_modules(monkeypatch, {"ai_edge_litert", "tflite_runtime", "tensorflow"})
    with pytest.raises(errors.BackendNotAvailable, match=r"pip install 'edgecv\[litert\]'"):
        edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite")


@pytest.mark.device
def test_missing_onnxruntime_names_the_extra(fixtures, monkeypatch):
    _hide_modules(monkeypatch, {"onnxruntime"})
    with pytest.raises(errors.BackendNotAvailable, match=r"pip install 'edgecv\[onnx\]'"):
        edgecv.load(fixtures / "detection" / "ultraface_rfb_320.onnx")


@pytest.mark.device
def test_bad_num_threads(fixtures):
    with pytest.raises(errors.ConfigError, match="num_threads"):
        edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite", num_threads=0)
