"""convert(target=...) builds what each profile names, each artifact loads with load(target=...), and the CLI."""

import json
import os

import cv2
import numpy as np
import pytest

import edgecv
import targets
from edgecv.cli import main

tf = pytest.importorskip("tensorflow")
converters = pytest.importorskip("converters")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PRE = {"mean": 127.5, "std": 127.5, "color": "rgb"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras = tf.keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    for name, n in (("calib", 24), ("val", 12)):
        (folder / name).mkdir()
        for i in range(n):
            img = cv2.GaussianBlur(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), (5, 5), 0)
            cv2.imwrite(str(folder / name / f"{i:03d}.png"), img)
    return model, folder


@pytest.mark.slow
@pytest.mark.parametrize("target", ["rpi4", "coral-usb", "jetson-orin"])
def test_convert_for_target_builds_its_recipe_and_loads_there(tiny, tmp_path, target):
    model, folder = tiny
    result = converters.convert(model, task="classification", target=target, calibration=str(folder / "calib"),
                                validation=str(folder / "val"), preprocessing=PRE, labels=["a", "b", "c"],
                                output_dir=tmp_path, name="tiny")
    # Coral: the uncompiled int8 model is what the compile step starts from (no edgetpu_compiler here)
    wanted = {(r.format, r.precision, r.io_dtype) for r in targets.recipe(target)}
    built = {(a.format, a.precision, a.io_dtype) for a in result.artifacts if not a.edgetpu}
    assert built == wanted
    image = cv2.imread(str(folder / "val" / "000.png"))
    for artifact in result.artifacts:
        with edgecv.load(artifact.path, target=target) as m:
            assert m.manifest.target == target and m.manifest.task == "classification"
            top = edgecv.Classifier(m).classify(image).top
            assert top.label in ("a", "b", "c")
    assert all(a.validated for a in result.report.artifacts)  # (an untrained model: no accuracy claims)
    int8 = next(a for a in result.report.artifacts if a.precision == "int8" and not a.name.endswith("_edgetpu.tflite"))
    assert int8.quant_debug["layers"] and int8.delegate["int8_conv_share"] is not None   # every int8 artifact
    if target == "coral-usb":        # no edgetpu_compiler here: the op count comes from targets.check's reading
        assert "before the first float op" in int8.delegate["edgetpu_ops"]
    if target == "rpi4":
        assert "xnnpack_not_delegated" in int8.delegate
    if target == "jetson-orin":      # TensorRT parses Q/DQ only with zero points of 0
        _assert_symmetric_activations(next(a.path for a in result.artifacts if a.precision == "int8"), target)


def _assert_symmetric_activations(path, target):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2]
    assert zero_points and all(not zp.any() for zp in zero_points)
    with edgecv.load(path) as m:
        assert m.manifest.quantization["symmetric_activations"] is True
    assert not [p for p in targets.check(path, target).problems if p.code == "zero-point"]


@pytest.mark.slow
def test_cli_convert_table_json_and_exit_codes(tiny, tmp_path, capsys):
    _, folder = tiny
    args = ["convert", str(folder / "tiny.keras"), "--task", "classify", "--target", "rpi4",
            "--calibration", str(folder / "calib"), "--validation", str(folder / "val"),
            "--mean", "127.5", "--std", "127.5", "--color", "rgb", "--out", str(tmp_path / "out"), "--name", "t"]
    code = main(args)
    out = capsys.readouterr().out
    assert "top1_agreement" in out
    # exit 1 exactly when no artifact is within the budget (possible for this untrained model)
    assert (code, "ship: t_" in out, "no artifact to ship" in out) in ((0, True, False), (1, False, True))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tflite")) == ["t_fp16.tflite", "t_fp32.tflite",
                                                                           "t_int8.tflite"]
    # existing files are kept without --force: a one-line error, exit 3
    assert main(args) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert main(args + ["--force", "--json", "--precision", "fp32"]) == 0   # fp32 is its own reference
    data = json.loads(capsys.readouterr().out)
    assert data["report"]["target"] == "rpi4" and [a["precision"] for a in data["artifacts"]] == ["fp32"]
    # int8 without calibration images
    assert main(["convert", str(folder / "tiny.keras"), "--task", "classify", "--target", "coral-usb",
                 "--out", str(tmp_path / "c")]) == 3
    assert "calibration" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_cli_convert_stderr_holds_edgecv_lines_only(tiny, tmp_path):
    """A fresh process as a user runs it: TensorFlow's import notices, the quantizer's settings and
    TFLite's delegate line stay out of stderr (TF_CPP_MIN_LOG_LEVEL, edgecv's default 3 for the CLI)."""
    import subprocess
    import sys

    _, folder = tiny
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", "import sys; from edgecv.cli import main; sys.exit(main())",
                           "convert", str(folder / "tiny.keras"), "--task", "classify", "--target", "cpu",
                           "--calibration", str(folder / "calib"), "--validation", str(folder / "val"),
                           "--mean", "127.5", "--std", "127.5", "--color", "rgb", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    assert "wrote " in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert all(line.startswith("WARNING edgecv") for line in lines), lines
