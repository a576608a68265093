"""Which artifacts a conversion builds (target recipes or explicit lists), and how the report picks one."""

from __future__ import annotations

import json

import pytest

from converters.conversion_report import ArtifactReport, ConversionReport, recommend
from converters.plan import Plan, plan_artifacts
from edgecv.errors import BackendNotAvailable, ConfigError, UnknownTargetError


def _keys(plans):
    return [(p.format, p.precision, p.io_dtype, p.edgetpu_compile) for p in plans]


def test_explicit_lists_without_target():
    plans, target, notes = plan_artifacts(None, None, None, None, source_is_onnx=False)
    assert target is None and notes == []
    assert _keys(plans) == [("tflite", "fp32", "float32", False), ("tflite", "fp16", "float32", False),
                            ("tflite", "dynamic", "float32", False), ("tflite", "int8", "uint8", False),
                            ("onnx", "fp32", "float32", False), ("onnx", "fp16", "float32", False),
                            ("onnx", "dynamic", "float32", False), ("onnx", "int8", "float32", False)]
    plans, _, _ = plan_artifacts(None, "int8", "tflite", "int8", source_is_onnx=False)
    assert _keys(plans) == [("tflite", "int8", "int8", False)]


def test_target_recipes():
    coral, target, _ = plan_artifacts("coral-usb", None, None, None, source_is_onnx=False)
    assert target == "coral-usb"
    assert _keys(coral) == [("tflite", "int8", "uint8", True)]
    rpi, _, _ = plan_artifacts("rpi4", "int8", None, None, source_is_onnx=False)
    assert _keys(rpi) == [("tflite", "int8", "int8", False)]
    orin, _, _ = plan_artifacts("jetson-orin", None, None, None, source_is_onnx=True)
    assert {p.format for p in orin} == {"onnx"}


def test_onnx_source_plans_tflite_for_every_tflite_target(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "onnx2tf"                   # where the plan looks: EDGECV_ONNX2TF (never run here)
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("EDGECV_ONNX2TF", str(tmp_path))
    plans, _, notes = plan_artifacts("cpu", None, None, None, source_is_onnx=True)
    assert {p.format for p in plans} == {"tflite", "onnx"} and notes == []
    for name in ("rpi4", "rpi5", "coral-usb", "coral-devboard"):
        plans, _, _ = plan_artifacts(name, None, None, None, source_is_onnx=True)
        assert {p.format for p in plans} == {"tflite"}, name
    assert _keys(plan_artifacts("rpi4", "int8", "onnx", None, source_is_onnx=True)[0]) == [
        ("onnx", "int8", "float32", False)]
    assert _keys(plan_artifacts(None, "fp32", "tflite", None, source_is_onnx=True)[0]) == [
        ("tflite", "fp32", "float32", False)]
    monkeypatch.setenv("EDGECV_ONNX2TF", str(tmp_path / "nowhere"))
    with pytest.raises(BackendNotAvailable, match="names no onnx2tf executable"):
        plan_artifacts("coral-usb", None, None, None, source_is_onnx=True)
    assert plan_artifacts("rpi4", None, "onnx", None, source_is_onnx=True)[0]      # ONNX only: no onnx2tf needed


@pytest.mark.parametrize("args, error, words", [
    (("cpu", "int4", None, None), ConfigError, "unknown precision 'int4'"),
    (("cpu", "fp61", None, None), ConfigError, "did you mean 'fp16'"),
    (("coral-usb", "fp16", None, None), ConfigError, "runs int8 models, not fp16"),
    (("coral-usb", None, "onnx", None), ConfigError, "runs tflite models, not onnx"),
    ((None, "int8", "onnx", "uint8"), ConfigError, "only full-integer TFLite int8 has uint8/int8"),
    ((None, "fp16", "tflite", "int8"), ConfigError, "does not support io_dtype='int8'"),
    ((None, None, "tf", None), ConfigError, "unknown format 'tf'"),
    ((None, [], None, None), ConfigError, "must not be empty"),
    ((None, None, None, "uint16"), ConfigError, "io_dtype 'uint16'"),
    (("raspberry", None, None, None), UnknownTargetError, "unknown target 'raspberry'"),
])
def test_bad_plans(args, error, words):
    with pytest.raises(error, match=words):
        plan_artifacts(*args, source_is_onnx=False)


def test_file_names():
    assert Plan("tflite", "int8", "uint8").file_name("clf") == "clf_int8.tflite"
    assert Plan("tflite", "int8", "int8").file_name("clf", with_io=True) == "clf_int8_int8io.tflite"


def _report(name, fmt, size, drop, *, validated=True, path="x", reference=False):
    return ArtifactReport(name=name, path=path, format=fmt, precision="int8", io_dtype="float32", size_bytes=size,
                          sha256="0", metrics={"top1_accuracy": 0.9}, drop_points=drop,
                          within_budget=None if drop is None else drop <= 1.0, validated=validated,
                          reference=reference)


def test_recommend_smallest_within_budget_in_format_order():
    reports = [_report("ref.tflite", "tflite", 1000, 0.0, reference=True), _report("a.tflite", "tflite", 300, 0.5),
               _report("b.tflite", "tflite", 200, 1.5), _report("c.onnx", "onnx", 100, 0.0)]
    name, why = recommend(reports, ("tflite", "onnx"), 1.0, "top1_accuracy")
    assert name == "a.tflite" and "within 1 point" in why
    name, _ = recommend(reports, ("onnx", "tflite"), 1.0, "top1_accuracy")
    assert name == "c.onnx"
    name, why = recommend([_report("b.tflite", "tflite", 200, 3.0)], ("tflite",), 1.0, "top1_accuracy")
    assert name is None and "no artifact kept" in why
    name, why = recommend([_report("b.tflite", "tflite", 200, None, validated=False)], ("tflite",), 1.0, "x")
    assert name is None and "validation=" in why
    unpublished = _report("ref.onnx", "onnx", 10, 0.0, path=None, reference=True)
    assert recommend([unpublished], ("onnx",), 1.0, "x")[0] is None


def test_report_json_and_table():
    reports = (_report("ref.tflite", "tflite", 1000, 0.0, reference=True), _report("a.tflite", "tflite", 3000, 0.5))
    report = ConversionReport(task="classification", target="cpu", primary_metric="top1_accuracy", budget_points=1.0,
                              validation_size=10, calibration={"method": "minmax", "size": 10, "sha256": "ab"},
                              source={"kind": "keras"}, artifacts=reports, recommended="a.tflite",
                              recommendation="smallest", notes=("hello",))
    data = json.loads(report.to_json())
    assert data["recommended"] == "a.tflite" and data["artifacts"][1]["drop_points"] == 0.5
    assert data["schema_version"] == 1
    lines = report.table().splitlines()
    assert lines[0].split()[:5] == ["artifact", "format", "precision", "I/O", "size"]
    assert lines[2].startswith("ref.tflite (ref)") and "90.00" in lines[2] and "2.9 KiB" in lines[3]
    assert report.artifact("a.tflite").size_bytes == 3000
    assert report.find("tflite", "int8").name == "ref.tflite"
    with pytest.raises(KeyError):
        report.artifact("nope")
