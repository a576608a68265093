"""edgecv run: sources (image, folder, video file, live), the threaded reader, JSON lines, overlays, endings."""

import json
import threading
import time

import cv2
import numpy as np
import pytest

from edgecv.cli import EXIT_ERROR, EXIT_USAGE, main
from edgecv.errors import ConfigError
from edgecv.sources import FrameReader, ImageSource, Source, SourceEnded, open_source
from edgecv.streaming import OverlayWriter, run_on_source

CLASSIFIER = "classification/mobilenet_v2_1.0_224_quant.tflite"


def _write_video(path, frames=12, size=(96, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8)
        cv2.circle(img, (10 + 5 * i, 32), 8, (0, 0, 255), -1)
        writer.write(img)
    writer.release()
    return path


class FakeResult:
    def __init__(self, value):
        from edgecv.tasks.results import Timing

        self.value = value
        self.timing = Timing(0.1, 0.2, 0.3)
        self.categories = ()

    def to_dict(self):
        return {"value": self.value, "timing": self.timing.to_dict()}


class MeanTask:
    """A stand-in task: the mean pixel of each frame, optionally slow."""

    def __init__(self, delay_s=0.0):
        self.delay_s = delay_s
        self.threads = set()

    def __call__(self, image, *, color="bgr"):
        self.threads.add(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        return FakeResult(float(image.mean()))


class LiveSource(Source):
    """A camera-like source producing frames as fast as asked, then failing (unplugged)."""

    live = True
    name = "camera:fake"

    def __init__(self, frames, fail_after=None, reopen_ok=False):
        self.frames, self.count, self.fail_after, self.reopen_ok, self.reopens = frames, 0, fail_after, reopen_ok, 0

    def read(self):
        if self.fail_after is not None and self.count >= self.fail_after:
            raise ConnectionError("device unplugged")
        if self.count >= self.frames:
            raise SourceEnded("done")
        self.count += 1
        time.sleep(0.001)
        return np.full((8, 8, 3), self.count % 256, np.uint8), self.name

    def reopen(self):
        self.reopens += 1
        if self.reopen_ok:
            self.fail_after = None
        return self.reopen_ok


class CorruptSource(Source):
    name = "corrupt.mp4"

    def __init__(self):
        self.i = 0

    def read(self):
        self.i += 1
        if self.i > 10:
            raise SourceEnded("end of video")
        if self.i % 3 == 0:
            return None, self.name  # an undecodable frame
        return np.zeros((4, 4, 3), np.uint8), self.name


@pytest.mark.device
def test_video_file_source_reads_every_frame_on_another_thread(tmp_path):
    video = _write_video(tmp_path / "clip.avi")
    task = MeanTask()
    seen = []
    summary = run_on_source(task, open_source(str(video)), on_result=lambda f, r: seen.append(f.index))
    assert summary.frames == 12 and seen == list(range(12))
    assert summary.frames_dropped == 0 and summary.end_reason == "end of video"
    assert threading.get_ident() in task.threads  # inferred on the calling thread, read on the reader thread


@pytest.mark.device
def test_live_source_drops_oldest_when_model_is_slow():
    source = LiveSource(frames=200)
    summary = run_on_source(MeanTask(delay_s=0.01), source, queue_size=2)
    assert summary.frames_dropped > 0
    assert summary.frames + summary.frames_dropped == 200
    assert summary.end_reason == "done"


@pytest.mark.device
def test_disconnect_mid_stream_ends_cleanly_after_retries():
    source = LiveSource(frames=100, fail_after=5)
    summary = run_on_source(MeanTask(), source, retries=2, retry_delay_s=0.01)
    assert summary.frames + summary.frames_dropped == 5  # a busy machine may drop a frame of this live source
    assert source.reopens == 2
    assert summary.end_reason.startswith("source failed: device unplugged")


@pytest.mark.device
def test_camera_recovers_when_reopen_works():
    source = LiveSource(frames=20, fail_after=5, reopen_ok=True)
    summary = run_on_source(MeanTask(), source, retries=3, retry_delay_s=0.01)
    assert summary.reconnects == 1 and summary.end_reason == "done"
    assert summary.frames + summary.frames_dropped == 20


@pytest.mark.device
def test_corrupt_frames_counted_and_skipped():
    summary = run_on_source(MeanTask(), CorruptSource())
    assert summary.bad_frames == 3 and summary.frames == 7


@pytest.mark.device
def test_reader_max_frames_and_bad_queue_size(tmp_path):
    video = _write_video(tmp_path / "clip.avi")
    summary = run_on_source(MeanTask(), open_source(str(video)), max_frames=4)
    assert summary.frames == 4 and "max-frames" in summary.end_reason
    with pytest.raises(ConfigError, match="queue_size"):
        FrameReader(LiveSource(1), queue_size=0)


@pytest.mark.device
def test_open_source_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        open_source(str(tmp_path / "nope.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        open_source(str(tmp_path / "empty"))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ConfigError, match="cannot open video"):
        open_source(str(bad))


@pytest.mark.device
def test_failed_run_leaves_no_partial_video(tmp_path):
    video = _write_video(tmp_path / "clip.avi")

    class Boom(MeanTask):
        def __call__(self, image, *, color="bgr"):
            if self.count == 3:
                raise RuntimeError("model crashed")
            self.count += 1
            return super().__call__(image, color=color)

    task = Boom()
    task.count = 0
    out = tmp_path / "out.avi"
    writer = OverlayWriter(str(out), multi_frame=True, fps=10)
    with pytest.raises(RuntimeError):
        run_on_source(task, open_source(str(video)), writer=writer)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.device
def test_cli_run_folder_json_lines(fixtures, capsys):
    code = main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source", str(fixtures / "images"),
                 "--json", "--top-k", "3"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 6
    for i, obj in enumerate(lines):
        assert set(obj) == {"frame", "source", "task", "result"}
        assert obj["frame"] == i and obj["task"] == "classify"
        cats = obj["result"]["categories"]
        assert len(cats) == 3 and all(isinstance(c["score"], float) for c in cats)
        assert set(obj["result"]["timing"]) >= {"preprocess_ms", "inference_ms", "postprocess_ms"}
    by_source = {o["source"]: o["result"]["categories"][0]["label"] for o in lines}
    assert by_source["cat.bmp"] == "Egyptian cat" and by_source["grace_hopper.bmp"] == "military uniform"


@pytest.mark.device
def test_cli_run_video_saves_overlay_video(fixtures, tmp_path, capsys):
    video = _write_video(tmp_path / "clip.avi", frames=6, size=(160, 120))
    out = tmp_path / "overlay.avi"
    code = main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source", str(video),
                 "--save", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "6 frames" in err and "FPS" in err and "infer" in err
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 6


@pytest.mark.device
def test_cli_run_single_image_save_and_bad_arguments(fixtures, tmp_path, capsys):
    out = tmp_path / "cat.jpg"
    assert main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source",
                 str(fixtures / "images" / "cat.bmp"), "--save", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (341, 512, 3)
    # existing output is not overwritten without --force
    assert main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source",
                 str(fixtures / "images" / "cat.bmp"), "--save", str(out)]) == EXIT_ERROR
    assert "--force" in capsys.readouterr().err
    # an image cannot hold a folder's worth of frames
    assert main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source", str(fixtures / "images"),
                 "--save", str(tmp_path / "all.jpg")]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "folder" in err[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(fixtures / CLASSIFIER), "--task", "clasify", "--source", "x"])
    assert exit_info.value.code == EXIT_USAGE
    assert "did you mean 'classify'" in capsys.readouterr().err
    assert main(["run", str(fixtures / CLASSIFIER), "--task", "classify", "--source", str(tmp_path / "none")]) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


def test_image_source_skips_unreadable_files(tmp_path):
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"corrupt")
    summary = run_on_source(MeanTask(), ImageSource(sorted(tmp_path.iterdir()), str(tmp_path)))
    assert summary.frames == 1 and summary.bad_frames == 1
