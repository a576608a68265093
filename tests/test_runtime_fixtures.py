"""Both backends on the real fixtures, with the test's own minimal preprocessing."""

import tracemalloc

import cv2
import numpy as np
import pytest

import edgecv


@pytest.mark.device
def test_quant_mobilenet_v2_cat_via_model(fixtures):
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        assert m.backend == "litert"
        assert m.inputs[0].shape == (1, 224, 224, 3) and m.inputs[0].dtype == "uint8"
        assert m.inputs[0].quantization.scale == (0.0078125,) and m.inputs[0].quantization.zero_point == (128,)
        assert m.inputs[0].layout == "nhwc"
        image = cv2.imread(str(fixtures / "images" / "cat.bmp"))
        rgb = cv2.cvtColor(cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        m.input_buffer(0)[0] = rgb
        scores = m.invoke()[0][0]
        assert scores.dtype == np.float32  # quantized output dequantized
        labels = edgecv.read_labels(fixtures / "classification" / "imagenet_labels_1001.txt")
        top = int(np.argmax(scores))
        assert labels[top] == "Egyptian cat"
        assert abs(float(scores[top]) - 0.84) <= 0.03
        # the raw uint8 output is still there
        assert m.raw_output(0).dtype == np.uint8


@pytest.mark.device
def test_preprocess_copy_path_matches_manual(fixtures):
    """The model's own preprocessor (from the packed TFLite metadata) feeds exactly what a hand loop feeds."""
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        assert m.manifest.source == "tflite-metadata"
        assert m.manifest.labels[286] == "Egyptian cat"
        image = cv2.imread(str(fixtures / "images" / "cat.bmp"))
        m.preprocess(image)
        assert m.preprocessor().mode == "copy"
        expected = cv2.cvtColor(cv2.resize(image, (224, 224)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(m.input_buffer(0)[0], expected)


@pytest.mark.device
def test_ultraface_onnx_output_shapes(fixtures):
    with edgecv.load(fixtures / "detection" / "ultraface_rfb_320.onnx") as m:
        assert m.backend == "onnxruntime"
        assert m.accelerators == ("CPUExecutionProvider",)
        assert m.inputs[0].shape == (1, 3, 240, 320) and m.inputs[0].layout == "nchw"
        pre = m.preprocessor(0, {"mean": 127.0, "std": 128.0, "color": "rgb"})
        transform = pre(str(fixtures / "images" / "faces_group_1.jpg"))
        assert transform.input_width == 320 and transform.input_height == 240
        scores, boxes = m.invoke()
        assert scores.shape == (1, 4420, 2) and boxes.shape == (1, 4420, 4)
        np.testing.assert_allclose(scores[0].sum(axis=1), 1.0, atol=1e-4)  # softmax rows
        assert int((scores[0, :, 1] > 0.7).sum()) > 10  # a group photo has many faces


@pytest.mark.device
def test_steady_state_invoke_allocates_nothing_and_reuses_outputs(fixtures):
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        first = m.invoke()
        for _ in range(5):
            m.invoke()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        start_current, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ids = set()
        for _ in range(200):
            out = m.invoke()
            ids.add(id(out[0]))
        _, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        assert (peak - start_current) < 64 * 1024
        assert grown / 200 < 64 * 1024
        assert ids == {id(first[0])}


@pytest.mark.device
def test_steady_state_onnx_invoke(fixtures):
    with edgecv.load(fixtures / "detection" / "ultraface_rfb_320.onnx") as m:
        first = m.invoke()
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(200):
            out = m.invoke()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak - start < 64 * 1024
        assert out[0] is first[0] and out[1] is first[1]


@pytest.mark.device
def test_letterbox_transform_maps_boxes_back(fixtures):
    with edgecv.load(fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite") as m:
        pre = m.preprocessor(0, {"resize": "letterbox", "pad_value": 0})
        image = np.full((100, 200, 3), 255, np.uint8)
        t = pre(image)
        assert (t.pad_x, t.pad_y) == (0, 56) and t.scale_x == pytest.approx(224 / 200)
        buf = m.input_buffer(0)[0]
        assert buf[:56].max() == 0 and buf[56 + 112:].max() == 0 and buf[60:160].min() == 255
        # a box covering the whole letterboxed content maps to the whole original image
        boxes = np.array([[0.0, 56.0, 224.0, 168.0]])
        np.testing.assert_allclose(t.boxes_to_original(boxes, normalized=False), [[0, 0, 200, 100]], atol=1e-6)
