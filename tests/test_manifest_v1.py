"""Models written before typed heads (edgecv at 8b2c8f3) load and give the same results today.

The artifacts in tests/data/manifest_v1 were converted by that edgecv (see generate.py there):
a raw SSD detector (anchors, TF box coder, sigmoid scores, no background column) and a
classifier, as fp32 TFLite and ONNX with the manifest embedded; expected.json holds what
that edgecv's Detector and Classifier returned on the images stored next to them.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import edgecv
from edgecv.formats.onnx import read_onnx
from edgecv.formats.tflite import read_tflite
from edgecv.heads import ClassificationHead, DetectionHead

DATA = Path(__file__).parent / "data" / "manifest_v1"
EXPECTED = json.loads((DATA / "expected.json").read_text())
TASKS = {"detection": edgecv.Detector, "classification": edgecv.Classifier}


def _stored_manifest(path: Path) -> dict:
    """The manifest JSON as the old converter wrote it into the file."""
    if path.suffix == ".tflite":
        return json.loads(read_tflite(str(path)).metadata["EDGECV_MANIFEST"])
    return json.loads(read_onnx(str(path)).metadata_props["edgecv.manifest"])


def _close(got, want) -> None:
    """Equal results: same structure, same ids and labels, numbers within float32 rounding."""
    if isinstance(want, dict):
        assert set(got) == set(want)
        for key in want:
            if key != "timing":
                _close(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    else:
        assert got == want


@pytest.mark.device
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_old_artifacts_give_the_same_results(name):
    path = DATA / name
    task = name.split("_v1")[0]
    images = np.load(DATA / "images.npy")
    with TASKS[task](path, **EXPECTED[name]["kwargs"]) as model:
        got = [model(img, color="rgb").to_dict() for img in images]
    _close(got, EXPECTED[name]["results"])
    assert any(len(r.get("detections", r.get("categories", []))) for r in got)


@pytest.mark.device
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_old_manifests_read_as_typed_heads_and_write_back_the_same(name):
    path = DATA / name
    stored = _stored_manifest(path)
    with edgecv.load(path) as model:
        manifest = model.manifest
    head_type = DetectionHead if stored["task"] == "detection" else ClassificationHead
    assert isinstance(manifest.head, head_type)
    assert manifest.head.to_dict() == stored["head"]
    assert manifest.to_dict() == {**stored, "schema_version": manifest.to_dict()["schema_version"]}
    if stored["task"] == "detection":
        assert manifest.head.anchors == edgecv.AnchorSpec.from_dict(stored["head"]["anchors"])
        assert manifest.head.box_coder == edgecv.BoxCoder(order="yxhw", scales=(10.0, 10.0, 5.0, 5.0))
        assert manifest.head.background_class == "none" and manifest.head.background_column is None
