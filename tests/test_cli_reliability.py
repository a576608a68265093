"""The CLI and file findings of issue 21: exit codes, closed pipes, Ctrl-C, streams, strict JSON, overwrite,
one overlay per video frame, damaged videos, bad baselines and galleries."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import edgecv
from edgecv.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, main
from edgecv.tasks.gallery import Gallery

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


#: the float MobileNet states no preprocessing: the run flags state what its upstream tests use
CLASSIFY = ("--task", "classify", "--mean", "127.5", "--std", "127.5")


def _classifier(fixtures) -> str:
    return str(fixtures / "classification" / "mobilenet_v1_0.25_224_float.tflite")


def _video(path: Path, frames: int = 5) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


# -- exit codes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", [["--threads", "-3"], ["--threads", "100000"], ["--max-frames", "-1"],
                                  ["--queue-size", "0"], ["--top-k", "0"]])
def test_bad_numbers_are_usage_errors(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "m.tflite", "--task", "classify", "--source", "x.jpg", *flag])
    assert exc.value.code == 2
    assert flag[0] in capsys.readouterr().err


@pytest.mark.device
def test_a_huge_camera_index_is_one_edgecv_error(fixtures, capsys):
    code = main(["run", _classifier(fixtures), *CLASSIFY, "--source", "99999999999999999999"])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "camera index" in err[0]


def test_an_interrupt_turned_into_another_exception_still_exits_130(monkeypatch, capsys):
    def interrupted_import(argv):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:   # what numpy does when Ctrl-C lands in its import
            raise ImportError("numpy.core.multiarray failed to import") from exc

    monkeypatch.setattr(sys.modules["edgecv.cli"], "_main", interrupted_import)
    assert main(["targets"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "edgecv: interrupted"


def test_ctrl_c_while_the_command_imports_is_one_line(tmp_path):
    code = ("import sys, os, signal, time; sys.argv[0] = 'edgecv'; import edgecv.cli\n"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip() == "edgecv: interrupted" and "Traceback" not in done.stderr


# -- closed pipes and streams ---------------------------------------------------------------------------------
def _closed_stdout(args: list[str]) -> subprocess.CompletedProcess:
    """Run edgecv with a stdout whose reader is already gone (like ``| head`` after its lines)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "edgecv.cli", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, env=ENV, timeout=300)
    finally:
        os.close(write)


@pytest.mark.device
def test_run_json_into_a_closed_pipe_ends_quietly(fixtures):
    done = _closed_stdout(["run", _classifier(fixtures), *CLASSIFY, "--source",
                           str(fixtures / "images"), "--json"])
    assert done.returncode == EXIT_PIPE_CLOSED
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.device
def test_check_json_into_a_closed_pipe_ends_quietly(fixtures):
    done = _closed_stdout(["check", "--target", "cpu", "--json", _classifier(fixtures)])
    assert done.returncode == EXIT_PIPE_CLOSED
    assert done.stderr == ""


def test_command_streams_keep_stdout_for_results_and_native_notices_off_stderr():
    code = """if True:
    import os
    from edgecv.cli.streams import command_streams
    with command_streams():
        exec("print('*** EP Error: CUDA failed; falling back')", {"__name__": "onnxruntime.capi.fake"})
        os.write(1, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
        os.write(2, b"Corrupt JPEG data: 3 extraneous bytes before marker 0xd9\\n")
        os.write(2, b"[mjpeg @ 0x55d0a1b2c3d0] dht: len 114 is too large\\n")
        os.write(2, b"[ WARN:0@0.012] global cap_v4l.cpp (999) open VIDEOIO(V4L2:/dev/video9): can't open\\n")
        os.write(2, b"a native error that matters\\n")
        from edgecv.cli.common import print_json
        print_json({"ok": 1})
    print("after")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[:done.stdout.rindex("after")]) == {"ok": 1}   # stdout: edgecv's JSON only
    assert "EP Error" in done.stderr and "a native error that matters" in done.stderr
    for noise in ("INFO: Created", "Corrupt JPEG", "[mjpeg @", "[ WARN:0"):
        assert noise not in done.stderr


def test_command_streams_rotate_their_file_and_lose_no_line_in_order():
    code = """if True:
    import os, time
    from edgecv.cli import streams
    rotations = []
    rotate = streams._Forwarder._rotate
    streams._Forwarder._rotate = lambda self: (rotations.append(1), rotate(self))
    streams.ROTATE_AT_BYTES = 4096
    with streams.command_streams():
        for i in range(3000):
            os.write(2, b"line %05d of a long stream\\n" % i)
            if i % 250 == 0:
                time.sleep(0.1)   # let the forwarder catch up and swap files mid-stream
    print(len(rotations))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 5                  # the file was swapped several times
    lines = done.stderr.splitlines()
    assert lines == [f"line {i:05d} of a long stream" for i in range(3000)]


def test_without_a_writable_temporary_folder_commands_keep_their_streams():
    code = """if True:
    import os
    from edgecv.cli import streams
    def no_room():
        raise OSError(30, "Read-only file system")
    streams._unlinked_temporary = no_room
    with streams.command_streams():
        os.write(2, b"still on stderr\\n")
        print("still on stdout")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "still on stdout\n" and done.stderr == "still on stderr\n"


def test_a_native_crash_inside_a_command_still_reports_on_the_real_stderr():
    code = """if True:
    import ctypes, os
    from edgecv.cli.streams import command_streams
    with command_streams():
        os.write(2, b"last native words\\n")
        ctypes.string_at(0)   # SIGSEGV
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode != 0
    assert "Fatal Python error" in done.stderr and "Segmentation fault" in done.stderr, done.stderr


@pytest.mark.device
def test_a_missing_camera_is_one_line_without_opencvs_own(fixtures):
    done = subprocess.run([sys.executable, "-m", "edgecv.cli", "run", _classifier(fixtures), *CLASSIFY,
                           "--source", "7"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == EXIT_ERROR
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgecv run: error: cannot open camera 7"), done.stderr


# -- strict JSON and drawing ----------------------------------------------------------------------------------
def test_non_finite_numbers_are_written_as_null_with_a_warning(caplog):
    from edgecv.streaming import json_line
    from edgecv.tasks.results import Box, Detection, DetectionResult, Timing

    result = DetectionResult((Detection(Box(float("nan"), 1.0, 2.0, float("inf")), 0.9, 1, None),), 10, 10,
                             Timing(1.0, 1.0, 1.0))
    out = io.StringIO()
    with caplog.at_level("WARNING", logger="edgecv"):
        json_line(SimpleNamespace(index=3, source="a.jpg"), "detect", result, out)
    data = json.loads(out.getvalue(), parse_constant=lambda c: pytest.fail(f"bare {c} in strict JSON"))
    assert data["result"]["detections"][0]["box"]["x1"] is None
    assert "2 non-finite" in caplog.text


def test_drawing_skips_non_finite_boxes():
    pytest.importorskip("cv2")
    from edgecv.draw import draw_detections
    from edgecv.tasks.results import Box, Detection

    image = np.zeros((20, 20, 3), np.uint8)
    drawn = draw_detections(image, [Detection(Box(float("nan"), 0.0, 5.0, 5.0), 0.5, 0, None)])
    assert np.array_equal(drawn, image)


# -- files ----------------------------------------------------------------------------------------------------
@pytest.mark.device
def test_save_to_a_folder_writes_one_file_per_video_frame(fixtures, tmp_path, capsys):
    video = _video(tmp_path / "clip.avi", frames=5)
    out = tmp_path / "frames"
    assert main(["run", _classifier(fixtures), *CLASSIFY, "--source", str(video),
                 "--save", f"{out}/"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"clip_{i:06d}.jpg" for i in range(5)]


@pytest.mark.device
def test_a_damaged_video_that_ends_early_says_so(fixtures, tmp_path, capsys):
    data = _video(tmp_path / "full.avi", frames=60).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:len(data) // 4])
    assert main(["run", _classifier(fixtures), *CLASSIFY, "--source", str(cut)]) == 0
    assert "of its 60 frames (damaged or truncated file)" in capsys.readouterr().err


def test_an_uncreatable_save_folder_is_a_config_error(tmp_path, monkeypatch):
    from edgecv.streaming import OverlayWriter

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(edgecv.ConfigError, match="Read-only file system"):
        OverlayWriter(str(tmp_path / "new") + "/", multi_frame=True, fps=None)


def test_gallery_save_keeps_an_existing_file_unless_asked(tmp_path):
    gallery = Gallery(metric="euclidean")
    gallery.enroll("a", np.array([1.0, 0.0]))
    path = tmp_path / "g.npz"
    path.write_bytes(b"precious")
    with pytest.raises(edgecv.ConfigError, match="overwrite=True"):
        gallery.save(path)
    assert path.read_bytes() == b"precious"
    gallery.save(path, overwrite=True)
    assert Gallery.load(path).names == ("a",)


def _npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def test_deeply_nested_gallery_metadata_is_a_config_error(tmp_path):
    meta = ("[" * 100_000 + "]" * 100_000).encode()
    path = tmp_path / "nested.npz"
    path.write_bytes(_npz({"vectors.npy": _npy(np.zeros((1, 2), np.float32)),
                           "owners.npy": _npy(np.zeros(1, np.int32)),
                           "meta.npy": _npy(np.frombuffer(meta, np.uint8))}))
    with pytest.raises(edgecv.ConfigError, match="nested too deeply"):
        Gallery.load(path)


def test_a_compressed_gallery_claiming_gigabytes_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (900_000_000, 1)})
    claimed = 900_000_000 * 4
    data = bytearray(_npz({"vectors.npy": header.getvalue() + bytes(64),
                           "owners.npy": _npy(np.zeros(1, np.int32)),
                           "meta.npy": _npy(np.zeros(4, np.uint8))}))
    central = data.index(b"PK\x01\x02")              # the first central directory entry: vectors.npy
    data[central + 24:central + 28] = claimed.to_bytes(4, "little")   # its uncompressed size, as a forger sets it
    path = tmp_path / "bomb.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(edgecv.ConfigError, match="gallery limit"):
        Gallery.load(path)


# -- bench: overwrite and baselines ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench_report(fixtures, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "report.json"
    assert main(["bench", _classifier(fixtures), "--runs", "3", "--warmup", "0", "--json", str(path)]) == 0
    return path


@pytest.mark.device
def test_bench_json_keeps_an_existing_file_unless_forced(fixtures, bench_report, tmp_path, capsys):
    before = bench_report.read_bytes()
    assert main(["bench", _classifier(fixtures), "--runs", "2", "--json", str(bench_report)]) == EXIT_ERROR
    assert "--force" in capsys.readouterr().err and bench_report.read_bytes() == before
    again = tmp_path / "again.json"
    again.write_text("old")
    assert main(["bench", _classifier(fixtures), "--runs", "2", "--warmup", "0", "--json", str(again),
                 "--force"]) == 0
    assert json.loads(again.read_text())["latency"]["runs"] == 2
    assert again.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.device
@pytest.mark.parametrize("value", [float("nan"), 0.0, -5.0])
def test_a_baseline_of_nan_zero_or_negative_figures_fails_the_gate(fixtures, bench_report, tmp_path, capsys, value):
    data = json.loads(bench_report.read_text())
    for key in ("p50_ms", "p90_ms", "mean_ms", "fps"):
        data["latency"][key] = value
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(data))
    assert main(["bench", _classifier(fixtures), "--runs", "2", "--baseline", str(baseline)]) == EXIT_ERROR
    assert "positive finite" in capsys.readouterr().err


def test_a_deeply_nested_baseline_is_a_config_error(tmp_path, capsys):
    baseline = tmp_path / "nested.json"
    baseline.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["bench", "m.tflite", "--baseline", str(baseline)]) == EXIT_ERROR
    assert "nested too deeply" in capsys.readouterr().err


@pytest.mark.device
def test_a_report_with_a_nan_figure_is_refused_as_json_not_a_value_error(bench_report):
    from edgecv.benchmark.bench_report import BenchReport

    data = json.loads(bench_report.read_text())
    data["latency"]["p50_ms"] = float("nan")
    with pytest.raises(edgecv.ConfigError, match="NaN or infinite"):
        BenchReport.from_dict(data).to_json()
