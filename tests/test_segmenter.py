"""Segmenter on the DeepLabV3 fixtures, plus letterbox, NCHW logits and drawing on tiny models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import edgecv
from edgecv.draw import color_palette, draw_mask
from edgecv.tasks.segmenter import Segmenter, class_areas

FLOAT = ("segmentation", "deeplabv3_257_float.tflite")
QUANT = ("segmentation", "deeplabv3_mnv2_pascal_quant.tflite")


@pytest.mark.device
def test_deeplab_float_matches_golden_mask(fixtures):
    with Segmenter(fixtures.joinpath(*FLOAT), backend="litert", target="cpu") as seg:
        assert seg.output_form == "logits" and seg.layout == "nhwc" and seg.num_classes == 21
        result = seg.segment(fixtures / "segmentation" / "deeplabv3_input.jpg")
    golden = cv2.imread(str(fixtures / "segmentation" / "deeplabv3_golden.png"), cv2.IMREAD_UNCHANGED)
    assert result.mask.shape == golden.shape and result.mask.dtype == np.uint8
    agreement = float(np.mean(result.mask.astype(np.int32) * 10 == golden))
    assert agreement >= 0.99
    by_label = {a.label: a for a in result.areas}
    assert set(by_label) >= {"background", "person", "horse"}
    assert sum(a.pixels for a in result.areas) == golden.size
    assert abs(sum(a.fraction for a in result.areas) - 1.0) < 1e-9
    assert all(type(a.pixels) is int and type(a.fraction) is float for a in result.areas)
    pixels = [a.pixels for a in result.areas]
    assert pixels == sorted(pixels, reverse=True)
    person = int(np.count_nonzero(result.mask == 15))
    assert by_label["person"].pixels == person


@pytest.mark.device
def test_deeplab_quant_argmax_model_on_bird(fixtures):
    seg = Segmenter(fixtures.joinpath(*QUANT), labels=fixtures / "segmentation" / "pascal_voc_labels.txt")
    assert seg.output_form == "class_ids"
    result = seg(fixtures / "segmentation" / "bird.bmp")
    expected = cv2.imread(str(fixtures / "segmentation" / "bird_mask.bmp"), cv2.IMREAD_UNCHANGED)
    equal = int(np.count_nonzero(result.mask == expected))
    score = equal / (2 * expected.size - equal)
    assert score > 0.90
    assert result.areas[1].label == "bird"


@pytest.mark.device
def test_mask_is_resized_to_original_with_nearest(fixtures):
    image = cv2.imread(str(fixtures / "segmentation" / "deeplabv3_input.jpg"))
    big = cv2.resize(image, (514, 385), interpolation=cv2.INTER_LINEAR)
    with Segmenter(fixtures.joinpath(*FLOAT)) as seg:
        result = seg(big)
    assert result.mask.shape == (385, 514)
    assert set(np.unique(result.mask).tolist()) <= set(range(21))  # nearest: no blended ids
    assert sum(a.pixels for a in result.areas) == 385 * 514


@pytest.mark.device
def test_overlay_and_palette(fixtures):
    palette = color_palette(256)
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0]
    assert palette[15].tolist() == [192, 128, 128]  # VOC 'person'
    assert len({tuple(c) for c in palette.tolist()}) == 256
    image = cv2.imread(str(fixtures / "segmentation" / "deeplabv3_input.jpg"))
    with Segmenter(fixtures.joinpath(*FLOAT)) as seg:
        result = seg(image)
        over = seg.overlay(image, result.mask, 0.5)
    assert over.shape == image.shape and over.dtype == np.uint8
    bg = result.mask == 0
    assert np.array_equal(over[bg], image[bg])  # background untouched
    person = result.mask == 15
    expected = np.clip(np.rint(0.5 * image[person].astype(np.float64) + 0.5 * np.array([128, 128, 192])), 0, 255)
    assert np.abs(over[person].astype(int) - expected).max() <= 1  # BGR order of (192, 128, 128)
    with pytest.raises(edgecv.ConfigError, match="mask is"):
        draw_mask(image, result.mask[:10])


@pytest.mark.device
def test_class_areas_counts():
    mask = np.array([[0, 1, 1], [3, 3, 3]], np.uint8)
    assert class_areas(mask).tolist() == [1, 2, 0, 3]
    assert class_areas(mask.astype(np.int32), 6).tolist() == [1, 2, 0, 3, 0, 0]
    with pytest.raises(edgecv.ConfigError):
        class_areas(mask.astype(np.float32))


def _onnx_nchw_logits(tmp_path):
    """NCHW model: logits[c] = x[c] for 3 classes (the colour channel that is largest wins)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"])], "seg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 4, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "seg.onnx"
    onnx.save(model, str(path))
    return path


def test_nchw_logits_and_letterbox(tmp_path):
    path = _onnx_nchw_logits(tmp_path)
    # 12x4 image, left half red, right half blue, letterboxed into 6x4 (scale 0.5 -> 6x2, padded rows)
    image = np.zeros((4, 12, 3), np.uint8)
    image[:, :6] = (0, 0, 255)   # BGR red
    image[:, 6:] = (255, 0, 0)   # BGR blue
    seg = Segmenter(path, labels=["r", "g", "b"],
                    preprocessing={"mean": 0.0, "std": 255.0, "resize": "letterbox", "pad_value": 0})
    assert seg.layout == "nchw"
    result = seg(image)
    assert result.mask.shape == (4, 12)
    assert np.all(result.mask[:, :6] == 0) and np.all(result.mask[:, 6:] == 2)
    assert [(a.label, a.pixels) for a in result.areas] == [("r", 24), ("b", 24)]


@pytest.mark.device
def test_incompatible_model(fixtures):
    with pytest.raises(edgecv.IncompatibleModelError) as info:
        Segmenter(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite")
    assert "expected a mask output" in str(info.value) and "MobilenetV2/Predictions/Softmax" in str(info.value)


def test_quantized_logits_output_is_segmented(tmp_path):
    """Full-integer models (int8 or uint8 I/O) give quantized logits [1,H,W,C]; they are argmaxed like float ones."""
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    inp = keras.Input((16, 16, 3), batch_size=1)
    logits = keras.layers.Conv2D(3, 1, kernel_initializer=keras.initializers.Constant(
        [[[[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]]]), use_bias=False)(inp)
    model = keras.Model(inp, logits)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 16, 16, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path = tmp_path / "seg_int8.tflite"
    path.write_bytes(conv.convert())
    seg = Segmenter(str(path), preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"})
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :8, 2] = 255   # red (RGB channel 0) on the left: logit 0 wins
    image[:, 8:, 0] = 255   # blue (RGB channel 2) on the right: logit 2 wins
    mask = seg.segment(image, color="bgr").mask
    assert (mask[:, :6] == 0).all() and (mask[:, 10:] == 2).all()


def test_a_pose_model_is_not_a_segmenter(tmp_path):
    """MoveNet's output [1, 1, 17, 3] (17 keypoints: y, x, score) is a 4-D float tensor but no per-pixel map."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    const = [helper.make_tensor(n, TensorProto.INT64, [4], v) for n, v in (("starts", [0, 0, 0, 0]),
                                                                           ("ends", [1, 1, 17, 3]))]
    graph = helper.make_graph([helper.make_node("Slice", ["input", "starts", "ends"], ["output_0"])], "movenet_like",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 192, 192, 3])],
                              [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, [1, 1, 17, 3])],
                              initializer=const)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "pose.onnx"
    onnx.save(model, str(path))
    with pytest.raises(edgecv.IncompatibleModelError, match=r"is a 1x17 grid, not a per-pixel map of the 192x192"):
        Segmenter(path)
