"""Calibration and validation data: every accepted form goes through the runtime preprocessing; bad sets are refused."""

from __future__ import annotations

import numpy as np
import pytest

from converters.calibration import Preprocess, calibration_set, iter_inputs
from converters.validate import ValidationSet, preprocess_validation, validation_set
from edgecv import Preprocessing
from edgecv.errors import CalibrationError, ConfigError
from edgecv.preprocess import Preprocessor
from edgecv.specs import TensorSpec

cv2 = pytest.importorskip("cv2")

SPEC = TensorSpec("image", (1, 32, 32, 3), "float32", None, "nhwc")
PRE = Preprocessing(mean=(127.5,), std=(127.5,), color="rgb")


def _images(n, seed=0, size=40):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _pre(spec=SPEC, pre=PRE):
    return Preprocess(spec, pre, "bgr")


def test_images_go_through_the_runtime_preprocessor():
    img = _images(1)[0]
    expected = np.zeros((1, 32, 32, 3), np.float32)
    Preprocessor(SPEC, expected, PRE)(img, "bgr")
    got = _pre()(img)
    assert np.array_equal(got, expected)
    # resize to the input, BGR -> RGB, (x - 127.5) / 127.5
    manual = (cv2.resize(img, (32, 32), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(got[0], manual, atol=1e-6)


def test_nchw_inputs_are_filled_in_channel_first_order():
    spec = TensorSpec("input", (1, 3, 16, 20), "float32", None, "nchw")
    img = _images(1, size=16)[0][:, :16]
    img = np.ascontiguousarray(np.concatenate([img, img[:, :4]], axis=1))     # 16 x 20
    x = Preprocess(spec, Preprocessing(mean=(127.0,), std=(128.0,), color="rgb"), "bgr")(img)
    assert x.shape == (1, 3, 16, 20)
    np.testing.assert_allclose(x[0, 0], (img[:, :, 2].astype(np.float32) - 127.0) / 128.0, atol=1e-6)


def test_array_list_folder_and_tensors_give_the_same_inputs(tmp_path):
    images = _images(12)
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    pre = _pre()
    from_array = np.concatenate(list(iter_inputs(images, pre, "calibration")))
    from_list = np.concatenate(list(iter_inputs(list(images), pre, "calibration")))
    from_folder = np.concatenate(list(iter_inputs(str(tmp_path), pre, "calibration")))
    from_tensors = np.concatenate(list(iter_inputs(from_array.copy(), pre, "calibration")))
    from_paths = np.concatenate(list(iter_inputs(sorted(tmp_path.iterdir()), pre, "calibration")))
    for other in (from_list, from_folder, from_tensors, from_paths):
        assert np.array_equal(from_array, other)
    batches = np.concatenate(list(iter_inputs([images[:5], images[5:]], pre, "calibration")))
    assert np.array_equal(batches, from_array)


def test_calibration_set_is_reiterable_and_hashed():
    calib = calibration_set(_images(12), _pre())
    assert calib.size == 12 and calib.distinct == 12 and len(calib.hashes) == 12
    first = np.concatenate(list(calib))
    assert np.array_equal(first, np.concatenate(list(calib)))
    assert calib.summary("minmax") == {"method": "minmax", "size": 12, "sha256": calib.sha256}
    again = calibration_set(_images(12), _pre())
    assert again.sha256 == calib.sha256
    assert calibration_set(_images(12, seed=1), _pre()).sha256 != calib.sha256


@pytest.mark.parametrize("data, words", [
    (None, "needs calibration data"),
    (np.zeros((0, 32, 32, 3), np.uint8), "empty"),
    ([], "empty"),
    (np.full((20, 32, 32, 3), 7, np.uint8), "constant"),
    (np.repeat(_images(1), 20, axis=0), "constant"),
    (_images(4), "at least 10"),
    (np.zeros((5, 16, 16, 3), np.float32), "float tensors must be shaped"),
    (np.random.default_rng(0).random((12, 32, 32, 3)).astype(np.float32) * 255, "preprocessed tensors span"),
    (_images(1)[0], "one image is not a calibration set"),
    (np.zeros((3, 32, 32, 3), np.int32), "neither uint8 images"),
    ((x for x in _images(12)), "one-shot iterator"),
    ([1, 2, 3], "items must be numpy arrays"),
    ("/nonexistent/folder", "not a folder"),
    (12, "must be a folder"),
])
def test_bad_calibration_sets_are_refused(data, words):
    with pytest.raises(CalibrationError, match=words):
        calibration_set(data, _pre())


def test_nan_tensor_is_refused():
    x = np.zeros((12, 32, 32, 3), np.float32)
    x[3, 0, 0, 0] = np.nan
    with pytest.raises(CalibrationError, match="NaN"):
        calibration_set(x, _pre())


def test_validation_set_forms_and_hashes(tmp_path):
    images = _images(6)
    vs = validation_set(images)
    assert len(vs) == 6 and vs.labels is None
    inputs, hashes = preprocess_validation(vs, _pre())
    assert inputs.shape == (6, 32, 32, 3) and len(hashes) == 6
    calib = calibration_set(np.concatenate([images[:3], _images(10, seed=3)]), _pre())
    assert len(calib.hashes & hashes) == 3
    d = validation_set({"images": list(images), "labels": [0, 1, 2, 3, 0, 1]})
    assert d.labels == (0, 1, 2, 3, 0, 1)
    with pytest.raises(ConfigError, match="one per image"):
        ValidationSet(tuple(images), labels=(1, 2))
    with pytest.raises(ConfigError, match="empty"):
        validation_set([])
    with pytest.raises(ConfigError, match="unknown validation fields"):
        validation_set({"images": images, "label": [1]})
    with pytest.raises(ConfigError, match="uint8 images"):
        validation_set(images.astype(np.float32))


def test_preprocess_matches_what_a_loaded_model_feeds(tmp_path):
    """Calibration inputs are byte-identical to what the runtime writes into a loaded model's input."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    import edgecv
    from edgecv.manifest import MANIFEST_KEY, Manifest

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 32, 32, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 32, 32, 3])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    proto.metadata_props.add(key=MANIFEST_KEY, value=Manifest(preprocessing=PRE).to_json())
    path = tmp_path / "identity.onnx"
    path.write_bytes(proto.SerializeToString())
    img = _images(1, size=57)[0]
    with edgecv.load(path) as model:
        model.preprocess(img, color="bgr")
        assert np.array_equal(model.input_buffer(0), _pre(model.inputs[0])(img))


def test_random_crops_are_repeatable_sized_and_checked():
    from converters.calibration import random_crops
    from edgecv.errors import ConfigError

    image = np.arange(240 * 320 * 3, dtype=np.uint32).astype(np.uint8).reshape(240, 320, 3)
    crops = random_crops(image, 20, aspect=0.75, seed=3)
    again = random_crops(image, 20, aspect=0.75, seed=3)
    assert len(crops) == 20 and all(np.array_equal(a, b) for a, b in zip(crops, again))
    for crop in crops:
        h, w = crop.shape[:2]
        assert 0.3 * 320 - 1 <= w <= 320 and h == min(240, int(w * 0.75)) and crop.flags.c_contiguous
    assert not all(np.array_equal(a, b) for a, b in zip(crops, random_crops(image, 20, aspect=0.75, seed=4)))
    for bad in ({"count": 0}, {"aspect": 0.0}, {"min_scale": 1.5}):
        with pytest.raises(ConfigError):
            random_crops(image, **{"count": 5, "aspect": 0.75, **bad})
