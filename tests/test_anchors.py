"""Anchor generation against the real SSD and UltraFace models, and the SSD decode path end to end."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from edgecv import nms
from edgecv.anchors import AnchorSpec, generate_anchors
from edgecv.boxes import BoxCoder, BoxDecoder, decode_center_size
from edgecv.errors import ConfigError
from edgecv.formats.tflite import parse_tflite, tensor_data

SSD = "detection/ssd_mobilenet_v1_coco_quant_postprocess.tflite"


def _tensor(model, name):
    return next(t for t in model.main.tensors if t.name == name)


@pytest.fixture(scope="module")
def ssd_model(fixtures):
    data = (fixtures / SSD).read_bytes()
    return data, parse_tflite(data)


@pytest.mark.device
def test_ssd_mobilenet_v1_anchors_match_the_model(ssd_model):
    data, model = ssd_model
    stored = _tensor(model, "anchors")
    q = tensor_data(data, stored)
    assert q.shape == (1917, 4) and q.dtype == np.uint8     # the fixture stores them quantized
    scale, zero = stored.quantization.scale[0], stored.quantization.zero_point[0]
    spec = AnchorSpec.ssd(((19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)), min_scale=0.2, max_scale=0.95,
                          aspect_ratios=(1.0, 2.0, 0.5, 3.0, 1.0 / 3.0), reduce_boxes_in_lowest_layer=True)
    assert spec == AnchorSpec.ssd_mobilenet_v1_300()
    ours = spec.generate()
    assert spec.num_anchors == 1917 and ours.shape == (1917, 4) and ours.dtype == np.float32
    # every one of the 7668 values quantizes to exactly the stored byte
    requantized = np.clip(np.round(ours.astype(np.float64) / scale) + zero, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(requantized, q)
    assert np.abs(ours - (q.astype(np.float64) - zero) * scale).max() <= scale / 2


@pytest.mark.device
def test_ssd_layer_box_specs():
    specs = AnchorSpec.ssd_mobilenet_v1_300().layer_box_specs()
    assert [len(s) for s in specs] == [3, 6, 6, 6, 6, 6]
    assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
    scales = [0.2 + 0.75 * i / 5 for i in range(6)]
    assert specs[1][:5] == [(scales[1], a) for a in (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)]
    assert specs[1][5] == (math.sqrt(scales[1] * scales[2]), 1.0)
    assert specs[5][5] == (math.sqrt(0.95 * 1.0), 1.0)                      # last layer interpolates to 1.0


@pytest.mark.device
def test_ssd_grid_by_hand_non_square_strides_offsets():
    # 2x3 grid on a 200 (h) x 300 (w) input; base anchor normalised to the short side
    spec = AnchorSpec.ssd(((2, 3),), scales=(0.5,), aspect_ratios=(2.0,), interpolated_scale_aspect_ratio=0.0,
                          reduce_boxes_in_lowest_layer=False, image_width=300, image_height=200,
                          anchor_strides=((100.0, 100.0),), anchor_offsets=((50.0, 40.0),))
    a = spec.generate()
    assert a.shape == (6, 4)
    h, w = 0.5 / math.sqrt(2.0), 0.5 * math.sqrt(2.0) * 200 / 300
    np.testing.assert_allclose(a[0], [50 / 200, 40 / 300, h, w], rtol=1e-6)
    np.testing.assert_allclose(a[4], [150 / 200, 140 / 300, h, w], rtol=1e-6)   # row 1, column 1
    np.testing.assert_allclose(spec.generate(order="xywh")[4], [140 / 300, 150 / 200, w, h], rtol=1e-6)


@pytest.mark.device
def test_ultraface_priors_count_order_and_clipping():
    spec = AnchorSpec.ultraface(320)
    p = spec.generate()
    assert spec.num_anchors == 4420 and p.shape == (4420, 4) and spec.order == "xywh"
    # layer 0: 30 rows x 40 columns x 3 sizes; row j, then column i, then size
    np.testing.assert_allclose(p[0], [0.5 / 40, 0.5 / 30, 10 / 320, 10 / 240], rtol=1e-6)
    np.testing.assert_allclose(p[2], [0.5 / 40, 0.5 / 30, 24 / 320, 24 / 240], rtol=1e-6)
    np.testing.assert_allclose(p[3], [1.5 / 40, 0.5 / 30, 10 / 320, 10 / 240], rtol=1e-6)
    np.testing.assert_allclose(p[3 * 40], [0.5 / 40, 1.5 / 30, 10 / 320, 10 / 240], rtol=1e-6)
    first_l1 = 30 * 40 * 3
    np.testing.assert_allclose(p[first_l1], [0.5 / 20, 0.5 / 15, 32 / 320, 32 / 240], rtol=1e-6)
    # last prior: layer 3 (4 x 5), row 3, column 4, size 256: height 256/240 clamps to 1
    np.testing.assert_allclose(p[-1], [4.5 / 5, 3.5 / 4, 256 / 320, 1.0], rtol=1e-6)
    assert p.min() >= 0 and p.max() <= 1
    unclipped = AnchorSpec.from_min_sizes(spec.feature_maps, spec.min_sizes, image_width=320, image_height=240,
                                          clip=False).generate()
    assert unclipped[-1, 3] == pytest.approx(256 / 240)


def test_ultraface_priors_equal_the_rfb_model_constants(fixtures):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(fixtures / "detection/ultraface_rfb_320.onnx"))
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node
              if n.op_type == "Constant"}
    shaped = [c[0] for c in consts.values() if c.shape == (1, 4420, 2)]
    centres = [c for c in shaped if c[0, 0] == np.float32(0.5 / 40)]
    sizes = [c for c in shaped if c[0, 0] == np.float32(10 / 320)]
    assert centres and sizes
    p = AnchorSpec.ultraface(320).generate()
    np.testing.assert_array_equal(p[:, :2], centres[0])
    np.testing.assert_array_equal(p[:, 2:], sizes[0])


def test_ultraface_decoder_matches_the_rfb_models_own_decoding(fixtures):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper

    model = onnx.load(str(fixtures / "detection/ultraface_rfb_320.onnx"))
    # trace the in-graph decoding back to its raw input: centre = Slice(raw) * variance * size + prior centre
    producer = {out: n for n in model.graph.node for out in n.output}
    centre = next(n.output[0] for n in model.graph.node if n.op_type == "Constant"
                  and np.array_equal(numpy_helper.to_array(n.attribute[0].t).reshape(-1)[:2],
                                     np.float32([0.5 / 40, 0.5 / 30])))
    add = next(n for n in model.graph.node if n.op_type == "Add" and centre in n.input)
    node = producer[next(i for i in add.input if i != centre)]
    while node.op_type != "Slice":
        node = producer[next(i for i in node.input if i in producer and producer[i].op_type != "Constant")]
    decode_input = node.input[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(decode_input, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32)
    _, boxes, raw = session.run(["scores", "boxes", decode_input], {session.get_inputs()[0].name: x})
    ours = decode_center_size(raw, AnchorSpec.ultraface(320).generate(), variances=(0.1, 0.2), order="xywh")
    np.testing.assert_allclose(ours, boxes[0], rtol=0, atol=3e-7)


def _tflite_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            pytest.skip("no TFLite interpreter (ai-edge-litert or tflite-runtime) installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    return interpreter


@pytest.mark.device
def test_decode_and_nms_reproduce_tflite_detection_postprocess(fixtures, ssd_model):
    """Raw SSD tensors -> BoxDecoder (model anchors) -> class-agnostic NMS == the model's own post-processing."""
    import cv2

    data, model = ssd_model
    interpreter = _tflite_interpreter(fixtures / SSD)
    image = cv2.imread(str(fixtures / "images/cats_and_dogs.jpg"))
    x = cv2.resize(image, (300, 300))[:, :, ::-1][None].copy()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    details = {d["name"]: d for d in interpreter.get_tensor_details()}

    def dequantized(name):
        d = details[name]
        scale, zero = d["quantization"]
        return (interpreter.get_tensor(d["index"]).astype(np.float32) - zero) * np.float32(scale)

    encodings, scores = dequantized("Squeeze"), dequantized("convert_scores")[0]
    stored = _tensor(model, "anchors")
    anchors = (tensor_data(data, stored).astype(np.float32) - stored.quantization.zero_point[0]) \
        * np.float32(stored.quantization.scale[0])
    boxes, classes, out_scores, count = (interpreter.get_tensor(d["index"])
                                         for d in interpreter.get_output_details())
    n = int(count[0])
    assert n == 10

    decoded = BoxDecoder(anchors, BoxCoder(order="yxhw", scales=(10, 10, 5, 5))).decode(encodings)
    # the op's fast path: best non-background class per anchor, one class-agnostic NMS (IoU 0.6)
    best = scores[:, 1:].max(axis=1)
    label = scores[:, 1:].argmax(axis=1)
    keep = nms(decoded, best, iou_threshold=0.6, score_threshold=1e-8, max_output=n)
    # op emits ymin, xmin, ...; newer runtimes decode in double and agree bit for bit, tflite-runtime 2.14
    # in float32 (within an ulp or two)
    np.testing.assert_allclose(decoded[keep][:, [1, 0, 3, 2]], boxes[0, :n], rtol=0, atol=3e-7)
    np.testing.assert_array_equal(label[keep], classes[0, :n])
    np.testing.assert_array_equal(best[keep], out_scores[0, :n])
    # the generated spec's anchors give the same detections to within the anchor quantization
    regenerated = decode_center_size(encodings, AnchorSpec.ssd_mobilenet_v1_300().generate())
    np.testing.assert_allclose(regenerated[keep], decoded[keep], atol=0.01)


@pytest.mark.device
def test_anchor_spec_dict_round_trip_through_json():
    for spec in (AnchorSpec.ssd_mobilenet_v1_300(), AnchorSpec.ultraface(640),
                 AnchorSpec.ssd(((4, 4), (2, 2)), scales=(0.3, 0.6), anchor_strides=((8, 8), (16, 16)),
                                image_width=32, image_height=32)):
        again = AnchorSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec
        np.testing.assert_array_equal(generate_anchors(spec.to_dict()), spec.generate())
    assert "min_sizes" not in AnchorSpec.ssd_mobilenet_v1_300().to_dict()
    assert "aspect_ratios" not in AnchorSpec.ultraface().to_dict()


@pytest.mark.device
@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="grid", feature_maps=((2, 2),)), "unknown anchor kind"),
    (dict(kind="ssd", feature_maps=()), "non-empty"),
    (dict(kind="ssd", feature_maps=((2, 0),)), "positive integers"),
    (dict(kind="ssd", feature_maps=((2, 2),)), "scales=\\(s,\\)"),
    (dict(kind="ssd", feature_maps=((2, 2), (1, 1)), scales=(0.2,)), "one per layer"),
    (dict(kind="ssd", feature_maps=((2, 2), (1, 1)), aspect_ratios=(1.0, -2.0)), "> 0"),
    (dict(kind="ssd", feature_maps=((2, 2), (1, 1)), min_sizes=((8,), (16,))), "do not apply"),
    (dict(kind="ssd", feature_maps=((2, 2), (1, 1)), anchor_strides=((8, 8), (16, 16))), "pixels"),
    (dict(kind="ssd", feature_maps=((2, 2), (1, 1)), reduce_boxes_in_lowest_layer="no"), "True or False"),
    (dict(kind="min_sizes", feature_maps=((2, 2),), min_sizes=((8,),)), "image_width"),
    (dict(kind="min_sizes", feature_maps=((2, 2),), image_width=32, image_height=32), "needs min_sizes"),
    (dict(kind="min_sizes", feature_maps=((2, 2), (1, 1)), min_sizes=((8,),), image_width=32, image_height=32),
     "one non-empty size list per feature map"),
    (dict(kind="min_sizes", feature_maps=((2, 2),), min_sizes=((8,),), image_width=32), "both"),
])
def test_anchor_spec_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        AnchorSpec(**kwargs)


@pytest.mark.device
def test_anchor_spec_other_errors():
    with pytest.raises(ConfigError, match="unknown anchor spec fields"):
        AnchorSpec.from_dict({"kind": "ssd", "feature_maps": [[1, 1]], "scale": 1})
    with pytest.raises(ConfigError, match="UltraFace defines"):
        AnchorSpec.ultraface(300)
    with pytest.raises(ConfigError, match="order"):
        AnchorSpec.ultraface().generate(order="cxcywh")
