"""Tiny models built in-process: fp32, uint8 and int8 inputs, NHWC and NCHW, both backends."""

import os

import numpy as np
import pytest

import edgecv

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# ---------------------------------------------------------------- TFLite via Keras
@pytest.fixture(scope="module")
def keras_mean_model():
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    inp = keras.Input((8, 8, 3), batch_size=1)
    out = keras.layers.GlobalAveragePooling2D()(inp)  # per-channel mean of the input values
    return tf, keras.Model(inp, out)


def _tflite(tf, model, tmp_path, name, *, int8_io=None):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8_io is not None:
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(8):
                yield [rng.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = int8_io
        converter.inference_output_type = int8_io
    path = tmp_path / name
    path.write_bytes(converter.convert())
    return path


def _image(seed=1):
    return np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)


def test_tflite_fp32_affine_preprocessing(keras_mean_model, tmp_path):
    tf, model = keras_mean_model
    path = _tflite(tf, model, tmp_path, "fp32.tflite")
    with edgecv.load(path) as m:
        assert m.inputs[0].dtype == "float32" and m.inputs[0].quantization is None
        pre = m.preprocessor(0, {"mean": [10.0, 20.0, 30.0], "std": [2.0, 4.0, 8.0], "color": "bgr"})
        assert pre.mode == "affine"
        img = _image()
        pre(img, "bgr")
        expected_input = (img.astype(np.float32) - [10, 20, 30]) / [2, 4, 8]
        np.testing.assert_allclose(m.input_buffer(0)[0], expected_input, rtol=1e-6)
        out = m.invoke()[0]
        np.testing.assert_allclose(out[0], expected_input.mean(axis=(0, 1)), rtol=1e-5)


def test_tflite_rgb_model_gets_channels_swapped(keras_mean_model, tmp_path):
    tf, model = keras_mean_model
    path = _tflite(tf, model, tmp_path, "fp32.tflite")
    with edgecv.load(path) as m:
        pre = m.preprocessor(0, {"mean": 0.0, "std": 1.0, "color": "rgb"})
        img = _image()
        pre(img, "bgr")
        np.testing.assert_array_equal(m.input_buffer(0)[0], img[:, :, ::-1].astype(np.float32))
        pre(img[:, :, ::-1].copy(), "rgb")  # already RGB: no swap
        np.testing.assert_array_equal(m.input_buffer(0)[0], img[:, :, ::-1].astype(np.float32))


@pytest.mark.parametrize("io", ["uint8", "int8"])
def test_tflite_full_int8_io(keras_mean_model, tmp_path, io):
    tf, model = keras_mean_model
    path = _tflite(tf, model, tmp_path, f"{io}.tflite", int8_io=getattr(tf, io))
    with edgecv.load(path) as m:
        spec = m.inputs[0]
        assert spec.dtype == io and spec.quantization is not None
        scale, zp = spec.quantization.scale[0], spec.quantization.zero_point[0]
        # the model was calibrated on [-1, 1]: feed pixels normalised (x - 127.5) / 127.5
        pre = m.preprocessor(0, {"mean": 127.5, "std": 127.5, "color": "bgr"})
        img = _image()
        pre(img, "bgr")
        real = (img.astype(np.float64) - 127.5) / 127.5
        expected_q = np.clip(np.rint(real / scale + zp), np.iinfo(io).min, np.iinfo(io).max)
        got = m.input_buffer(0)[0].astype(np.int64)
        if pre.mode == "affine":
            np.testing.assert_array_equal(got, expected_q.astype(np.int64))
        else:  # quantization (almost) cancels the normalisation: raw pixels, within one step
            assert pre.mode == ("copy" if io == "uint8" else "signflip")
            assert np.abs(got - expected_q).max() <= 1
        out = m.invoke()[0]
        assert out.dtype == np.float32  # dequantized output
        np.testing.assert_allclose(out[0], real.mean(axis=(0, 1)), atol=0.03)
        assert m.precision == "int8"


def test_sign_flip_path_for_int8_raw_pixels(keras_mean_model, tmp_path):
    """An int8 input that expects pixel - 128 takes the no-arithmetic sign-flip path."""
    tf, model = keras_mean_model
    path = _tflite(tf, model, tmp_path, "int8.tflite", int8_io=tf.int8)
    with edgecv.load(path) as m:
        spec = m.inputs[0]
        scale = spec.quantization.scale[0]
        zp = spec.quantization.zero_point[0]
        # mean/std that make the stored value exactly pixel - 128
        std = 1.0 / scale
        mean = (zp + 128) * scale * std
        pre = m.preprocessor(0, {"mean": mean, "std": std, "color": "bgr"})
        assert pre.mode == "signflip"
        img = _image()
        pre(img)
        np.testing.assert_array_equal(m.input_buffer(0)[0].astype(np.int16), img.astype(np.int16) - 128)


# ---------------------------------------------------------------- ONNX via onnx.helper
def _onnx_mean_model(tmp_path, elem_type, layout):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    shape = [1, 3, 6, 10] if layout == "nchw" else [1, 6, 10, 3]
    axes = [2, 3] if layout == "nchw" else [1, 2]
    nodes = []
    src = "image"
    if elem_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        src = "image_f"
    nodes.append(helper.make_node("ReduceMean", [src, "axes"], ["mean"], keepdims=0))
    graph = helper.make_graph(
        nodes, "mean",
        [helper.make_tensor_value_info("image", elem_type, shape)],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [2], axes)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / f"mean_{elem_type}_{layout}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_onnx_float_layouts(tmp_path, layout):
    from onnx import TensorProto

    path = _onnx_mean_model(tmp_path, TensorProto.FLOAT, layout)
    with edgecv.load(path) as m:
        assert m.inputs[0].layout == layout
        pre = m.preprocessor(0, {"mean": 0.0, "std": 255.0, "color": "rgb"})
        img = np.random.default_rng(3).integers(0, 256, (12, 20, 3), dtype=np.uint8)
        pre(img, "rgb")
        import cv2

        resized = cv2.resize(img, (10, 6)).astype(np.float32) / 255.0
        got = m.input_buffer(0)[0]
        if layout == "nchw":
            got = got.transpose(1, 2, 0)
        np.testing.assert_allclose(got, resized, rtol=1e-6)
        np.testing.assert_allclose(m.invoke()[0][0], resized.mean(axis=(0, 1)), rtol=1e-5)


@pytest.mark.parametrize("dtype_name", ["uint8", "int8"])
def test_onnx_integer_inputs(tmp_path, dtype_name):
    from onnx import TensorProto

    elem = TensorProto.UINT8 if dtype_name == "uint8" else TensorProto.INT8
    path = _onnx_mean_model(tmp_path, elem, "nchw")
    with edgecv.load(path) as m:
        assert m.inputs[0].dtype == dtype_name
        arr = np.random.default_rng(4).integers(0, 100, (1, 3, 6, 10)).astype(dtype_name)
        out = m.run(arr)[0]
        np.testing.assert_allclose(out[0], arr[0].astype(np.float64).mean(axis=(1, 2)), rtol=1e-5)
        if dtype_name == "uint8":  # raw pixels, no quantization: the copy path, laid out NCHW
            pre = m.preprocessor()
            assert pre.mode == "copy"
            img = np.random.default_rng(5).integers(0, 256, (6, 10, 3), dtype=np.uint8)
            pre(img, "rgb")
            np.testing.assert_array_equal(m.input_buffer(0)[0], img.transpose(2, 0, 1))


def test_onnx_dynamic_batch_is_fixed_to_one(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "relu.onnx")
    with edgecv.load(tmp_path / "relu.onnx") as m:
        assert m.inputs[0].shape == (1, 3, 4, 4)
        x = np.linspace(-1, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)
        np.testing.assert_array_equal(m.run(x)[0], np.maximum(x, 0))


def test_onnx_dynamic_spatial_input_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "dyn.onnx")
    with pytest.raises(edgecv.IncompatibleModelError, match="static input shape"):
        edgecv.load(tmp_path / "dyn.onnx")


def test_onnx_manifest_in_metadata_props_and_sidecar_override(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto

    path = _onnx_mean_model(tmp_path, TensorProto.FLOAT, "nchw")
    model = onnx.load(path)
    manifest = edgecv.Manifest(task="classify", labels=["a", "b", "c"],
                               preprocessing={"mean": 1.0, "std": 2.0, "color": "bgr"})
    entry = model.metadata_props.add()
    entry.key, entry.value = "edgecv.manifest", manifest.to_json()
    onnx.save(model, path)
    with edgecv.load(path) as m:
        assert m.manifest.task == "classification" and m.manifest.labels == ("a", "b", "c")
        assert m.manifest.preprocessing.std == (2.0,) and m.manifest.source == "edgecv"
    from edgecv.manifest import write_sidecar

    write_sidecar(path, edgecv.Manifest(labels=["x", "y", "z"]))
    with edgecv.load(path) as m:
        assert m.manifest.labels == ("x", "y", "z")          # the sidecar wins
        assert m.manifest.preprocessing.std == (2.0,)         # the rest still comes from the model
        assert m.manifest.source == "sidecar"


def test_onnx_output_of_data_dependent_shape_is_fresh_on_every_call(tmp_path):
    """NonZero's output size depends on the input: each invoke must return that call's result."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"])], "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "nz.onnx")
    with edgecv.load(tmp_path / "nz.onnx") as m:
        first = m.run(np.array([0, 1, 0, 1, 1, 0], np.float32))[0].copy()
        second = m.run(np.array([1, 0, 0, 0, 0, 1], np.float32))[0].copy()
        third = m.run(np.array([0, 0, 1, 0, 0, 0], np.float32))[0]
    assert first.tolist() == [[1, 3, 4]]
    assert second.tolist() == [[0, 5]]
    assert third.tolist() == [[2]]
