"""Untrusted files other than models: galleries (.npz) and manifests (JSON) are data, never code.

A gallery holding a pickle payload must be refused with ConfigError without
the payload ever running (it would create a marker file); a manifest whose
strings look like code stays plain strings.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import edgecv
from edgecv.manifest import Manifest, sidecar_path
from edgecv.tasks.gallery import Gallery

from .tiny_models import onnx_models

pytestmark = pytest.mark.device


class _Payload:
    """Unpickling this creates *marker*: proof that a loader ran pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _gallery_npz(vectors: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    meta = {"format": "edgecv.gallery", "version": 1, "metric": "cosine", "dim": 2, "names": ["a"]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in (("vectors", vectors), ("owners", np.zeros(1, np.int32)),
                            ("meta", np.frombuffer(json.dumps(meta).encode(), np.uint8))):
            member = io.BytesIO()
            np.save(member, array, allow_pickle=allow_pickle)
            archive.writestr(f"{name}.npy", member.getvalue())
    return buffer.getvalue()


def test_a_clean_gallery_file_loads(tmp_path):
    path = tmp_path / "clean.npz"
    path.write_bytes(_gallery_npz(np.array([[1.0, 0.0]], np.float32)))
    gallery = Gallery.load(path)
    assert gallery.names == ("a",)
    np.testing.assert_array_equal(gallery.templates("a"), [[1.0, 0.0]])


def test_gallery_with_pickled_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(_gallery_npz(np.array([_Payload(marker)], dtype=object), allow_pickle=True))
    with pytest.raises(edgecv.ConfigError, match="not a readable edgecv gallery"):
        Gallery.load(path)
    assert not marker.exists()


def test_gallery_file_that_is_a_bare_pickle_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(edgecv.ConfigError, match="not a readable edgecv gallery"):
        Gallery.load(path)
    assert not marker.exists()


def test_gallery_file_that_is_a_plain_npy_is_a_config_error(tmp_path):
    path = tmp_path / "plain.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 2), np.float32))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(edgecv.ConfigError):
        Gallery.load(path)


def test_gallery_member_claiming_a_huge_shape_is_a_config_error(tmp_path):
    from numpy.lib import format as npy_format

    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 60,)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("vectors", "owners", "meta"):
            archive.writestr(f"{name}.npy", header.getvalue() + bytes(64))
    path = tmp_path / "huge.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(edgecv.ConfigError):
        Gallery.load(path)


def test_sidecar_manifest_strings_stay_data(tmp_path):
    marker = tmp_path / "pwned"
    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_models()["tiny_conv_relu"])
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    sidecar_path(model).write_text(json.dumps({"task": "classification", "labels": [code, "b", "c", "d"]}))
    with edgecv.load(model) as m:
        assert m.manifest.labels == (code, "b", "c", "d")
    assert not marker.exists()


def test_sidecar_manifest_that_is_not_json_is_a_config_error(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_models()["tiny_conv_relu"])
    sidecar_path(model).write_bytes(pickle.dumps({"labels": ["a"]}))
    with pytest.raises(edgecv.ConfigError, match="not valid JSON"):
        edgecv.load(model)


def test_deeply_nested_manifest_json_is_a_config_error():
    with pytest.raises(edgecv.ConfigError):
        Manifest.from_json('{"labels": ' + "[" * 100_000 + "]" * 100_000 + "}")
