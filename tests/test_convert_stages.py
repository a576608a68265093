"""convert()'s stages used one by one: one artifact built again with the same context and validated again."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

from converters.build import build_artifact, build_artifacts  # noqa: E402
from converters.context import conversion_context  # noqa: E402
from converters.data import prepare_data  # noqa: E402
from converters.evaluation import validate_artifact, validate_artifacts  # noqa: E402
from converters.manifest_base import manifest_base  # noqa: E402
from converters.options import check_options  # noqa: E402
from converters.plan import name_plans, plan_conversion  # noqa: E402
from converters.source import open_source  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRE = {"mean": 127.5, "std": 127.5, "color": "rgb"}


def _tiny():
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="scores")(x))


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_one_artifact_is_rebuilt_and_validated_again_without_exporting_again(tmp_path, monkeypatch):
    import converters.onnx_export as onnx_export

    exported = []
    real_export = onnx_export.tf_to_onnx
    monkeypatch.setattr(onnx_export, "tf_to_onnx", lambda *a, **k: exported.append(1) or real_export(*a, **k))
    options = check_options(_tiny(), task="classify", target=None, precision=["fp32", "int8"], formats="onnx",
                            calibration=_images(20, 1), validation=_images(8, 2), preprocessing=PRE,
                            output_dir=tmp_path, name="m")
    plans, target_name, notes = plan_conversion(options)
    source = open_source(options)
    plan_set = name_plans(plans, target_name, notes, stem=source.stem, output_dir=tmp_path, options=options)
    data = prepare_data(options, source, plan_set)
    manifest = manifest_base(options, source, data, target_name)
    with conversion_context(options, source, plan_set, data, manifest) as ctx:
        staged = build_artifacts(ctx)
        baseline, reports = validate_artifacts(ctx, staged)
        int8 = staged[1]
        again = build_artifact(ctx, int8.plan, dest=ctx.stage / "again.onnx")
        report = validate_artifact(ctx, baseline, again)
        assert again.path.is_file() and again.plan == int8.plan and again.name == "m_int8.onnx"
    assert [s.name for s in staged] == ["m_fp32.onnx", "m_int8.onnx"] and exported == [1]
    assert reports[0].reference and reports[0].drop_points == 0.0
    first = reports[1]
    assert report.validated and report.name == first.name and report.path == first.path
    assert set(report.metrics) == set(first.metrics) == {"top1_agreement"}
    assert report.drop_points is not None and report.within_budget is not None
    assert report.max_abs_diff is not None and report.max_abs_diff < 0.05
    assert list(tmp_path.iterdir()) == []              # nothing published, the staging folder removed
