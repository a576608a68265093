"""Files of killed runs: the next write or conversion in that folder removes them; new files honour the umask
(issue 21)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgecv import atomic_write
from edgecv.atomic import file_mode, host_tag, remove_stale_temporaries

pytestmark = pytest.mark.device


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        path = atomic_write(tmp_path / "report.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".gallery.npz.{host_tag()}-{dead}-abcd1234.tmp.npz"
    stale.write_bytes(b"x" * 1000)
    kept = [tmp_path / f".model.tflite.{host_tag()}-{os.getppid()}-abcd1234.tmp.tflite",  # a live process's write
            tmp_path / f".model.onnx.otherhost-{dead}-abcd1234.tmp.onnx",                 # another host's
            tmp_path / ".hidden-user-file.tmp"]
    for path in kept:
        path.write_bytes(b"y")
    atomic_write(tmp_path / "gallery.npz", b"new")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gallery.npz", *(p.name for p in kept)])


def test_hidden_files_of_a_similar_shape_are_never_removed(tmp_path):
    look_alikes = [tmp_path / ".a.bin.q1w2e3r4.tmp", tmp_path / ".notes.20261201.tmp", tmp_path / ".db.Backup01.tmp.bak",
                   tmp_path / f".x.onnx.{host_tag()}-12ab-abcd1234.tmp"]
    for path in look_alikes:                 # a user's hidden files (or an older edgecv's) are never taken for ours
        path.write_bytes(b"2")
        os.utime(path, (0, 0))
    assert remove_stale_temporaries(tmp_path) == []
    assert all(path.exists() for path in look_alikes)


def test_the_host_tag_tells_machines_of_one_name_apart():
    tag = host_tag()
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
        assert tag.endswith("b" + boot)
    assert tag.isalnum()


def test_the_journal_of_a_killed_publish_removes_what_it_added_and_nothing_else(tmp_path):
    from converters.staging import STAGE_PREFIX, host_tag, remove_stale_stages

    out = tmp_path / "out"
    out.mkdir()
    added = out / "model_int8.tflite"
    added.write_bytes(b"new artifact")
    rewritten = out / "model_fp32.onnx"                 # listed, but written again since: kept
    rewritten.write_bytes(b"someone else's")
    stage = out / f"{STAGE_PREFIX}{host_tag()}-{_dead_pid()}-abcd"
    stage.mkdir()
    entries = [{"path": str(added), "size": 12, "sha256": hashlib.sha256(b"new artifact").hexdigest()},
               {"path": str(rewritten), "size": 3, "sha256": hashlib.sha256(b"old").hexdigest()}]
    (stage / "publish-journal.json").write_text(json.dumps(entries))
    assert remove_stale_stages(out) == [stage]
    assert not added.exists() and rewritten.read_bytes() == b"someone else's"


def test_a_full_disk_is_a_config_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    from edgecv import ConfigError

    def no_space(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(ConfigError, match="No space left on device"):
        atomic_write(tmp_path / "model.tflite", b"x")
    assert list(tmp_path.iterdir()) == []
