"""convert(): every source kind, manifest round trip, atomic output, and clear errors on bad input."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import converters  # noqa: E402
import edgecv  # noqa: E402
from edgecv.errors import (  # noqa: E402
    CalibrationError,
    ConfigError,
    EdgeCVError,
    ModelLoadError,
    UnsupportedOpError,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRE = {"mean": 127.5, "std": 127.5, "color": "rgb"}


def _tiny(extra=None):
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    if extra is not None:
        x = extra(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="scores")(x))


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_keras_model_to_every_format_with_manifest(tiny, tmp_path):
    result = converters.convert(tiny, task="classify", target=None, precision=["fp32", "int8"],
                                calibration=_images(20, 1), validation=_images(8, 2), labels=["a", "b", "c"],
                                preprocessing=PRE, output_dir=tmp_path, name="tiny")
    names = sorted(os.path.basename(a.path) for a in result.artifacts)
    assert names == ["tiny_fp32.onnx", "tiny_fp32.tflite", "tiny_int8.onnx", "tiny_int8.tflite"]
    assert _listing(tmp_path) == [*names[:2], "tiny_int8.onnx", "tiny_int8.tflite", "tiny_report.json"]
    x = ((_images(1, 3)[0, :, :, ::-1].astype(np.float32) - 127.5) / 127.5)[None]
    expected = tiny(x).numpy()
    for artifact in result.artifacts:
        assert artifact.size_bytes == os.path.getsize(artifact.path)
        with edgecv.load(artifact.path) as model:
            m = model.manifest
            assert m.task == "classification" and m.labels == ("a", "b", "c") and m.source == "edgecv"
            assert m.preprocessing.mean == (127.5,) and m.preprocessing.color == "rgb"
            assert m.quantization["precision"] == artifact.precision
            assert m.provenance["source_kind"] == "keras" and len(m.provenance["source_sha256"]) == 64
            assert "tensorflow" in m.provenance["tools"] and m.head == {"kind": "multiclass", "output": "probabilities"}
            if artifact.precision == "int8":
                assert m.quantization["calibration"]["size"] == 20
                assert len(m.quantization["calibration"]["sha256"]) == 64
            if artifact.format == "onnx":
                assert m.provenance["opset"] == 17
            model.preprocess(_images(1, 3)[0], color="bgr")
            got = model.invoke()[model.output_index("scores")]
            assert np.abs(got - expected).max() < (0.05 if artifact.precision == "int8" else 1e-5)
    report = result.report
    assert report.validation_size == 8 and report.calibration["size"] == 20
    assert report.find("tflite", "int8").io_dtype == "uint8"
    assert all(a.validated for a in report.artifacts)


@pytest.mark.parametrize("kind", ["keras", "h5", "savedmodel"])
def test_model_files_and_savedmodel_convert(tiny, tmp_path, kind):
    if kind == "keras":
        src = tmp_path / "m.keras"
        tiny.save(src)
    elif kind == "h5":
        src = tmp_path / "m.h5"
        tiny.save(src)
    else:
        src = tmp_path / "sm"
        tiny.export(src, format="tf_saved_model", verbose=False)
    out = tmp_path / "out"
    result = converters.convert(src, task="classification", target=None, precision="fp32", preprocessing=PRE,
                                validation=_images(4, 2), output_dir=out)
    assert len(result.artifacts) == 2
    ref = result.report.artifacts[0]
    assert ref.max_abs_diff is not None and ref.max_abs_diff < 1e-5
    with edgecv.load(result.artifact("onnx", "fp32").path) as model:
        assert model.manifest.provenance["source_kind"] == ("saved-model" if kind == "savedmodel" else "keras-file")


def test_onnx_source_gives_tflite_through_onnx2tf_and_onnx(tiny, tmp_path, onnx2tf_tool):
    first = converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                               preprocessing=PRE, output_dir=tmp_path / "a")
    onnx_path = first.artifacts[0].path                   # an NHWC ONNX input: onnx2tf must keep its shape
    result = converters.convert(onnx_path, task="classification", target="cpu", precision=["fp32", "dynamic"],
                                preprocessing=PRE, validation=_images(4, 5), output_dir=tmp_path / "c", name="again")
    assert [(a.format, a.precision) for a in result.artifacts] == [("tflite", "fp32"), ("tflite", "dynamic"),
                                                                   ("onnx", "fp32"), ("onnx", "dynamic")]
    reference = result.report.artifacts[0]
    assert reference.reference and reference.format == "tflite" and reference.max_abs_diff < 1e-5
    assert all(a.validated for a in result.report.artifacts)
    with edgecv.load(result.artifact("tflite", "fp32").path) as model:
        assert model.manifest.preprocessing.layout == "nhwc" and model.inputs[0].shape == (1, 32, 32, 3)


def test_missing_onnx2tf_is_refused_before_any_work_and_its_advice_works(tiny, tmp_path, monkeypatch,
                                                                          onnx2tf_tool):
    from edgecv.errors import BackendNotAvailable

    onnx_path = converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                                   preprocessing=PRE, output_dir=tmp_path / "a").artifacts[0].path
    monkeypatch.setenv("EDGECV_ONNX2TF", str(tmp_path / "nowhere"))
    with pytest.raises(BackendNotAvailable, match="EDGECV_ONNX2TF=.*names no onnx2tf.*make onnx2tf"):
        converters.convert(onnx_path, task="classification", target="rpi4", precision="fp32",
                           output_dir=tmp_path / "b")
    monkeypatch.setenv("EDGECV_ONNX2TF", "")
    monkeypatch.setattr("converters.onnx_translate.TOOL_ENV", tmp_path / "no-env")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BackendNotAvailable, match="needs onnx2tf.*set EDGECV_ONNX2TF=.*formats='onnx' with target 'cpu'"):
        converters.convert(onnx_path, task="classification", target="rpi4", precision="fp32",
                           output_dir=tmp_path / "b")
    assert _listing(tmp_path / "b") == []
    # the advice: formats='onnx' (rpi4 runs ONNX Runtime too) ...
    onnx_only = converters.convert(onnx_path, task="classification", target="rpi4", precision="fp32",
                                   formats="onnx", preprocessing=PRE, output_dir=tmp_path / "b")
    assert [(a.format, a.precision) for a in onnx_only.artifacts] == [("onnx", "fp32")]
    # ... or EDGECV_ONNX2TF naming the tool environment's folder (what `make onnx2tf` made)
    monkeypatch.setenv("EDGECV_ONNX2TF", str(onnx2tf_tool.bin_dir.parent))
    from converters.plan import plan_artifacts

    plans, _, _ = plan_artifacts("rpi4", "fp32", None, None, source_is_onnx=True)
    assert [(p.format, p.precision) for p in plans] == [("tflite", "fp32")]


def test_unknown_task_leaves_nothing(tiny, tmp_path):
    with pytest.raises(ConfigError, match="unknown task 'clasify'.*did you mean 'classify'"):
        converters.convert(tiny, task="clasify", output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_precision_the_format_does_not_support(tiny, tmp_path):
    with pytest.raises(ConfigError, match="only full-integer TFLite int8"):
        converters.convert(tiny, task="classification", target=None, precision="int8", formats="onnx",
                           io_dtype="uint8", calibration=_images(20, 1), output_dir=tmp_path)
    with pytest.raises(ConfigError, match="runs int8 models, not fp16"):
        converters.convert(tiny, task="classification", target="coral-usb", precision="fp16", output_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_calibration_shape_mismatch_leaves_nothing(tiny, tmp_path):
    wrong = np.zeros((20, 16, 16, 3), np.float32)
    with pytest.raises(CalibrationError, match=r"must be shaped \(N, 32, 32, 3\)"):
        converters.convert(tiny, task="classification", target=None, precision="int8", calibration=wrong,
                           preprocessing=PRE, output_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_int8_without_calibration(tiny, tmp_path):
    with pytest.raises(CalibrationError, match="needs calibration data"):
        converters.convert(tiny, task="classification", target="coral-usb", output_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_output_path_not_writable(tiny, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        converters.convert(tiny, task="classification", target=None, precision="fp32", output_dir=a_file)
    with pytest.raises(ConfigError, match="cannot create output folder"):
        converters.convert(tiny, task="classification", target=None, precision="fp32", output_dir=a_file / "sub")
    assert a_file.read_text() == "x"


def test_read_only_folder(tiny, tmp_path, monkeypatch):
    """A folder the process may not write to (simulated: tests run as root, which ignores permissions)."""
    staging = importlib.import_module("converters.staging")

    folder = tmp_path / "ro"
    folder.mkdir()
    real_mkdtemp = staging.tempfile.mkdtemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Permission denied", str(folder))
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(staging.tempfile, "mkdtemp", refuse)
    with pytest.raises(ConfigError, match="not writable"):
        converters.convert(tiny, task="classification", target=None, precision="fp32", output_dir=folder)
    assert list(folder.iterdir()) == []


def test_existing_files_are_kept_unless_overwrite(tiny, tmp_path):
    converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                       preprocessing=PRE, output_dir=tmp_path, name="m")
    (tmp_path / "m_fp32.onnx").write_bytes(b"old")
    with pytest.raises(ConfigError, match="already exists; pass overwrite=True"):
        converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                           preprocessing=PRE, output_dir=tmp_path, name="m")
    assert (tmp_path / "m_fp32.onnx").read_bytes() == b"old"
    converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                       preprocessing=PRE, output_dir=tmp_path, name="m", overwrite=True)
    assert (tmp_path / "m_fp32.onnx").read_bytes()[:1] == b"\x08"
    assert _listing(tmp_path) == ["m_fp32.onnx", "m_report.json"]


@pytest.mark.skipif(os.name != "posix", reason="killed conversions are recognised by probing process ids (POSIX)")
def test_staging_folders_of_killed_conversions_are_removed(tiny, tmp_path):
    """A killed conversion leaves its hidden staging folder; the next conversion into that folder removes it,
    and only it: a live process's, another host's, a folder of another naming and a plain file stay."""
    import subprocess
    import sys

    staging = importlib.import_module("converters.staging")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                                   # a process id that no longer runs
    host = staging.host_tag()
    prefix = staging.STAGE_PREFIX
    killed = tmp_path / f"{prefix}{host}-{gone.pid}-abc"
    (killed / "half").mkdir(parents=True)
    (killed / "half" / "m_fp32.onnx").write_bytes(b"partial")
    kept = [tmp_path / f"{prefix}{host}-{os.getppid()}-live", tmp_path / f"{prefix}otherhost-{gone.pid}-far",
            tmp_path / f"{prefix}q1w2e3"]
    for folder in kept:
        folder.mkdir()
    (tmp_path / f"{prefix}{host}-{gone.pid}-file").write_bytes(b"a file, not a staging folder")
    converters.convert(tiny, task="classification", target=None, precision="fp32", formats="onnx",
                       preprocessing=PRE, output_dir=tmp_path, name="m")
    assert not killed.exists()
    assert _listing(tmp_path) == sorted([f"{prefix}{host}-{gone.pid}-file", "m_fp32.onnx", "m_report.json",
                                         *(folder.name for folder in kept)])


def test_int8_op_without_kernel_fails_loudly_and_cleanly(tmp_path):
    import keras
    import tensorflow as tf

    model = _tiny(lambda x: keras.layers.Lambda(lambda t: tf.math.sin(t))(x))
    with pytest.raises(UnsupportedOpError, match="SIN"):
        converters.convert(model, task="classification", target=None, precision=["fp32", "int8"],
                           formats="tflite", calibration=_images(20, 1), preprocessing=PRE, output_dir=tmp_path)
    assert _listing(tmp_path) == []          # the fp32 built before it is gone too


def test_calibration_validation_overlap(tiny, tmp_path):
    calib = _images(20, 1)
    with pytest.raises(CalibrationError, match="3 of the 8 distinct validation inputs are also in the calibration"):
        converters.convert(tiny, task="classification", target=None, precision="int8", formats="onnx",
                           calibration=calib, validation=np.concatenate([calib[:3], _images(5, 9)]),
                           preprocessing=PRE, output_dir=tmp_path)
    assert _listing(tmp_path) == []
    result = converters.convert(tiny, task="classification", target=None, precision="int8", formats="onnx",
                                calibration=calib, validation=np.concatenate([calib[:3], _images(5, 9)]),
                                preprocessing=PRE, output_dir=tmp_path, allow_overlap=True)
    assert any("optimistic" in n for n in result.report.notes)


def test_other_bad_arguments(tiny, tmp_path):
    cases = [
        (dict(preprocessing={"mean": 1, "sdt": 2}), ConfigError, "unknown preprocessing field 'sdt'"),
        (dict(preprocessing={"mean": 127.5}), ConfigError, "only one of mean/std"),
        (dict(head={"knd": "multiclass"}), ConfigError, "unknown classification head setting 'knd'"),
        (dict(labels=["a", "b"] * 3), ConfigError, "6 labels for a model with 3 classes"),
        (dict(outputs={"boxes": "scores"}), ConfigError, "not one of classification's roles"),
        (dict(anchors={"kind": "ssd"}), ConfigError, "anchors are for detection models"),
        (dict(calibration_method="kl"), ConfigError, "calibration_method 'kl'"),
        (dict(opset=7), ConfigError, "opset must be an int in 13..21"),
        (dict(target="jetson-orin-nano"), EdgeCVError, "unknown target"),
        (dict(accuracy_budget=-1), ConfigError, "accuracy_budget"),
        (dict(accuracy_budget=float("nan")), ConfigError, "accuracy_budget must be a non-negative number"),
        (dict(precision=5), ConfigError, "precision must be a name or a list of names"),
        (dict(formats=5), ConfigError, "formats must be a name or a list of names"),
        (dict(output_dir=5), ConfigError, "output_dir must be a folder path"),
        (dict(head={"score_threshold": 0.5}), ConfigError, "unknown classification head setting"),
    ]
    for kwargs, error, words in cases:
        args = dict(task="classification", target=None, precision="fp32", formats="onnx", preprocessing=PRE,
                    output_dir=tmp_path)
        args.update(kwargs)
        with pytest.raises(error, match=words):
            converters.convert(tiny, **args)
    with pytest.raises(ModelLoadError, match="does not exist"):
        converters.convert(tmp_path / "missing.keras", task="classification", output_dir=tmp_path)
    assert _listing(tmp_path) == []


def test_tflite_manifest_writer_replaces_its_entry(tiny, tmp_path):
    from converters.tflite_writer import embed_metadata, signature_outputs
    from edgecv.formats.tflite import parse_tflite

    result = converters.convert(tiny, task="classification", target=None, precision="fp32", formats="tflite",
                                preprocessing=PRE, output_dir=tmp_path)
    data = open(result.artifacts[0].path, "rb").read()
    again = embed_metadata(data, "EDGECV_MANIFEST", b'{"task": "embedding"}')
    parsed = parse_tflite(again)
    assert parsed.metadata["EDGECV_MANIFEST"] == b'{"task": "embedding"}'
    assert "min_runtime_version" in parsed.metadata
    assert list(parsed.metadata).count("EDGECV_MANIFEST") == 1
    assert len(again) < len(data) + 4096
    assert list(signature_outputs(again)) == ["scores"]


_FAKE_COMPILER = '''#!{python}
import os, shutil, sys
out, model = sys.argv[sys.argv.index("-o") + 1], sys.argv[-1]
stem = os.path.splitext(os.path.basename(model))[0]
shutil.copy(model, os.path.join(out, stem + "_edgetpu.tflite"))
print("""Edge TPU Compiler version 16.0.384591198

Model compiled successfully in 12 ms.

Input model: %s
Input size: 5.21KiB
Output model: %s
Output size: 6.51KiB
On-chip memory used for caching model parameters: 6.02KiB
On-chip memory remaining for caching model parameters: 1.02MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 4
Operation log: %s_edgetpu.log

Number of operations that will run on Edge TPU: 4
Number of operations that will run on CPU: 0

Operator                       Count      Status

CONV_2D                        1          Mapped to Edge TPU
Compilation child process completed within timeout period.
Compilation succeeded!""" % (model, os.path.join(out, stem + "_edgetpu.tflite"), stem))
'''


def test_coral_target_without_compiler_ships_int8_and_says_how(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = converters.convert(tiny, task="classification", target="coral-usb", calibration=_images(20, 1),
                                validation=_images(6, 2), preprocessing=PRE, output_dir=tmp_path / "out", name="c")
    assert [(a.format, a.precision, a.io_dtype, a.edgetpu) for a in result.artifacts] == [
        ("tflite", "int8", "uint8", False)]
    assert result.report.edgetpu["compiler_found"] is False
    note = next(n for n in result.report.notes if n.startswith("Edge TPU compile not done"))
    assert "x86-64 Linux" in note and f"edgetpu_compiler -o {tmp_path / 'out'} -s {tmp_path / 'out' / 'c_int8.tflite'}" in note
    with edgecv.load(result.artifacts[0].path) as m:
        assert m.manifest.target == "coral-usb"


def _fake_compiler_on_path(tmp_path, monkeypatch) -> None:
    """Put a stand-in edgetpu_compiler (see _FAKE_COMPILER) first on PATH."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "edgetpu_compiler"
    fake.write_text(_FAKE_COMPILER.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))


def test_coral_target_with_compiler_ships_the_compiled_model(tiny, tmp_path, monkeypatch):
    _fake_compiler_on_path(tmp_path, monkeypatch)
    out = tmp_path / "out"
    result = converters.convert(tiny, task="classification", target="coral-usb", calibration=_images(20, 1),
                                validation=_images(6, 2), preprocessing=PRE, output_dir=out, name="c")
    assert sorted(os.path.basename(a.path) for a in result.artifacts) == ["c_int8.tflite", "c_int8_edgetpu.tflite"]
    assert result.report.recommended == "c_int8_edgetpu.tflite"
    assert result.report.edgetpu["ok"] is True
    compiled = next(a for a in result.artifacts if a.edgetpu)
    with edgecv.load(compiled.path) as m:
        assert m.manifest.quantization["io_dtype"] == "uint8" and m.manifest.task == "classification"
    assert sorted(p.name for p in out.iterdir()) == ["c_int8.tflite", "c_int8_edgetpu.tflite", "c_report.json"]


def test_existing_edgetpu_build_is_refused_and_never_lost(tiny, tmp_path, monkeypatch):
    """An Edge TPU build already in the folder: refused up front without overwrite; with overwrite and a
    publish that fails at the report, it stays (replaced) while the files the call added go again."""
    from converters import publish

    _fake_compiler_on_path(tmp_path, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    twin = out / "c_int8_edgetpu.tflite"
    twin.write_bytes(b"the user's own build")
    args = dict(task="classification", target="coral-usb", calibration=_images(20, 1), validation=_images(6, 2),
                preprocessing=PRE, output_dir=out, name="c")
    with pytest.raises(ConfigError, match="c_int8_edgetpu.tflite already exists"):
        converters.convert(tiny, **args)
    assert twin.read_bytes() == b"the user's own build" and sorted(p.name for p in out.iterdir()) == [twin.name]

    def failing_report(path, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish, "atomic_write", failing_report)
    with pytest.raises(OSError):
        converters.convert(tiny, overwrite=True, **args)
    assert sorted(p.name for p in out.iterdir()) == [twin.name]      # c_int8.tflite (added) removed again
