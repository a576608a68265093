"""Writing the manifest into ONNX metadata_props and TFLite metadata without onnx or TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgecv
from edgecv.formats.onnx import parse_onnx
from edgecv.formats.onnx_metadata import with_metadata_prop
from edgecv.formats.tflite import parse_tflite
from edgecv.formats.tflite_metadata_writer import with_metadata_entry

V1 = Path(__file__).parent / "data" / "manifest_v1"


def _outputs(path, image):
    with edgecv.load(path) as model:
        return [np.array(o) for o in model.run(image)]


@pytest.mark.device
@pytest.mark.parametrize("suffix", ["tflite", "onnx"])
def test_an_entry_is_replaced_everything_else_kept_and_the_model_computes_the_same(tmp_path, suffix):
    source = V1 / f"detection_v1_fp32.{suffix}"
    data = source.read_bytes()
    if suffix == "tflite":
        before = parse_tflite(data).metadata
        out = with_metadata_entry(data, "EDGECV_MANIFEST", b'{"task": "detection"}')
        after = parse_tflite(out).metadata
        assert after["EDGECV_MANIFEST"] == b'{"task": "detection"}'
        assert {k: v for k, v in after.items() if k != "EDGECV_MANIFEST"} == \
            {k: v for k, v in before.items() if k != "EDGECV_MANIFEST"}
    else:
        before = parse_onnx(data).metadata_props
        out = with_metadata_prop(data, "edgecv.manifest", '{"task": "detection"}')
        after = parse_onnx(out).metadata_props
        assert after == {**before, "edgecv.manifest": '{"task": "detection"}'}
    written = tmp_path / f"m.{suffix}"
    written.write_bytes(out)
    with edgecv.load(source) as model:
        spec = model.inputs[0]
    image = np.random.default_rng(0).uniform(-1, 1, spec.shape).astype(spec.dtype)
    for a, b in zip(_outputs(source, image), _outputs(written, image)):
        assert np.array_equal(a, b)
    with edgecv.load(written) as model:
        assert model.manifest.task == "detection" and model.manifest.labels is None


def test_the_onnx_package_reads_the_written_model():
    onnx = pytest.importorskip("onnx")
    out = with_metadata_prop((V1 / "detection_v1_fp32.onnx").read_bytes(), "edgecv.manifest", "{}")
    model = onnx.load_from_string(out)
    onnx.checker.check_model(model)
    assert [(p.key, p.value) for p in model.metadata_props] == [("edgecv.manifest", "{}")]
