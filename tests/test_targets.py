"""Target profiles, recipes, ONNX Runtime provider options and the host report."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import pytest

import targets
from edgecv.errors import ConfigError, ModelLoadError, UnknownTargetError
from targets.target import Target

REQUIRED = ("cpu", "rpi4", "rpi5", "jetson-nano", "jetson-orin", "coral-usb", "coral-devboard")
RUNTIME_FIELDS = ("name", "device", "arch", "runtime", "delegate", "onnx_providers", "default_threads", "formats",
                  "precisions", "io_dtype", "full_int8_only", "static_shapes")


@pytest.mark.device
def test_required_profiles_exist_with_the_fields_the_runtime_reads():
    assert set(REQUIRED) <= set(targets.names())
    assert [t.name for t in targets.all()] == sorted(targets.names())
    for name in REQUIRED:
        t = targets.get(name)
        for key in RUNTIME_FIELDS:
            assert hasattr(t, key), (name, key)
        assert t.runtime in ("litert", "onnxruntime") and t.delegate in (None, "xnnpack", "edgetpu")
        assert t.io_dtype in ("float32", "uint8", "int8")
        assert json.loads(json.dumps(t.to_dict()))["name"] == name


@pytest.mark.device
def test_profiles_say_what_the_issue_asks_for_each_device():
    for name in ("rpi4", "rpi5"):
        pi = targets.get(name)
        assert (pi.arch, pi.runtime, pi.delegate, pi.default_threads) == ("aarch64", "litert", "xnnpack", 4)
        assert pi.formats == ("tflite", "onnx") and pi.default_formats == ("tflite",) and pi.precisions[0] == "int8"
        assert pi.onnx_providers == ("CPUExecutionProvider",)          # ONNX Runtime ships aarch64 wheels
    for name in ("coral-usb", "coral-devboard"):
        coral = targets.get(name)
        assert (coral.delegate, coral.io_dtype, coral.precisions, coral.formats) == ("edgetpu", "uint8", ("int8",),
                                                                                      ("tflite",))
        assert coral.full_int8_only and coral.static_shapes
        assert coral.constraints.op_allowlist == "edgetpu" and coral.constraints.innermost_nonunit_dims == 3
        assert coral.constraints.delegate_library == "libedgetpu.so.1"
    for name in ("jetson-nano", "jetson-orin"):
        jetson = targets.get(name)
        assert jetson.runtime == "onnxruntime" and jetson.formats == ("onnx",)
        assert jetson.onnx_providers == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        assert jetson.precisions[0] == "fp16" and jetson.static_shapes
    assert "int8" not in targets.get("jetson-nano").precisions      # Maxwell: no INT8 in TensorRT
    assert "int8" in targets.get("jetson-orin").precisions
    assert targets.get("cpu").onnx_providers == ("CPUExecutionProvider",)


@pytest.mark.device
def test_unknown_target_names_close_matches_and_no_auto_correction():
    with pytest.raises(UnknownTargetError) as info:
        targets.get("rpi-4")
    assert "rpi4" in str(info.value) and "did you mean" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ConfigError)
    with pytest.raises(UnknownTargetError, match="jetson-nano"):
        targets.get("Jetson_Nano")                                   # suggested, never silently accepted
    with pytest.raises(UnknownTargetError):
        targets.get(4)


@pytest.mark.device
def test_profiles_are_frozen_and_validated(tmp_path):
    t = targets.get("rpi4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "x"
    assert Target.from_dict(t.to_dict()) == t
    bad = dict(t.to_dict(), precisions=["int4"])
    with pytest.raises(ConfigError, match="precisions"):
        Target.from_dict(bad)
    with pytest.raises(ConfigError, match="unknown keys"):
        Target.from_dict(dict(t.to_dict(), speed="fast"))
    with pytest.raises(ConfigError, match="default_threads"):
        Target.from_dict(dict(t.to_dict(), default_threads=0))
    with pytest.raises(ConfigError, match="full_int8_only"):
        Target.from_dict(dict(targets.get("coral-usb").to_dict(), precisions=["int8", "fp32"]))
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(dict(t.to_dict(), name="my-board")))
    assert targets.load_profile(path).name == "my-board"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        targets.load_profile(path)


@pytest.mark.device
def test_runtime_for_format():
    assert targets.get("cpu").runtime_for("onnx") == "onnxruntime"
    assert targets.get("cpu").runtime_for("tflite") == "litert"
    assert targets.get("rpi4").runtime_for("onnx") == "onnxruntime"
    with pytest.raises(ConfigError, match="convert"):
        targets.get("coral-usb").runtime_for("onnx")


# --- recipes ---


@pytest.mark.device
def test_recipes_need_no_other_argument():
    (coral,) = targets.recipe("coral-usb")
    assert (coral.format, coral.precision, coral.io_dtype, coral.edgetpu_compile, coral.needs_calibration) == (
        "tflite", "int8", "uint8", True, True)
    assert coral.artifact_name("det") == "det_int8_edgetpu.tflite"
    pi = targets.recipe("rpi4")
    assert [(r.format, r.precision, r.io_dtype) for r in pi] == [
        ("tflite", "int8", "int8"), ("tflite", "fp32", "float32"), ("tflite", "fp16", "float32")]
    assert not any(r.edgetpu_compile for r in pi)
    # ONNX on a Pi only when asked for: TFLite stays the preferred (and default) format
    assert [(r.format, r.precision) for r in targets.recipe("rpi5", formats=["onnx"])] == [
        ("onnx", "int8"), ("onnx", "fp32"), ("onnx", "fp16")]
    assert [r.io_dtype for r in targets.recipe("rpi4", "int8", formats=("tflite", "onnx"))] == ["int8", "float32"]
    with pytest.raises(ConfigError, match="runs tflite models, not onnx"):
        targets.recipe("coral-usb", formats=["onnx"])
    nano = targets.recipe("jetson-nano")
    assert [(r.format, r.precision, r.io_dtype, r.static_shapes) for r in nano] == [
        ("onnx", "fp16", "float32", True), ("onnx", "fp32", "float32", True)]
    cpu = targets.recipe(targets.get("cpu"))
    assert {(r.format, r.precision) for r in cpu} == {(f, p) for f in ("tflite", "onnx")
                                                      for p in ("fp32", "int8", "dynamic")}
    assert all(r.io_dtype == "float32" for r in cpu)


@pytest.mark.device
def test_recipe_precision_filter_is_checked():
    assert [r.precision for r in targets.recipe("jetson-orin", precision="int8")] == ["int8"]
    with pytest.raises(ConfigError, match="runs int8"):
        targets.recipe("coral-usb", precision="fp32")
    with pytest.raises(ConfigError, match="did you mean 'int8'"):
        targets.recipe("rpi4", precision="int9")


# --- ONNX Runtime providers for TensorRT ---


@pytest.mark.device
def test_tensorrt_options_for_jetson(fixtures, tmp_path):
    model = fixtures / "detection" / "ultraface_rfb_320.onnx"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    providers = targets.providers_for("jetson-orin", model, cache_dir=tmp_path)
    assert [name for name, _ in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                               "CPUExecutionProvider"]
    trt, cuda, cpu = (opts for _, opts in providers)
    assert trt["trt_fp16_enable"] == "True" and trt["trt_int8_enable"] == "False"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_timing_cache_enable"] == "True"
    assert trt["trt_max_workspace_size"] == str(2 * 1024 ** 3) and trt["device_id"] == "0"
    cache = trt["trt_engine_cache_path"]
    assert os.path.dirname(cache) == str(tmp_path)
    assert os.path.basename(cache).startswith(f"{digest[:16]}-fp16-ort")
    assert all(isinstance(v, str) for v in trt.values())            # ORT's Python API wants strings
    assert cuda == {"device_id": "0", "arena_extend_strategy": "kSameAsRequested"} and cpu == {}
    assert not os.path.exists(cache)                                  # building options creates nothing
    targets.ensure_cache_dirs(providers)
    assert os.path.isdir(cache)

    fp32 = dict(targets.providers_for("jetson-orin", model, precision="fp32", cache_dir=tmp_path))
    trt32 = fp32["TensorrtExecutionProvider"]
    assert trt32["trt_fp16_enable"] == "False" and trt32["trt_int8_enable"] == "False"
    assert trt32["trt_engine_cache_path"] != cache                    # the cache is keyed by precision
    int8 = dict(targets.providers_for("jetson-orin", model, precision="int8", cache_dir=tmp_path))
    assert int8["TensorrtExecutionProvider"]["trt_int8_enable"] == "True"
    nano = dict(targets.providers_for("jetson-nano", model, cache_dir=tmp_path))
    assert nano["TensorrtExecutionProvider"]["trt_max_workspace_size"] == str(1024 ** 3)


@pytest.mark.device
def test_int8_qdq_model_gets_int8_engine_and_cache_follows_content(tmp_path):
    from test_onnx_format import graph, model, node, value_info

    qdq = model(graph(nodes=[node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                             node("DequantizeLinear", ["q", "s", "z"], ["y"])],
                      inputs=[value_info("x", 1, [1, 4])], outputs=[value_info("y", 1, [1, 4])]))
    path = tmp_path / "qdq.onnx"
    path.write_bytes(qdq)
    trt = dict(targets.providers_for("jetson-orin", path, cache_dir=tmp_path))["TensorrtExecutionProvider"]
    assert (trt["trt_int8_enable"], trt["trt_fp16_enable"]) == ("True", "True")
    assert "-int8-" in os.path.basename(trt["trt_engine_cache_path"])
    with pytest.raises(ConfigError, match="no INT8"):
        targets.providers_for("jetson-nano", path, cache_dir=tmp_path)
    before = targets.trt_cache_dir(path, "int8", tmp_path)
    copy = tmp_path / "renamed.onnx"
    copy.write_bytes(qdq)
    assert targets.trt_cache_dir(copy, "int8", tmp_path) == before      # keyed by content, not by path
    path.write_bytes(model(graph(nodes=[node("Relu", ["x"], ["y"])])))
    assert targets.trt_cache_dir(path, "int8", tmp_path) != before


@pytest.mark.device
def test_providers_for_refuses_what_cannot_work(fixtures, tmp_path):
    model = fixtures / "detection" / "ultraface_rfb_320.onnx"
    with pytest.raises(ConfigError, match="not ONNX"):
        targets.providers_for("coral-usb", model)
    with pytest.raises(ConfigError, match="fp32, fp16 or int8"):
        targets.providers_for("jetson-orin", model, precision="dynamic", cache_dir=tmp_path)
    with pytest.raises(ModelLoadError):
        targets.providers_for("jetson-orin", tmp_path / "absent.onnx")
    assert targets.providers_for("cpu", model) == [("CPUExecutionProvider", {})]


@pytest.mark.device
def test_default_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGECV_CACHE_DIR", str(tmp_path / "c"))
    assert targets.default_cache_root() == str(tmp_path / "c")
    monkeypatch.delenv("EDGECV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert targets.default_cache_root() == str(tmp_path / "x" / "edgecv")


@pytest.mark.device
def test_granted_report_names_each_missing_provider():
    requested = [("TensorrtExecutionProvider", {"trt_fp16_enable": "True"}), "CUDAExecutionProvider",
                 "CPUExecutionProvider"]
    assert targets.granted_report(requested, ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                              "CPUExecutionProvider"]) == []
    (only,) = targets.granted_report(requested, ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert only.startswith("TensorrtExecutionProvider was requested") and "runs on CUDAExecutionProvider" in only
    both = targets.granted_report(requested, ["CPUExecutionProvider"])
    assert [w.split()[0] for w in both] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert all("runs on CPUExecutionProvider" in w for w in both)
    with pytest.raises(ConfigError):
        targets.granted_report([42], ["CPUExecutionProvider"])


# --- host report ---


def _fake_host(root, board=None, usb=(), apex=False, zones=(), governor=None, libedgetpu=False):
    if board is not None:
        (root / "proc" / "device-tree").mkdir(parents=True, exist_ok=True)
        (root / "proc" / "device-tree" / "model").write_bytes(board.encode() + b"\x00")
    for i, (vendor, product) in enumerate(usb):
        dev = root / "sys" / "bus" / "usb" / "devices" / f"2-{i + 1}"
        dev.mkdir(parents=True)
        (dev / "idVendor").write_text(vendor + "\n")
        (dev / "idProduct").write_text(product + "\n")
    if apex:
        (root / "dev").mkdir(parents=True, exist_ok=True)
        (root / "dev" / "apex_0").write_text("")
    for i, (kind, milli) in enumerate(zones):
        zone = root / "sys" / "class" / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    if governor is not None:
        gov = root / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cpufreq"
        gov.mkdir(parents=True)
        (gov / "scaling_governor").write_text(governor + "\n")
    if libedgetpu:
        lib = root / "usr" / "lib" / "aarch64-linux-gnu"
        lib.mkdir(parents=True)
        (lib / "libedgetpu.so.1").write_text("")
    return str(root)


@pytest.mark.device
@pytest.mark.parametrize("board, expected", [
    ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"),
    ("Raspberry Pi 5 Model B Rev 1.0", "rpi5"),
    ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin"),
    ("Freescale i.MX8MQ Phanbell", "coral-devboard"),
    ("Some Other Board", "cpu"),
])
def test_detect_matches_the_board(tmp_path, board, expected):
    report = targets.detect(probe_imports=False, root=_fake_host(tmp_path, board=board))
    assert report.board_model == board
    assert report.matched_target == expected


@pytest.mark.device
def test_detect_reads_edgetpu_thermal_and_governor(tmp_path):
    root = _fake_host(tmp_path, board="Raspberry Pi 4 Model B Rev 1.4", usb=[("1a6e", "089a"), ("046d", "c52b")],
                      zones=[("gpu-thermal", 51000), ("cpu-thermal", 48312)], governor="ondemand", libedgetpu=True)
    report = targets.detect(probe_imports=False, root=root)
    assert report.edgetpu.usb_devices == ("1a6e:089a at 2-1",) and report.edgetpu.present
    assert report.edgetpu.libedgetpu == os.path.join(root, "usr/lib/aarch64-linux-gnu/libedgetpu.so.1")
    assert report.cpu_temperature_c == pytest.approx(48.3)
    assert report.cpu_governor == "ondemand"
    assert any("governor" in n for n in report.notes)
    assert report.matched_target == "rpi4"                           # the board wins over the USB stick
    data = json.loads(report.to_json())
    assert data["edgetpu"]["present"] is True and data["matched_target"] == "rpi4"
    assert "best target: rpi4" in report.to_text()


@pytest.mark.device
def test_detect_usb_accelerator_without_runtime_library(tmp_path):
    report = targets.detect(probe_imports=False, root=_fake_host(tmp_path, usb=[("18d1", "9302")],
                                                                  zones=[("acpitz", 40000), ("x", 70000)]))
    assert report.matched_target == "coral-usb"
    assert report.edgetpu.libedgetpu is None
    assert any("libedgetpu" in n for n in report.notes)
    assert report.cpu_temperature_c == pytest.approx(70.0)           # no CPU zone: the hottest one
    pcie = targets.detect(probe_imports=False, root=_fake_host(tmp_path / "b", apex=True))
    assert pcie.edgetpu.pcie_devices == ("/dev/apex_0",) and pcie.matched_target == "coral-devboard"


@pytest.mark.device
def test_detect_never_raises_and_lists_runtimes(tmp_path):
    (tmp_path / "file").write_text("")
    report = targets.detect(probe_imports=False, root=str(tmp_path / "file"))
    assert report.matched_target == "cpu"
    names = [r.name for r in report.runtimes]
    assert names == ["ai-edge-litert", "tflite-runtime", "onnxruntime", "tensorflow"]
    assert report.runtime("onnxruntime").installed                  # both test environments have it


@pytest.mark.device
def test_detect_proves_runtimes_import(tmp_path):
    report = targets.detect(probe_imports=True, root=str(tmp_path))
    ort = report.runtime("onnxruntime")
    assert ort.importable is True and "CPUExecutionProvider" in ort.details["providers"]
    for r in report.runtimes:
        if r.installed and r.name != "tensorflow":
            assert r.importable is not None
            assert r.importable == (r.problem is None)


@pytest.mark.device
def test_detect_flags_tflite_runtime_against_numpy_2(tmp_path, monkeypatch):
    import importlib
    import importlib.util

    detect_module = importlib.import_module("targets.detect")
    versions = {"numpy": ("numpy", "2.1.3"), "tflite-runtime": ("tflite-runtime", "2.14.0")}
    monkeypatch.setattr(detect_module, "_dist_version", lambda *dists: versions.get(dists[0], (None, None)))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tflite_runtime" else None)
    report = targets.detect(probe_imports=True, root=str(tmp_path))
    tfl = report.runtime("tflite-runtime")
    assert (tfl.installed, tfl.importable, tfl.version) == (True, False, "2.14.0")
    assert "numpy<2" in tfl.problem and "2.1.3" in tfl.problem
    assert not report.runtime("onnxruntime").installed
    assert "NOT importable" in report.to_text()
