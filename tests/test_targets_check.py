"""targets.check on real fixtures and on synthetic graphs: what will not run, or will run slowly, where."""

from __future__ import annotations

import json

import pytest

import targets
from edgecv.errors import ModelLoadError, UnknownTargetError
from targets.graph import ModelGraph, OpInfo, TensorInfo, tflite_precision
from targets.oplists import edgetpu_ops, xnnpack_fp32_ops, xnnpack_int8_ops

FLOAT_CLS = ("classification", "mobilenet_v1_0.25_224_float.tflite")
QUANT_CLS = ("classification", "mobilenet_v2_1.0_224_quant.tflite")
SSD = ("detection", "ssd_mobilenet_v1_coco_quant_postprocess.tflite")
DEEPLAB_Q = ("segmentation", "deeplabv3_mnv2_pascal_quant.tflite")
ULTRAFACE = ("detection", "ultraface_rfb_320.onnx")


def _path(fixtures, parts):
    return fixtures.joinpath(*parts)


@pytest.mark.device
def test_float_classifier_fails_coral_naming_the_float_tensors(fixtures):
    report = targets.check(_path(fixtures, FLOAT_CLS), "coral-usb")
    assert not report.ok and report.exit_code == targets.EXIT_ERRORS
    floats = [p for p in report.errors if p.code == "float-tensor"]
    assert len(floats) == 88                                      # every tensor of the model is float32
    names = {p.name for p in floats}
    assert {"input", "MobilenetV1/Conv2d_0/weights", "MobilenetV1/Predictions/Reshape_1"} <= names
    conv0 = next(p for p in floats if p.name == "MobilenetV1/Conv2d_0/weights")
    assert conv0.op == "CONV_2D" and "float32" in conv0.message and "8-bit" in conv0.message
    assert report.model.precision == "fp32" and report.model.format == "tflite"
    assert report.codes("warning") == {"not-compiled", "io-dtype"}


@pytest.mark.device
def test_quant_mobilenet_passes_the_int8_part_of_coral(fixtures):
    report = targets.check(_path(fixtures, QUANT_CLS), "coral-usb")
    assert report.ok and report.errors == ()
    assert report.codes() == {"not-compiled"}                     # only: run edgetpu_compiler on it
    assert report.exit_code == targets.EXIT_WARNINGS
    assert report.model.precision == "int8"
    assert report.model.inputs[0] == {"name": "input", "dtype": "uint8", "shape": [1, 224, 224, 3],
                                      "quantized": True}


@pytest.mark.device
def test_ssd_postprocess_custom_op_is_reported_by_op_name_on_coral(fixtures):
    report = targets.check(_path(fixtures, SSD), "coral-devboard")
    (post,) = [p for p in report.problems if p.op == "TFLite_Detection_PostProcess"]
    assert post.code == "cpu-custom-op" and post.severity == "warning"
    assert "host CPU" in post.message
    assert report.ok                                              # the float outputs come from that CPU op
    assert "float-tensor" not in report.codes()


@pytest.mark.device
def test_op_off_the_edgetpu_list_is_reported_by_op_name(fixtures):
    report = targets.check(_path(fixtures, DEEPLAB_Q), "coral-usb")
    (argmax,) = [p for p in report.problems if p.code == "unsupported-op"]
    assert (argmax.op, argmax.name, argmax.severity) == ("ARG_MAX", "ArgMax", "warning")
    assert "ARG_MAX" not in edgetpu_ops() and "CONV_2D" in edgetpu_ops()


@pytest.mark.device
def test_onnx_model_is_the_wrong_format_for_tflite_targets(fixtures):
    for name in ("coral-usb", "coral-devboard"):
        report = targets.check(_path(fixtures, ULTRAFACE), name)
        assert [p.code for p in report.problems] == ["wrong-format"]
        assert report.exit_code == targets.EXIT_ERRORS and "tflite" in report.errors[0].message
    for name in ("rpi4", "rpi5"):                         # ONNX Runtime runs on a Pi too
        assert "wrong-format" not in targets.check(_path(fixtures, ULTRAFACE), name).codes("error")
    tflite_on_jetson = targets.check(_path(fixtures, QUANT_CLS), "jetson-nano")
    assert tflite_on_jetson.codes("error") == {"wrong-format"}


@pytest.mark.device
def test_static_ultraface_is_clean_on_jetson_and_cpu(fixtures):
    for name in ("jetson-nano", "jetson-orin", "cpu"):
        report = targets.check(_path(fixtures, ULTRAFACE), name)
        assert report.problems == () and report.exit_code == targets.EXIT_OK, name
    assert report.model.op_counts[0] == ("Conv", 52)


@pytest.mark.device
def test_dynamic_batch_onnx_warns_for_tensorrt_from_hand_encoded_model(tmp_path):
    from test_onnx_format import relu_model

    path = tmp_path / "dyn.onnx"
    path.write_bytes(relu_model(batch="N"))
    report = targets.check(path, "jetson-orin")
    dyn = [p for p in report.problems if p.code == "dynamic-shape"]
    assert {p.name for p in dyn} == {"x", "y"} and all(p.severity == "warning" for p in dyn)
    assert "TensorRT" in dyn[0].message and "'N'" in dyn[0].message
    assert report.ok and report.exit_code == targets.EXIT_WARNINGS
    assert targets.check(path, "cpu").problems == ()              # ONNX Runtime on CPU takes any batch


def test_dynamic_batch_onnx_built_with_onnx_helper_warns_for_jetson(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["images"], ["out"], name="relu")], "g",
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 224, 224])])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    report = targets.check(path, "jetson-nano")
    assert [(p.severity, p.code, p.name) for p in report.problems] == [
        ("warning", "dynamic-shape", "images"), ("warning", "dynamic-shape", "out")]
    assert report.model.inputs[0]["shape"] == ["batch", 3, 224, 224]


def _qdq_relu(path, zero_point, *, raw: bool):
    """x -> QuantizeLinear -> DequantizeLinear -> Relu, with an int8 zero point stored as raw_data or int32_data."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    zp = (numpy_helper.from_array(np.array(zero_point, np.int8), "zp") if raw
          else helper.make_tensor("zp", TensorProto.INT8, [], [zero_point]))
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "scale")
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["xq"], name="quant_x"),
             helper.make_node("DequantizeLinear", ["xq", "scale", "zp"], ["xd"], name="dequant_x"),
             helper.make_node("Relu", ["xd"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])], [scale, zp])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "int32_data"])
def test_nonzero_zero_points_warn_on_tensorrt_targets_only(tmp_path, raw):
    shifted = _qdq_relu(tmp_path / "asym.onnx", -128, raw=raw)
    report = targets.check(shifted, "jetson-orin")
    zp = [p for p in report.problems if p.code == "zero-point"]
    assert [(p.severity, p.name) for p in zp] == [("warning", "quant_x")]
    assert "2 QuantizeLinear/DequantizeLinear nodes" in zp[0].message and "'ActivationSymmetric': True" in zp[0].message
    assert not [p for p in targets.check(shifted, "cpu").problems if p.code == "zero-point"]   # ONNX Runtime CPU
    symmetric = _qdq_relu(tmp_path / "sym.onnx", 0, raw=raw)
    assert not [p for p in targets.check(symmetric, "jetson-orin").problems if p.code == "zero-point"]


def test_onnx_reader_keeps_small_integer_payloads_only(tmp_path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import numpy_helper

    from edgecv.formats.onnx import read_onnx

    path = _qdq_relu(tmp_path / "m.onnx", -3, raw=True)
    model = onnx.load(str(path))
    model.graph.initializer.append(numpy_helper.from_array(np.arange(-600, 600, dtype=np.int16), "big"))
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, -2, 300], np.int32), "bias"))
    onnx.save(model, str(path))
    inits = {t.name: t for t in read_onnx(path).graph.initializers}
    assert inits["zp"].integer_values() == (-3,)
    assert inits["bias"].integer_values() == (1, -2, 300)
    assert inits["big"].integer_values() is None and inits["big"].raw_data_bytes == 2400    # measured, not kept
    assert inits["scale"].integer_values() is None                                          # float: not an integer


@pytest.mark.device
def test_report_renders_as_json_and_text(fixtures):
    report = targets.check(_path(fixtures, FLOAT_CLS), "coral-usb")
    data = json.loads(report.to_json())
    assert data["schema"] == "edgecv.check/1" and data["exit_code"] == 2 and data["ok"] is False
    assert data["error_count"] == 88 and len(data["problems"]) == 88 + data["warning_count"]
    assert data["problems"][0]["severity"] == "error"             # errors come first
    text = report.to_text()
    assert text.splitlines()[0].endswith("FAIL: 88 error(s), 3 warning(s)")
    assert "ERROR [float-tensor] x88" in text and "... and 80 more" in text


@pytest.mark.device
def test_check_refuses_bad_inputs(fixtures, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        targets.check(tmp_path / "none.tflite", "cpu")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x01\x02 not a model")
    with pytest.raises(ModelLoadError, match="neither"):
        targets.check(junk, "cpu")
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(_path(fixtures, QUANT_CLS).read_bytes()[:5000])
    with pytest.raises(ModelLoadError):
        targets.check(truncated, "coral-usb")
    with pytest.raises(ModelLoadError, match="folder"):
        targets.check(tmp_path, "cpu")
    with pytest.raises(UnknownTargetError):
        targets.check(_path(fixtures, QUANT_CLS), "coral")


@pytest.mark.device
def test_xnnpack_speed_warnings_on_pi(fixtures):
    quant = targets.check(_path(fixtures, QUANT_CLS), "rpi4")
    slow = {p.op: p for p in quant.problems if p.code == "not-delegated"}
    assert set(slow) == {"AVERAGE_POOL_2D", "SOFTMAX"}           # not in XNNPACK's quantized list
    assert all(p.severity == "warning" for p in slow.values()) and quant.ok
    assert "AVERAGE_POOL_2D" in xnnpack_fp32_ops() and "AVERAGE_POOL_2D" not in xnnpack_int8_ops()
    float_deeplab = targets.check(fixtures / "segmentation" / "deeplabv3_257_float.tflite", "rpi5")
    assert float_deeplab.problems == ()                           # every op of it is delegated in fp32


# --- synthetic graphs for the rules no fixture exercises ---


def _t(name, dtype="int8", shape=(1, 8, 8, 4), constant=False):
    return TensorInfo(name=name, dtype=dtype, shape=shape, constant=constant, quantized=dtype in ("int8", "uint8"))


def _graph(ops, inputs, outputs, fmt="tflite", precision=None, external=()):
    if precision is None and fmt == "tflite":
        precision = tflite_precision(list(ops))
    return ModelGraph(path="/models/synthetic." + fmt, format=fmt, size_bytes=1000, ops=tuple(ops),
                      inputs=tuple(inputs), outputs=tuple(outputs), precision=precision, external_data=external)


def _op(i, op_type, ins, outs, custom=False, domain=""):
    return OpInfo(index=i, op_type=op_type, domain=domain, custom=custom, name=outs[0].name,
                  inputs=tuple(ins), outputs=tuple(outs))


@pytest.mark.device
def test_custom_op_is_an_error_on_edgetpu_and_a_warning_elsewhere():
    x, y = _t("x"), _t("y")
    g = _graph([_op(0, "MyFancyOp", [x], [y], custom=True)], [x], [y])
    coral = targets.check_graph(g, targets.get("coral-usb"))
    (err,) = [p for p in coral.problems if p.code == "custom-op"]
    assert (err.severity, err.op, err.name) == ("error", "MyFancyOp", "y")
    pi = targets.check_graph(g, targets.get("rpi4"))
    (warn,) = [p for p in pi.problems if p.code == "custom-op"]
    assert warn.severity == "warning"


@pytest.mark.device
def test_compiled_edgetpu_model_is_fine_on_coral_and_an_error_elsewhere():
    x, mid, y = _t("x", "uint8"), _t("mid", "uint8", (1, 10)), _t("y", "float32", (1, 10))
    g = _graph([_op(0, "edgetpu-custom-op", [x], [mid], custom=True), _op(1, "DEQUANTIZE", [mid], [y])], [x], [y])
    coral = targets.check_graph(g, targets.get("coral-usb"))
    assert coral.ok and coral.codes() == {"cpu-op"} and coral.model.edgetpu_compiled
    assert coral.model.precision == "int8"
    assert coral.warnings[0].op == "DEQUANTIZE"
    cpu = targets.check_graph(g, targets.get("cpu"))
    assert cpu.codes("error") == {"edgetpu-model"}


@pytest.mark.device
def test_edgetpu_rank_rule_and_dtype_rule():
    x = _t("x", shape=(1, 8, 8, 4))
    wide = _t("wide", shape=(2, 4, 8, 8))                       # a leading dimension above 1
    folded = _t("folded", shape=(1, 1, 64, 8, 8))               # only the 3 innermost are above 1: fine
    weights = _t("w", shape=(16, 3, 3, 4), constant=True)     # conv filters are 4-D, never flagged
    wide16 = _t("act16", "int16", (1, 8, 8, 4))
    g = _graph([_op(0, "CONV_2D", [x, weights], [wide]), _op(1, "RESHAPE", [wide], [folded]),
                _op(2, "ADD", [folded, folded], [wide16])], [x], [wide16])
    report = targets.check_graph(g, targets.get("coral-usb"))
    (rank,) = [p for p in report.problems if p.code == "tensor-rank"]
    assert (rank.name, rank.severity) == ("wide", "warning")
    (dtype,) = [p for p in report.problems if p.code == "unsupported-dtype"]
    assert (dtype.name, dtype.severity, dtype.op) == ("act16", "error", "ADD")


@pytest.mark.device
def test_dynamic_input_is_an_error_for_edgetpu():
    x, y = _t("x", shape=(-1, 8, 8, 4)), _t("y")
    g = _graph([_op(0, "CONV_2D", [x], [y])], [x], [y])
    report = targets.check_graph(g, targets.get("coral-usb"))
    (dyn,) = [p for p in report.problems if p.code == "dynamic-shape"]
    assert (dyn.severity, dyn.name) == ("error", "x") and "Edge TPU" in dyn.message


@pytest.mark.device
def test_precision_advice():
    x, y = _t("x", "float32"), _t("y", "float32")
    fp16_onnx = _graph([_op(0, "Relu", [x], [y])], [x], [y], fmt="onnx", precision="fp16")
    (warn,) = targets.check_graph(fp16_onnx, targets.get("cpu")).problems
    assert warn.code == "precision" and "fp16 kernels" in warn.message
    qdq = _graph([_op(0, "QuantizeLinear", [x], [y])], [x], [y], fmt="onnx", precision="int8")
    (nano,) = targets.check_graph(qdq, targets.get("jetson-nano")).problems
    assert nano.code == "precision" and "INT8" in nano.message
    assert targets.check_graph(qdq, targets.get("jetson-orin")).problems == ()
    dyn = _graph([_op(0, "CONV_2D", [x, _t("w", constant=True)], [y])], [x], [y], precision="dynamic")
    (pi,) = [p for p in targets.check_graph(dyn, targets.get("rpi4")).problems if p.code == "precision"]
    assert "dynamic-range" in pi.message


@pytest.mark.device
def test_external_data_outside_the_model_folder_is_an_error(tmp_path):
    x, y = _t("x", "float32"), _t("y", "float32")
    model = tmp_path / "m.onnx"
    (tmp_path / "ok.bin").write_bytes(b"\x00" * 8)
    g = ModelGraph(path=str(model), format="onnx", size_bytes=10, ops=(_op(0, "Relu", [x], [y]),),
                   inputs=(x,), outputs=(y,), precision="fp32",
                   external_data=(("w1", "ok.bin"), ("w2", "../../etc/passwd"), ("w3", "gone.bin")))
    report = targets.check_graph(g, targets.get("cpu"))
    assert [(p.code, p.name) for p in report.errors] == [("external-data", "w2"), ("external-data", "w3")]


@pytest.mark.device
def test_tflite_precision_classification():
    x8, y8, w8 = _t("x"), _t("y"), _t("w", constant=True)
    xf, yf, wf = _t("xf", "float32"), _t("yf", "float32"), _t("wf", "float32", constant=True)
    w16 = _t("w16", "float16", constant=True)
    assert tflite_precision([_op(0, "CONV_2D", [x8, w8], [y8])]) == "int8"
    assert tflite_precision([_op(0, "CONV_2D", [xf, wf], [yf])]) == "fp32"
    assert tflite_precision([_op(0, "CONV_2D", [xf, w8], [yf])]) == "dynamic"
    assert tflite_precision([_op(0, "DEQUANTIZE", [w16], [wf]), _op(1, "CONV_2D", [xf, wf], [yf])]) == "fp16"
    assert tflite_precision([_op(0, "CONV_2D", [x8, w8], [y8]), _op(1, "LOGISTIC", [xf], [yf])]) == "mixed"
