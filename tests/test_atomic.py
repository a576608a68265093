"""Atomic writes: all or nothing, never overwrite unless asked."""

import os

import pytest

from edgecv import ConfigError, atomic_path, atomic_write


@pytest.mark.device
def test_write_and_replace(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write(p, b"one")
    atomic_write(p, "two")
    assert p.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]


@pytest.mark.device
def test_no_overwrite_unless_asked(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"old")
    with pytest.raises(ConfigError, match="overwrite=True"):
        atomic_write(p, b"new", overwrite=False)
    assert p.read_bytes() == b"old"


@pytest.mark.device
def test_failure_inside_atomic_path_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".onnx"
            tmp.write_bytes(b"half")
            raise RuntimeError("converter crashed")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.device
def test_empty_output_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        with atomic_path(tmp_path / "x.tflite"):
            pass
    assert os.listdir(tmp_path) == []


@pytest.mark.device
def test_unwritable_or_missing_folder(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "x.bin", b"1")
    ro = tmp_path / "ro"
    ro.mkdir()
    # root ignores directory permissions, so simulate a read-only folder
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(ro) else real_access(path, mode))
    with pytest.raises(ConfigError, match="not writable"):
        atomic_write(ro / "x.bin", b"1")
    assert os.listdir(ro) == []
