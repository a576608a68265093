"""Damaged real video files through edgecv run: what tests/test_run.py (synthetic sources) does not cover.

A truncated or byte-damaged MJPG file either fails to open with ConfigError
or runs to its end on the frames OpenCV can still decode; the run never
raises and never reports more frames than the file had.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecv.errors import ConfigError
from edgecv.sources import open_source
from edgecv.streaming import run_on_source

pytestmark = pytest.mark.device

FRAMES = 30


class _Mean:
    def __call__(self, image, *, color="bgr"):
        from edgecv.tasks.results import Timing

        class Result:
            timing = Timing(0.0, 0.0, 0.0)
            categories = ()

            def to_dict(self):
                return {}

        assert image.dtype == np.uint8 and image.ndim == 3
        return Result()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    for i in range(FRAMES):
        image = np.full((120, 160, 3), (i * 8) % 255, np.uint8)
        cv2.circle(image, (10 + 4 * i, 60), 9, (0, 0, 255), -1)
        writer.write(image)
    writer.release()
    return path.read_bytes()


def _run(path):
    try:
        source = open_source(str(path))
    except ConfigError:
        return None
    return run_on_source(_Mean(), source)


def test_the_intact_clip_runs_every_frame(clip, tmp_path):
    path = tmp_path / "clip.avi"
    path.write_bytes(clip)
    summary = _run(path)
    assert summary.frames == FRAMES and summary.end_reason == "end of video"


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_truncated_video_runs_to_its_end_or_is_refused_at_open(clip, tmp_path, fraction):
    path = tmp_path / "cut.avi"
    path.write_bytes(clip[: int(len(clip) * fraction)])
    summary = _run(path)
    if summary is not None:
        assert summary.frames + summary.bad_frames <= FRAMES
        _assert_end_reason_tells(summary)


def _assert_end_reason_tells(summary):
    """A video that stopped before its declared frame count says so (issue 21); an intact end is plain."""
    seen = summary.frames + summary.bad_frames
    if summary.end_reason != "end of video":
        assert summary.end_reason == (f"the video ended after {seen} of its {FRAMES} frames "
                                      "(damaged or truncated file)")
    else:
        assert seen in (0, FRAMES)   # nothing readable (no count to compare with), or every frame


@pytest.mark.parametrize("seed", range(6))
def test_byte_damaged_video_runs_to_its_end_or_is_refused_at_open(clip, tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = bytearray(clip)
    for pos in rng.integers(1024, len(data), 40):
        data[pos] = int(rng.integers(256))
    path = tmp_path / "damaged.avi"
    path.write_bytes(bytes(data))
    summary = _run(path)
    if summary is not None:
        assert summary.frames + summary.bad_frames <= FRAMES
        _assert_end_reason_tells(summary)
