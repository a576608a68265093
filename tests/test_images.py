"""Every kind of image array into every task and Model.preprocess: converted as documented, or a ConfigError.

Documented conversions (edgecv.image): HxW and HxWx1 grayscale are replicated
to 3 channels, HxWx4 drops alpha (no blending), uint16 is divided by 257,
non-contiguous and negatively strided views are read as they are. Refused
with ConfigError: float and other dtypes, zero-size images, other shapes
(batched, 1-D, 2 or 5 channels), non-arrays, and paths that are missing,
folders, empty, corrupt or too large to decode. 1x1 and 8K images run and map
results back to their own size.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

import edgecv
from edgecv.tasks import Classifier, Detector, Embedder, Segmenter
from tests.reliability.tiny_models import onnx_embedder

pytestmark = pytest.mark.device

TASKS = ("classify", "detect", "segment", "embed")


@pytest.fixture(scope="module")
def tasks(fixtures, tmp_path_factory):
    embedder_path = tmp_path_factory.mktemp("embedder") / "embedder.onnx"
    embedder_path.write_bytes(onnx_embedder())
    made = {
        "classify": Classifier(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite"),
        "detect": Detector(fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite",
                           score_threshold=0.3),
        "segment": Segmenter(fixtures / "segmentation" / "deeplabv3_257_float.tflite"),
        "embed": Embedder(embedder_path, preprocessing={"mean": 127.5, "std": 127.5}),
    }
    yield made
    for task in made.values():
        task.close()


@pytest.fixture(scope="module")
def photo(fixtures):
    """A real photo (cats and dogs) at 240x180, so the detector finds something."""
    image = cv2.imread(str(fixtures / "images" / "cats_and_dogs.jpg"))
    return cv2.resize(image, (240, 180), interpolation=cv2.INTER_AREA)


def _run(tasks, name, image, color="bgr"):
    return getattr(tasks[name], name)(image, color=color)


def _values(result):
    """The numbers of a result (timing left out), for exact comparison."""
    if hasattr(result, "categories"):
        return [(c.index, c.score) for c in result.categories]
    if hasattr(result, "detections"):
        return [(d.class_id, d.score, d.box.x1, d.box.y1, d.box.x2, d.box.y2) for d in result.detections]
    if hasattr(result, "mask"):
        return result.mask.tolist()
    return result.vector.tolist()


def test_the_photo_gives_non_trivial_results(tasks, photo):
    assert _run(tasks, "classify", photo).categories
    assert _run(tasks, "detect", photo).detections
    assert len(np.unique(_run(tasks, "segment", photo).mask)) > 1


@pytest.mark.parametrize("name", TASKS)
def test_grayscale_is_replicated_to_three_channels(tasks, photo, name):
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    expected = _values(_run(tasks, name, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)))
    assert _values(_run(tasks, name, gray)) == expected
    assert _values(_run(tasks, name, gray[:, :, None])) == expected


@pytest.mark.parametrize("name", TASKS)
def test_alpha_is_dropped_not_blended(tasks, photo, name):
    alpha = np.random.default_rng(1).integers(0, 256, photo.shape[:2], dtype=np.uint8)
    assert _values(_run(tasks, name, np.dstack([photo, alpha]))) == _values(_run(tasks, name, photo))


@pytest.mark.parametrize("name", TASKS)
def test_uint16_is_divided_by_257(tasks, photo, name):
    # x * 257 + r with r < 257: dividing by 257 gives x back; a shift by 8 would not
    noise = np.random.default_rng(2).integers(0, 257, photo.shape)
    wide = np.minimum(photo.astype(np.int64) * 257 + noise, 65535).astype(np.uint16)
    assert _values(_run(tasks, name, wide)) == _values(_run(tasks, name, photo))


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("view", ["step", "flip_lr", "flip_ud", "channels_reversed", "fortran", "readonly"])
def test_views_give_the_same_result_as_contiguous_copies(tasks, photo, name, view):
    big = cv2.resize(photo, (480, 360))
    image = {
        "step": big[::2, ::2],
        "flip_lr": photo[:, ::-1],
        "flip_ud": photo[::-1],
        "channels_reversed": photo[:, :, ::-1],
        "fortran": np.asfortranarray(photo),
        "readonly": np.frombuffer(photo.tobytes(), np.uint8).reshape(photo.shape),
    }[view]
    assert _values(_run(tasks, name, image)) == _values(_run(tasks, name, np.ascontiguousarray(image)))


@pytest.mark.parametrize("name", TASKS)
def test_rgb_order_is_the_swapped_bgr_image(tasks, photo, name):
    assert _values(_run(tasks, name, photo[:, :, ::-1].copy(), "rgb")) == _values(_run(tasks, name, photo))


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint32",
                                   "bool", "complex64", "object", ">u2"])
def test_other_dtypes_are_refused(tasks, photo, name, dtype):
    with pytest.raises(edgecv.ConfigError, match="dtype"):
        _run(tasks, name, photo.astype(dtype))


@pytest.mark.parametrize("name", TASKS)
def test_float_refusal_says_how_to_convert(tasks, photo, name):
    with pytest.raises(edgecv.ConfigError, match=r"astype\(np.uint8\)"):
        _run(tasks, name, photo.astype(np.float32) / 255)


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 0, 3), (10, 10, 0), (0, 0)])
def test_zero_size_images_are_refused(tasks, name, shape):
    with pytest.raises(edgecv.ConfigError, match="empty"):
        _run(tasks, name, np.zeros(shape, np.uint8))


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("shape", [(1, 180, 240, 3), (180 * 240 * 3,), (180, 240, 2), (180, 240, 5), (2, 2, 2, 3)])
def test_other_shapes_are_refused(tasks, name, shape):
    with pytest.raises(edgecv.ConfigError, match="shape"):
        _run(tasks, name, np.zeros(shape, np.uint8))


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("value", [None, [[0, 0, 0]], b"\x89PNG", 3, np.uint8(7)])
def test_non_arrays_are_refused(tasks, name, value):
    with pytest.raises(edgecv.ConfigError):
        _run(tasks, name, value)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("case", ["missing", "folder", "empty", "corrupt", "huge_header", "text"])
def test_bad_image_files_are_refused(tasks, tmp_path, name, case):
    path = tmp_path / f"{case}.png"
    if case == "folder":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    elif case == "huge_header":  # 100000 x 100000: beyond OpenCV's decoding limit (cv2.error before the fix)
        path.write_bytes(_png_claiming(100_000, 100_000))
    elif case == "text":
        path.write_text("not an image\n")
    with pytest.raises(edgecv.ConfigError, match="image"):
        _run(tasks, name, path)


@pytest.mark.parametrize("name", TASKS)
def test_an_image_file_gives_the_same_result_as_its_pixels(tasks, photo, tmp_path, name):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), photo)
    assert _values(_run(tasks, name, path)) == _values(_run(tasks, name, photo))
    assert _values(_run(tasks, name, str(path))) == _values(_run(tasks, name, photo))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 640, 3), (480, 1, 3), (4320, 7680, 3)])
def test_tiny_thin_and_8k_images_run_and_map_back_to_their_size(tasks, photo, shape):
    image = cv2.resize(photo, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    h, w = shape[:2]
    assert len(_run(tasks, "classify", image).categories) == 5
    for d in _run(tasks, "detect", image).detections:
        assert 0 <= d.box.x1 <= d.box.x2 <= w and 0 <= d.box.y1 <= d.box.y2 <= h
    result = _run(tasks, "segment", image)
    assert result.mask.shape == (h, w)
    vector = np.asarray(_run(tasks, "embed", image).vector)
    assert vector.shape == (16,) and np.isfinite(vector).all()


def test_model_preprocess_follows_the_same_rules(fixtures, photo):
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        m.preprocess(photo)
        expected = m.input_buffer(0).copy()
        m.preprocess(np.dstack([photo, photo[:, :, :1]]))
        np.testing.assert_array_equal(m.input_buffer(0), expected)
        m.preprocess(photo[:, :, ::-1], color="rgb")
        np.testing.assert_array_equal(m.input_buffer(0), expected)
        gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
        m.preprocess(gray)
        gray_input = m.input_buffer(0).copy()
        m.preprocess(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        np.testing.assert_array_equal(m.input_buffer(0), gray_input)
        for bad, match in ((photo.astype(np.float32), "dtype"), (np.zeros((0, 4, 3), np.uint8), "empty"),
                           (photo[None], "shape"), ("missing.jpg", "does not exist")):
            with pytest.raises(edgecv.ConfigError, match=match):
                m.preprocess(bad)
        with pytest.raises(edgecv.ConfigError, match="color"):
            m.preprocess(photo, color="bgra")
