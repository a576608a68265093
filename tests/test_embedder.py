"""Embedder on tiny in-process ONNX models (NCHW and NHWC), distances, and model-fit errors."""

from __future__ import annotations

import numpy as np
import pytest

import edgecv
from edgecv.metrics_embedding import cosine_distance, distance_matrix, euclidean_distance
from edgecv.tasks.embedder import Embedder

# embedding = channel means (pixel / 255, RGB) @ W: (r, g, b, r + g + b)
W = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]], np.float32)


def embedding_model(tmp_path, layout: str = "nchw"):
    """A tiny ONNX embedder: average colour -> 4-D vector (r, g, b, r+g+b)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    if layout == "nchw":
        shape = [1, 3, 8, 8]
        nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["flat"], axis=1)]
    else:
        shape = [1, 8, 8, 3]
        nodes = [helper.make_node("ReduceMean", ["input"], ["flat"], axes=[1, 2], keepdims=0)]
    nodes.append(helper.make_node("MatMul", ["flat", "w"], ["embedding"]))
    graph = helper.make_graph(nodes, f"emb_{layout}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(W, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / f"emb_{layout}.onnx"
    onnx.save(model, str(path))
    return path


def solid(rgb, size=(12, 10)):
    """An HxWx3 BGR image of one RGB colour."""
    return np.full((size[1], size[0], 3), rgb[::-1], np.uint8)


PRE = {"mean": 0.0, "std": 255.0, "color": "rgb"}


def test_embed_nchw_and_nhwc_agree_and_are_unit_length(tmp_path):
    a = Embedder(embedding_model(tmp_path, "nchw"), preprocessing=PRE)
    b = Embedder(embedding_model(tmp_path, "nhwc"), preprocessing=PRE, backend="onnxruntime", target="cpu")
    assert a.preprocessor.layout == "nchw" and b.preprocessor.layout == "nhwc"
    image = solid((255, 0, 0))
    ea, eb = a.embed(image), b(image)
    assert ea.vector.dtype == np.float32 and ea.vector.shape == (4,) and ea.dim == 4
    expected = np.array([1, 0, 0, 1], np.float32) / np.sqrt(2)
    np.testing.assert_allclose(ea.vector, expected, atol=1e-6)
    np.testing.assert_allclose(eb.vector, expected, atol=1e-6)
    assert abs(float(np.linalg.norm(ea.vector)) - 1.0) < 1e-6
    assert ea.normalized is True
    data = ea.to_dict()
    assert all(type(v) is float for v in data["vector"]) and data["timing"]["inference_ms"] > 0


def test_raw_embedding_and_rgb_color(tmp_path):
    raw = Embedder(embedding_model(tmp_path), l2_normalize=False, preprocessing=PRE)
    e = raw(solid((51, 102, 255)))
    np.testing.assert_allclose(e.vector, [0.2, 0.4, 1.0, 1.6], atol=1e-6)
    assert e.normalized is False
    rgb_image = np.full((10, 12, 3), (51, 102, 255), np.uint8)
    np.testing.assert_allclose(raw(rgb_image, color="rgb").vector, e.vector, atol=1e-7)


def test_vectors_are_not_reused_between_calls(tmp_path):
    emb = Embedder(embedding_model(tmp_path), preprocessing=PRE)
    first = emb(solid((255, 0, 0)))
    second = emb(solid((0, 0, 255)))
    assert not np.shares_memory(first.vector, second.vector)
    np.testing.assert_allclose(first.vector, np.array([1, 0, 0, 1]) / np.sqrt(2), atol=1e-6)


def test_distances():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    assert cosine_distance(a, b) == pytest.approx(1.0)
    assert cosine_distance(a, 3 * a) == pytest.approx(0.0)
    assert cosine_distance(a, -a) == pytest.approx(2.0)
    assert euclidean_distance(a, b) == pytest.approx(np.sqrt(5.0))
    assert type(cosine_distance(a, b)) is float
    d = distance_matrix([a, b], [a, b, a + b], "euclidean")
    np.testing.assert_allclose(d, [[0, np.sqrt(5), 2], [np.sqrt(5), 0, 1]], atol=1e-12)
    with pytest.raises(edgecv.ConfigError, match="lengths differ"):
        cosine_distance(a, np.ones(3))
    with pytest.raises(edgecv.ConfigError, match="NaN"):
        euclidean_distance(a, np.array([np.nan, 0.0]))


@pytest.mark.device
def test_incompatible_models(fixtures):
    with pytest.raises(edgecv.IncompatibleModelError) as info:
        Embedder(fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite")
    assert "expected one embedding output" in str(info.value) and "TFLite_Detection_PostProcess" in str(info.value)
    with pytest.raises(edgecv.IncompatibleModelError) as info:
        Embedder(fixtures / "detection" / "ultraface_rfb_320.onnx")
    assert "'scores'[1, 4420, 2]" in str(info.value) and "'boxes'[1, 4420, 4]" in str(info.value)


@pytest.mark.device
@pytest.mark.parametrize("name", ["mobilenet_v2_1.0_224_quant.tflite", "mobilenet_v1_0.25_224_float.tflite"])
def test_a_classifier_is_not_an_embedder(fixtures, name):
    """Quantized like a softmax (uint8, scale 1/256) or summing to 1 on a probe image: a classifier, refused."""
    with pytest.raises(edgecv.IncompatibleModelError, match="holds class probabilities, not an embedding"):
        Embedder(fixtures / "classification" / name)
