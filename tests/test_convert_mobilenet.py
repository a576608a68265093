"""A full-size architecture: Keras MobileNetV2 (224 x 224, 10 classes) to TFLite int8 (uint8 I/O) and ONNX int8."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import converters  # noqa: E402
import edgecv  # noqa: E402
from converters import synthetic  # noqa: E402
from edgecv.tasks.classifier import Classifier  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

pytestmark = pytest.mark.slow


def test_mobilenet_v2_int8_tflite_and_onnx_run(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    calibration = synthetic.make_dataset(12, seed=21, size=224).images      # few images: enough to run
    validation = synthetic.make_dataset(4, seed=22, size=224).images
    result = converters.convert(model, task="classification", target=None, precision="int8", calibration=calibration,
                                validation=validation, preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"},
                                labels=[f"class{i}" for i in range(10)], output_dir=tmp_path, name="mnv2",
                                float_fallback=False)      # random weights: the loop is tested elsewhere
    tflite, onnx = result.artifact("tflite", "int8"), result.artifact("onnx", "int8")
    assert tflite.io_dtype == "uint8" and onnx.io_dtype == "float32"
    reference = result.report.artifacts[0]
    assert reference.reference and reference.path is None          # fp32 built only to validate against
    for artifact in (tflite, onnx):
        rep = result.report.artifact(os.path.basename(artifact.path))
        assert rep.validated, rep.notes
        assert artifact.size_bytes < reference.size_bytes / 2.5      # int8 weights: about a quarter of fp32
    with edgecv.load(tflite.path) as m:
        assert m.inputs[0].dtype == "uint8" and m.inputs[0].shape == (1, 224, 224, 3)
        assert m.outputs[0].dtype == "uint8" and m.manifest.quantization["io_dtype"] == "uint8"
    for artifact in (tflite, onnx):
        with Classifier(artifact.path, top_k=3) as clf:
            result_ = clf.classify(validation[0])
        assert len(result_.categories) == 3
        assert all(c.label is not None and c.label.startswith("class") for c in result_.categories)
        scores = [c.score for c in result_.categories]
        assert scores == sorted(scores, reverse=True) and 0.0 <= scores[-1] <= scores[0] <= 1.0
    with edgecv.load(onnx.path) as m:
        ops = {n for n in _onnx_ops(onnx.path)}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        x = np.zeros(m.inputs[0].shape, np.float32)
        assert m.run(x)[0].shape == (1, 10)


def _onnx_ops(path):
    import onnx

    return [n.op_type for n in onnx.load(path).graph.node]
