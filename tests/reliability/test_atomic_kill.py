"""SIGKILL in the middle of writing leaves the old file, or no file, or the complete new one: never a partial file.

Two levels: edgecv.atomic itself (a child writes a large file in chunks through
``atomic_path`` and is killed after the first chunk), and a whole
``converters.convert`` run killed while it writes a 32 MB artifact into its
staging folder and at spread-out moments of the run. A kill cannot clean up,
so the hidden temporary file or staging folder may stay behind (the next
conversion into that folder removes such staging folders); the files under
their final names are always whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgecv

from .tiny_models import onnx_embedder

REPO = Path(__file__).resolve().parents[2]

_WRITER = r"""
import sys, time
from edgecv.atomic import atomic_path
dest, chunks = sys.argv[1], int(sys.argv[2])
with atomic_path(dest) as tmp:
    with open(tmp, "wb") as f:
        for i in range(chunks):
            f.write(bytes([65 + i % 26]) * (1 << 20))
            f.flush()
            if i == 0:
                print("writing", flush=True)
            time.sleep(0.01)
print("done", flush=True)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@pytest.mark.device
@pytest.mark.parametrize("old", [b"the old complete file\n", None])
def test_atomic_write_killed_mid_write_leaves_the_old_file_or_none(tmp_path, old):
    dest = tmp_path / "model.bin"
    if old is not None:
        dest.write_bytes(old)
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(dest), "64"], stdout=subprocess.PIPE, env=_env())
    assert child.stdout.readline() == b"writing\n"      # first megabyte written to the temporary file
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    temporaries = [p for p in tmp_path.iterdir() if p.name != "model.bin"]
    assert temporaries and all(p.name.startswith(".model.bin.") for p in temporaries)  # the killed write
    assert 0 < temporaries[0].stat().st_size < 64 << 20                                # ... really partial
    if old is None:
        assert not dest.exists()
    else:
        assert dest.read_bytes() == old


@pytest.mark.device
def test_atomic_write_that_finishes_replaces_the_file_whole(tmp_path):
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old")
    done = subprocess.run([sys.executable, "-c", _WRITER, str(dest), "3"], capture_output=True, env=_env())
    assert done.returncode == 0 and done.stdout.endswith(b"done\n")
    data = dest.read_bytes()
    assert len(data) == 3 << 20 and data[:1] == b"A" and data[-1:] == b"C"
    assert os.listdir(tmp_path) == ["model.bin"]


_CONVERT = r"""
import sys
import converters
converters.convert(sys.argv[1], task="embedding", target=None, precision="fp32", formats="onnx",
                   output_dir=sys.argv[2], overwrite=True, name="emb")
print("done", flush=True)
"""
PROJECTION = 500_000  # 32 MB of weights: writing them takes long enough to be caught in the act


def _start_conversion(src: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CONVERT, str(src), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=_env())


def _staged_bytes(out: Path) -> int:
    """Bytes written so far into the converter's hidden staging folder(s)."""
    total = 0
    for folder in out.glob(".edgecv-convert-*"):
        for path in folder.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except FileNotFoundError:
                pass
    return total


def _check_destination(dest: Path, old: bytes) -> str:
    """"old", "absent" or "new" (a complete artifact that loads and has the new output); else fail."""
    if not dest.exists():
        return "absent"
    data = dest.read_bytes()
    if data == old:
        return "old"
    with edgecv.load(dest) as model:                 # a partial file would raise ModelLoadError here
        assert model.outputs[0].shape == (1, PROJECTION)
    return "new"


@pytest.mark.slow
def test_conversion_killed_while_writing_leaves_old_or_complete_artifacts(tmp_path):
    pytest.importorskip("onnx")
    src = tmp_path / "emb.onnx"
    src.write_bytes(onnx_embedder(projection=PROJECTION))
    old = onnx_embedder()                            # a valid, different previous artifact
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "emb_fp32.onnx"

    # a complete run first: how long it takes and what it writes
    dest.write_bytes(old)
    started = time.monotonic()
    child = _start_conversion(src, out)
    assert child.communicate(timeout=300)[0].endswith(b"done\n")
    duration = time.monotonic() - started
    assert _check_destination(dest, old) == "new"
    full_size = dest.stat().st_size

    seen = []
    # 1) killed while the artifact is being written into the staging folder
    dest.write_bytes(old)
    child = _start_conversion(src, out)
    deadline = time.monotonic() + 300
    staged = 0
    while time.monotonic() < deadline and child.poll() is None:
        staged = _staged_bytes(out)
        if 0 < staged < full_size:
            break
        time.sleep(0.0005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 0 < staged < full_size, "the kill did not land while the artifact was being written"
    seen.append(_check_destination(dest, old))
    assert seen[-1] == "old"
    assert any(out.glob(".edgecv-convert-*"))       # the kill left its staging folder behind
    # the next complete conversion into the folder removes it
    child = _start_conversion(src, out)
    assert child.communicate(timeout=300)[0].endswith(b"done\n")
    assert _check_destination(dest, old) == "new"
    assert not any(out.glob(".edgecv-convert-*"))

    # 2) killed at moments spread over the whole run (import, build, validation, publish)
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.95, 1.0):
        dest.write_bytes(old)
        child = _start_conversion(src, out)
        time.sleep(duration * fraction)
        child.send_signal(signal.SIGKILL)
        child.wait()
        seen.append(_check_destination(dest, old))
        report = out / "emb_report.json"
        if report.exists():
            import json

            json.loads(report.read_text())           # whole JSON, never cut off
    assert set(seen) <= {"old", "new"}, seen
    import shutil

    shutil.rmtree(out)                               # 32 MB files and what the kills left behind (hidden staging)
    src.unlink()
