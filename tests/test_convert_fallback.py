"""The int8 fallback loop on a model built here that quantizes badly in one known layer.

The model's "hot" branch fires only on bright pixels (ReLU(mean(x) - 0.9) x 40) and decides the class. The
calibration images are noise (no bright patch), so that branch's calibrated range is about zero; on the validation images
with bright patches its values are clipped away and int8 always answers "dark". The report must name the
clipped layer, the loop must keep it in float, and the fixed artifact must be within the budget and
recommended. Also: the report JSON fields, the opt-out, the cap, and collapsed outputs.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import converters  # noqa: E402
import edgecv  # noqa: E402
from converters.collapse import collapse_reason  # noqa: E402
from converters.fallback import float_batches  # noqa: E402
from converters.quant_stats import TensorQuant, TensorStats, accumulate  # noqa: E402
from converters.validate import TaskOutputs  # noqa: E402

SIZE = 16


def _model(path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32), "w_base"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b_base"),
             numpy_helper.from_array(np.full((1, 3, 1, 1), 1 / 3, np.float32), "w_hot"),
             numpy_helper.from_array(np.array([-0.9], np.float32), "b_hot"),
             numpy_helper.from_array(np.array(40.0, np.float32), "gain"),
             numpy_helper.from_array(np.array([[0.0, 1.0]] + [[0.0, 0.0]] * 4, np.float32), "w_fc"),
             numpy_helper.from_array(np.array([0.5, 0.0], np.float32), "b_fc")]
    nodes = [helper.make_node("Conv", ["image", "w_base", "b_base"], ["base0"], name="base_conv")]
    for i in range(1, 7):                    # a deeper float branch, so the loop's cap leaves room
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 1, 1)).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [f"base{i - 1}", f"w{i}"], [f"base{i}"], name=f"conv{i}"))
    nodes += [helper.make_node("Relu", ["base6"], ["base_relu"], name="base_relu"),
             helper.make_node("Conv", ["image", "w_hot", "b_hot"], ["hot_pre"], name="hot_conv"),
             helper.make_node("Relu", ["hot_pre"], ["hot_relu"], name="hot_relu"),
             helper.make_node("Mul", ["hot_relu", "gain"], ["hot"], name="hot_mul"),
             helper.make_node("Concat", ["hot", "base_relu"], ["both"], axis=1, name="concat"),
             helper.make_node("GlobalAveragePool", ["both"], ["pooled"], name="pool"),
             helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["scores"], axis=1, name="softmax")]
    graph = helper.make_graph(nodes, "hot", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                           [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _images(n, seed, bright):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)       # the hot branch stays about 0
    for i in range(n):
        if bright and i % 2 == 0:
            images[i, 2:12, 2:12] = 255                                      # a bright patch: class 1
    return images


def _convert(tmp_path, **kwargs):
    return converters.convert(_model(tmp_path / "hot.onnx"), task="classification", target=None, precision="int8",
                              calibration=_images(24, 1, bright=False), validation=_images(20, 2, bright=True),
                              preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"}, labels=["dark", "bright"],
                              output_dir=tmp_path / "out", name="hot", **kwargs)


def test_loop_finds_the_clipped_layer_and_the_budget_then_holds(tmp_path):
    result = _convert(tmp_path)
    report = result.report
    int8 = report.find("onnx", "int8")
    steps = int8.fallback
    assert steps[0]["step"].startswith("plain int8") and not steps[0]["within_budget"]
    assert steps[0]["metric"] <= 0.6                       # the bright half is lost in plain int8
    assert int8.within_budget and int8.drop_points <= 1.0
    assert report.recommended == "hot_int8.onnx"
    hot_path = {"hot_conv", "hot_mul", "concat", "pool", "flatten", "fc", "softmax"}
    assert int8.kept_float and set(int8.kept_float) <= hot_path        # only the clipped branch stays float
    debug = int8.quant_debug
    clipped = debug["clipped_layers"]
    assert "hot_mul" in clipped
    assert debug["layers"][0]["layer"] in clipped          # the worst layer is a clipped one
    assert not any(e["layer"].startswith("conv") for e in debug["layers"] if e["layer"] in clipped)
    assert any("calibration ranges do not cover the validation data" in n and "hot_mul" in n for n in int8.notes)
    with edgecv.load(result.artifacts[0].path) as m:
        assert m.manifest.quantization["kept_float"] == list(int8.kept_float)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hot_int8.onnx", "hot_report.json"]  # no steps left
    saved = json.loads((tmp_path / "out" / "hot_report.json").read_text())
    entry = next(a for a in saved["artifacts"] if a["name"] == "hot_int8.onnx")
    for key in ("quant_debug", "kept_float", "fallback", "collapsed", "delegate"):
        assert key in entry
    assert {"layer", "op_type", "rmse_scale", "sqnr_db", "outside_validation", "range"} <= set(entry["quant_debug"]["layers"][0])
    assert entry["quant_debug"]["outputs_sqnr_db"].keys() == {"scores"}
    text = report.table()
    assert "worst layers [hot_int8.onnx]" in text and "fallback loop [hot_int8.onnx]" in text


def test_opt_out_keeps_plain_int8_and_says_so(tmp_path):
    report = _convert(tmp_path, float_fallback=False).report
    int8 = report.find("onnx", "int8")
    assert not int8.within_budget and int8.kept_float == () and report.recommended is None
    assert int8.quant_debug is not None and "hot_mul" in int8.quant_debug["clipped_layers"]
    assert any("float_fallback=False" in n for n in int8.notes)


def test_bad_loop_options_are_config_errors(tmp_path):
    with pytest.raises(edgecv.errors.ConfigError, match="max_float_share"):
        _convert(tmp_path, max_float_share=1.5)
    with pytest.raises(edgecv.errors.ConfigError, match="float_fallback"):
        _convert(tmp_path, float_fallback="yes")


def test_float_batches_grow_and_stop_at_the_cap():
    assert float_batches(list("abcdefgh"), 5) == [("a",), ("a", "b"), ("a", "b", "c", "d"), tuple("abcde")]
    assert float_batches(list("ab"), 0) == []


def test_clipping_is_measured_against_the_calibrated_range():
    q = TensorQuant("t", "layer", "Conv", scale=0.01, zero_point=0)          # range [-1.28, 1.27]
    inside, clipped = TensorStats(), TensorStats()
    accumulate(inside, np.linspace(-1, 1, 1001), q)
    accumulate(clipped, np.linspace(-2, 2, 1001), q)
    assert inside.share_outside() == 0 and abs(inside.rmse_scale(0.01) - 0.29) < 0.02
    assert 0.3 < clipped.share_outside() < 0.4 and clipped.rmse_scale(0.01) > 10


def test_collapsed_outputs_are_named():
    boxes = np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    ref = TaskOutputs(((np.ones((2, 4)), np.array([0.9, 0.8]), np.zeros(2, np.int64)),), {"scores": np.array([0.9, 0.1])})
    empty = TaskOutputs((boxes,), {"scores": np.array([0.3, 0.2])})
    assert "no detections" in collapse_reason("detection", empty, ref, score_threshold=0.5)
    flat = TaskOutputs((3,), {"scores": np.array([0.5, 0.5])})
    assert "constant" in collapse_reason("classification", flat, TaskOutputs((3,), {"scores": np.array([0.9, 0.1])}))
    nan = TaskOutputs((3,), {"scores": np.array([np.nan, 0.1])})
    assert "NaN" in collapse_reason("classification", nan, ref)
    assert collapse_reason("detection", ref, ref) is None


def _keras_model():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    x = keras.Input((SIZE, SIZE, 3))
    base = x
    for i in range(4):
        base = keras.layers.Conv2D(4, 1, name=f"conv{i}")(base)
    base = keras.layers.ReLU(name="base_relu")(base)
    hot = keras.layers.Conv2D(1, 1, name="hot_conv", kernel_initializer=keras.initializers.Constant(1 / 3),
                              bias_initializer=keras.initializers.Constant(-0.9))(x)
    hot = keras.layers.Rescaling(40.0, name="hot_mul")(keras.layers.ReLU(name="hot_relu")(hot))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(keras.layers.Concatenate(name="concat")([hot, base]))
    fc = keras.layers.Dense(2, name="fc")
    model = keras.Model(x, keras.layers.Softmax(name="softmax")(fc(pooled)))
    weights = np.zeros((5, 2), np.float32)
    weights[0, 1] = 1.0
    fc.set_weights([weights, np.array([0.5, 0.0], np.float32)])
    return model


@pytest.mark.slow
def test_tflite_loop_keeps_the_clipped_branch_float_with_integer_io(tmp_path):
    pytest.importorskip("tensorflow")
    result = converters.convert(_keras_model(), task="classification", target=None, precision="int8",
                                formats="tflite", calibration=_images(24, 1, bright=False),
                                validation=_images(20, 2, bright=True), labels=["dark", "bright"],
                                preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"},
                                output_dir=tmp_path, name="hot")
    int8 = result.report.find("tflite", "int8")
    assert int8.io_dtype == "uint8"
    assert not int8.fallback[0]["within_budget"] and int8.within_budget
    assert result.report.recommended == "hot_int8.tflite"
    assert any("hot_mul" in layer for layer in int8.kept_float)
    assert not any("conv" in layer and "hot" not in layer for layer in int8.kept_float)
    assert any("hot_mul" in name for name in int8.quant_debug["clipped_layers"])
    assert {"MUL", "MEAN"} <= {e["op_type"] for e in int8.quant_debug["layers"]}
    assert int8.quant_debug["outputs_sqnr_db"]["scores"] > 20                 # the outputs' own error, in dB
    with edgecv.load(result.artifacts[0].path) as m:
        assert m.manifest.quantization["kept_float"] == list(int8.kept_float)


@pytest.mark.slow
def test_edgetpu_loop_keeps_a_contiguous_float_tail(tmp_path, monkeypatch):
    """On the Edge TPU a float op splits the graph: the loop keeps float only ops that follow every int8 op."""
    pytest.importorskip("tensorflow")
    from targets.graph import INT8_DTYPES, read_graph

    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))            # no edgetpu_compiler: targets.check counts
    result = converters.convert(_keras_model(), task="classification", target="coral-usb", precision="int8",
                                calibration=_images(24, 1, bright=False), validation=_images(20, 2, bright=True),
                                labels=["dark", "bright"], preprocessing={"mean": 127.5, "std": 127.5, "color": "rgb"},
                                output_dir=tmp_path / "out", name="hot")
    int8 = next(a for a in result.report.artifacts if a.name == "hot_int8.tflite")
    assert not int8.fallback[0]["within_budget"] and int8.kept_float and int8.within_budget
    assert result.report.recommended == "hot_int8.tflite"     # (its compile is left to a host with the compiler)
    assert any(s["step"].startswith(("tail of", "post-processing tail")) for s in int8.fallback)
    assert not any(s["step"].endswith("worst layer(s) in float") for s in int8.fallback)
    graph = read_graph(next(a.path for a in result.artifacts if a.path.endswith("hot_int8.tflite")))
    compute = [op for op in graph.ops if op.op_type not in ("QUANTIZE", "DEQUANTIZE")]
    is_float = [not any(x.dtype in INT8_DTYPES for x in op.inputs if not x.constant) for op in compute]
    assert any(is_float) and all(is_float[is_float.index(True):])          # one int8 head, one float tail
    assert "before the first float op" in int8.delegate["edgetpu_ops"]
    assert int8.delegate["edgetpu_ops"].startswith(f"{is_float.index(True)}/")


def test_16x8_is_tried_where_the_target_runs_it_with_its_latency(tmp_path):
    report = _convert(tmp_path, max_float_share=0.0).report          # no float layer allowed: 16x8 is next
    int8 = report.find("onnx", "int8")
    step = next(s for s in int8.fallback if s.get("activations") == "int16")
    assert step["step"].startswith("16-bit activations") and step["metric"] is not None
    assert step["latency_ms_host"] > 0 and step["int8_latency_ms_host"] > 0 and step["latency_ratio"] > 0
    assert not any(s.get("float_layers") for s in int8.fallback if "metric" in s and s["metric"] is not None)


def test_16x8_targets_and_the_edge_tpu_tail():
    import targets
    from converters.quant_diagnose import Diagnosis
    from converters.quant_stats import LayerError, QuantDiagnosis

    assert targets.supports_int16_activations("rpi4", "tflite")
    assert targets.supports_int16_activations("cpu", "onnx")
    assert not targets.supports_int16_activations("coral-usb", "tflite")
    assert not targets.supports_int16_activations("jetson-orin", "onnx")          # TensorRT: no 16-bit Q/DQ
    layers = tuple(LayerError(n, "Conv", n, (-1.0, 1.0), e, 40.0, 0.0) for n, e in (("b", 3.0), ("a", 2.0), ("c", 1.0)))
    diagnosis = Diagnosis(QuantDiagnosis(layers), "tflite", ("a", "b", "c"), {}, 3)
    assert diagnosis.ranked_layers() == ["b", "a", "c"]                          # worst error first
    assert diagnosis.ranked_layers(tail=True) == ["c", "b", "a"]                 # Edge TPU: from the outputs back


def test_the_postprocess_tail_is_what_no_convolution_follows():
    from converters.quant_diagnose import postprocess_tail
    from targets.graph import ModelGraph, OpInfo, TensorInfo

    def op(index, op_type, name, inputs, outputs):
        def tensors(names):
            return tuple(TensorInfo(t, "float32", (1,), False) for t in names)
        return OpInfo(index, op_type, "", False, name, tensors(inputs), tensors(outputs))

    # image -> conv -> relu -> conv -> {boxes: reshape -> mul -> concat, scores: softmax}; a reshape between convs
    ops = (op(0, "Conv", "conv0", ["image"], ["a"]), op(1, "Relu", "relu", ["a"], ["b"]),
           op(2, "Reshape", "between", ["b"], ["c"]), op(3, "Conv", "conv1", ["c"], ["d"]),
           op(4, "Reshape", "flat", ["d"], ["e"]), op(5, "Mul", "decode", ["e"], ["f"]),
           op(6, "Concat", "boxes", ["f", "b"], ["boxes"]), op(7, "Softmax", "scores", ["d"], ["scores"]))
    graph = ModelGraph(path="m.onnx", format="onnx", size_bytes=0, ops=ops, inputs=(), outputs=(), precision="fp32")
    assert postprocess_tail(graph) == ("flat", "decode", "boxes", "scores")   # relu and "between" feed conv1
    tflite = tuple(OpInfo(o.index, {"Conv": "CONV_2D"}.get(o.op_type, o.op_type.upper()), "", False, o.name,
                          o.inputs, o.outputs) for o in ops)
    assert postprocess_tail(replace(graph, ops=tflite)) == ("flat", "decode", "boxes", "scores")


def test_a_collapsed_artifact_is_never_recommended():
    from converters.conversion_report import ArtifactReport, recommend

    def report(name, size, collapsed=None):
        return ArtifactReport(name, f"/out/{name}", "onnx", "int8", "float32", size, "0", {"detection_f1": 1.0},
                              drop_points=0.0, within_budget=True, validated=True, collapsed=collapsed)

    chosen, _ = recommend([report("small.onnx", 1, collapsed="no detections"), report("big.onnx", 2)],
                          ("onnx",), 1.0, "detection_f1")
    assert chosen == "big.onnx"
