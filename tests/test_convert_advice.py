"""Every conversion error that gives advice gives advice that works: each case makes the error, then does what
its message says, and the conversion goes through (no other error).

The source is a tiny ONNX classifier (so the conversions are ONNX -> ONNX and take a second); the advice of
the TFLite-from-ONNX errors is followed too (formats='onnx' on an ONNX Runtime target, or EDGECV_ONNX2TF naming the tool environment).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import converters  # noqa: E402
from edgecv.errors import BackendNotAvailable, CalibrationError, ConfigError, ConversionError, ModelLoadError  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRE = {"mean": 127.5, "std": 127.5, "color": "rgb"}
FOLDER = "<a folder of the calibration images>"


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory):
    """The tiny classifier as ONNX (NHWC input 32x32x3, output 'scores'), and a copy with a dynamic image size."""
    import keras
    import onnx

    keras.utils.set_random_seed(1)
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="scores")(x))
    folder = tmp_path_factory.mktemp("advice")
    path = converters.convert(model, task="classification", target=None, precision="fp32", formats="onnx",
                              preprocessing=PRE, output_dir=folder, name="tiny").artifacts[0].path
    proto = onnx.load(path)
    for dim, name in zip(proto.graph.input[0].type.tensor_type.shape.dim[1:3], ("height", "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    dynamic = folder / "tiny_dynamic.onnx"
    onnx.save(proto, str(dynamic))
    return {"fixed": path, "dynamic": str(dynamic)}


def _cases(tmp_path):
    """name -> (error, advice pattern, arguments that fail, arguments that follow the advice)."""
    images = _images(20, 1)
    return {
        "int8 needs calibration": (CalibrationError, "pass calibration= a folder",
                                   {"precision": "int8"}, {"precision": "int8", "calibration": images}),
        "calibration path is no folder": (CalibrationError, "pass a folder of images",
                                          {"precision": "int8", "calibration": str(tmp_path / "absent")},
                                          {"precision": "int8", "calibration": FOLDER}),
        "one-shot calibration": (CalibrationError, r"pass list\(\.\.\.\) of it",
                                 {"precision": "int8", "calibration": (im for im in images)},
                                 {"precision": "int8", "calibration": list(im for im in images)}),
        "float calibration off the preprocessing": (CalibrationError, "pass raw uint8 images instead",
                                                    {"precision": "int8", "calibration": images.astype(np.float32)},
                                                    {"precision": "int8", "calibration": images}),
        "too few calibration images": (CalibrationError, "at least 10 are needed",
                                       {"precision": "int8", "calibration": images[:5]},
                                       {"precision": "int8", "calibration": images[:10]}),
        "constant calibration": (CalibrationError, "pass real images",
                                 {"precision": "int8", "calibration": np.zeros_like(images)},
                                 {"precision": "int8", "calibration": images}),
        "overlap: separate images": (CalibrationError, "Use separate images",
                                     {"precision": "int8", "calibration": images, "validation": images[:4]},
                                     {"precision": "int8", "calibration": images, "validation": _images(4, 9)}),
        "overlap: allow_overlap": (CalibrationError, "or pass allow_overlap=True",
                                   {"precision": "int8", "calibration": images, "validation": images[:4]},
                                   {"precision": "int8", "calibration": images, "validation": images[:4],
                                    "allow_overlap": True}),
        "mean without std": (ConfigError, "give both", {"preprocessing": {"mean": 127.5}},
                             {"preprocessing": {"mean": 127.5, "std": 127.5}}),
        "label count": (ConfigError, "give 3 labels", {"labels": ["a"]}, {"labels": ["a", "b", "c"]}),
        "label count, background class": (ConfigError, r"\(or 2 when class 0 is an unlabelled background\)",
                                          {"labels": ["a"]}, {"labels": ["b", "c"]}),
        "format the target does not run": (ConfigError, r"target=None builds any format",
                                           {"target": "coral-usb", "precision": None}, {"target": None}),
        "precision the target does not run": (ConfigError, "leave precision unset",
                                              {"target": "jetson-nano", "precision": "int8"},
                                              {"target": "jetson-nano", "precision": None}),
        "io_dtype of a float artifact": (ConfigError, "drop io_dtype", {"io_dtype": "uint8"}, {}),
        "dynamic input size": (ConversionError, r"pass input_shape=\(H, W, C\)", {"model": "dynamic"},
                               {"model": "dynamic", "input_shape": (32, 32, 3)}),
        "ONNX to TFLite without onnx2tf": (BackendNotAvailable, "formats='onnx' with target 'cpu'",
                                           {"formats": "tflite", "env": ""}, {"env": ""}),
    }


def _folder(tmp_path, images):
    import cv2

    folder = tmp_path / "calib"
    folder.mkdir(exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return folder


CASE_NAMES = sorted(_cases(__import__("pathlib").Path("/nonexistent")))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_following_the_advice_converts(onnx_models, tmp_path, monkeypatch, name):
    error, advice, bad, good = _cases(tmp_path)[name]
    for i, (arguments, expect_error) in enumerate(((bad, True), (good, False))):
        kwargs = {"task": "classification", "target": None, "precision": "fp32", "formats": "onnx",
                  "preprocessing": PRE, "output_dir": tmp_path / f"out{i}", **arguments}
        model = onnx_models[kwargs.pop("model", "fixed")]
        if kwargs.get("calibration") is FOLDER:
            kwargs["calibration"] = str(_folder(tmp_path, _images(20, 1)))
        if kwargs.pop("env", None) is not None:                 # no onnx2tf anywhere edgecv looks
            monkeypatch.setenv("EDGECV_ONNX2TF", "")
            monkeypatch.setattr("converters.onnx_translate.TOOL_ENV", tmp_path / "no-env")
            monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
        if expect_error:
            with pytest.raises(error, match=advice):
                converters.convert(model, **kwargs)
        else:
            assert converters.convert(model, **kwargs).artifacts


def test_existing_file_advice_overwrite_works(onnx_models, tmp_path):
    kwargs = {"task": "classification", "target": None, "precision": "fp32", "formats": "onnx",
              "preprocessing": PRE, "output_dir": tmp_path, "name": "t"}
    converters.convert(onnx_models["fixed"], **kwargs)
    with pytest.raises(ConfigError, match="pass overwrite=True"):
        converters.convert(onnx_models["fixed"], **kwargs)
    assert converters.convert(onnx_models["fixed"], overwrite=True, **kwargs).artifacts


def _nchw_classifier(opset: int):
    """A tiny NCHW classifier written at *opset* (as an old PyTorch export would be): Conv, Relu, pool, Gemm, Softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    weights = [numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)
               for name, shape in (("w", (4, 3, 3, 3)), ("b", (4,)), ("fc", (4, 3)), ("fcb", (3,)))]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "fc", "fcb"], ["g"]),
             helper.make_node("Softmax", ["g"], ["scores"], axis=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


def test_opset_advice_reexport_works(tmp_path, monkeypatch):
    """An old-opset model the ONNX version converter cannot lift: the advice is to re-export at a newer opset."""
    import re

    import onnx
    from onnx import version_converter

    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    onnx.save(_nchw_classifier(11), str(old))

    def cannot_convert(model, target_version):
        raise RuntimeError("No adapter for this op")

    monkeypatch.setattr(version_converter, "convert_version", cannot_convert)
    kwargs = {"task": "classification", "target": None, "precision": "int8", "formats": "onnx",
              "preprocessing": PRE, "calibration": _images(20, 1)}
    with pytest.raises(ConversionError, match=r"re-export it at opset >= \d+") as caught:
        converters.convert(str(old), output_dir=tmp_path / "bad", **kwargs)
    wanted = int(re.search(r"opset >= (\d+)", str(caught.value)).group(1))
    onnx.save(_nchw_classifier(wanted), str(new))             # the advice: the same model exported at that opset
    assert converters.convert(str(new), output_dir=tmp_path / "good", **kwargs).artifacts


def test_custom_objects_advice_works(tmp_path):
    """A .keras file with a custom layer Keras cannot find: the advice is custom_objects={...}."""
    import keras

    class Brighten(keras.layers.Layer):          # local: Keras cannot import it back by name
        def call(self, x):
            return x * 1.5

    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(Brighten()(inp))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="scores")(x))
    path = tmp_path / "custom.keras"
    model.save(path)
    kwargs = {"task": "classification", "target": None, "precision": "fp32", "formats": "onnx", "preprocessing": PRE}
    with pytest.raises(ModelLoadError, match=r"pass custom_objects=\{\.\.\.\}"):
        converters.convert(str(path), output_dir=tmp_path / "bad", **kwargs)
    assert converters.convert(str(path), output_dir=tmp_path / "good", custom_objects={"Brighten": Brighten},
                              **kwargs).artifacts
