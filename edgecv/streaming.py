"""Run a task over a frame source: overlays, JSON lines, and a run summary.

The source is read on a background thread (:class:`edgecv.sources.FrameReader`)
and inferred on the calling thread. Overlays can be written to an image, a
folder of images, or a video (``.mp4``/``.avi``), always atomically.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import strict_json
from .atomic import atomic_path, atomic_write
from .errors import ConfigError
from .image import import_cv2
from .sources import Frame, FrameReader, ReaderStats, Source

__all__ = ["RunSummary", "run_on_source", "render", "OverlayWriter"]

log = logging.getLogger("edgecv")

VIDEO_SUFFIXES = (".mp4", ".avi")
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


@dataclass(frozen=True)
class RunSummary:
    """How a run went: frames processed, dropped and bad, FPS and the median per-frame split (ms)."""

    frames: int
    frames_dropped: int
    bad_frames: int
    reconnects: int
    end_reason: str
    wall_s: float
    fps: float
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    outputs: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    def line(self) -> str:
        return (f"{self.frames} frames in {self.wall_s:.1f} s ({self.fps:.1f} FPS); per frame median "
                f"pre {self.preprocess_ms:.2f} ms, infer {self.inference_ms:.2f} ms, post {self.postprocess_ms:.2f} ms; "
                f"dropped {self.frames_dropped}, bad {self.bad_frames}; ended: {self.end_reason}")


def render(result: Any, image: np.ndarray) -> np.ndarray:
    """An overlay of any task result on a BGR image (a new array)."""
    from . import draw

    cv2 = import_cv2()
    if hasattr(result, "detections"):
        return draw.draw_detections(image, result)
    if hasattr(result, "mask"):
        return draw.draw_mask(image, result.mask)
    out = image.copy()
    if hasattr(result, "categories"):
        lines = [f"{c.label if c.label is not None else c.index}: {c.score:.2f}" for c in result.categories[:3]]
    elif hasattr(result, "vector"):
        vec = np.asarray(result.vector)
        lines = [f"embedding dim {vec.size}, norm {float(np.linalg.norm(vec)):.3f}"]
    else:
        lines = [type(result).__name__]
    for i, text in enumerate(lines):
        y = 22 + 22 * i
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class OverlayWriter:
    """Writes overlays to an image file, a folder, or a video file (atomically).

    Args:
        target: ``out.jpg``/``.png`` (one frame), an existing folder or a path ending in ``/`` (one image per
            frame, named after the source frame), or ``out.mp4``/``.avi`` (a video).
        multi_frame: whether the source yields more than one frame.
        fps: video frame rate.
        overwrite: replace existing files (otherwise an existing one is a ConfigError).

    Raises:
        ConfigError: an image target for a multi-frame source, or an unknown suffix.
    """

    def __init__(self, target: str, *, multi_frame: bool, fps: float | None, overwrite: bool = False) -> None:
        self._stack = contextlib.ExitStack()
        self._path = Path(target)
        self._overwrite = overwrite
        self._fps = fps or 15.0
        self._video = None
        self._video_tmp: Path | None = None
        self._size: tuple[int, int] | None = None
        self.written: list[str] = []
        suffix = self._path.suffix.lower()
        if target.endswith(("/", "\\")) or self._path.is_dir():
            self.kind = "folder"
            try:
                self._path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"--save {target}: cannot create the folder ({exc.strerror or exc}); choose a "
                                  "writable location") from exc
        elif suffix in VIDEO_SUFFIXES:
            self.kind = "video"
        elif suffix in (".jpg", ".jpeg", ".png", ".bmp"):
            if multi_frame:
                raise ConfigError(f"--save {target}: one image cannot hold several frames; save to a folder "
                                  "(path ending in /) or a video (.mp4)")
            self.kind = "image"
        else:
            raise ConfigError(f"--save {target}: use an image (.jpg/.png), a folder (ending in /) or a video (.mp4/.avi)")

    def write(self, frame: Frame, overlay: np.ndarray) -> None:
        cv2 = import_cv2()
        if self.kind == "video":
            if self._video is None:
                self._size = (overlay.shape[1], overlay.shape[0])
                self._video_tmp = self._stack.enter_context(atomic_path(self._path, overwrite=self._overwrite))
                self._video = cv2.VideoWriter(str(self._video_tmp), cv2.VideoWriter_fourcc(*_FOURCC[self._path.suffix.lower()]),
                                              self._fps, self._size)
                if not self._video.isOpened():
                    raise ConfigError(f"OpenCV cannot write video {self._path}; try .avi")
            if (overlay.shape[1], overlay.shape[0]) != self._size:
                overlay = cv2.resize(overlay, self._size)
            self._video.write(overlay)
            return
        if self.kind == "image":
            path = self._path
        else:
            path = self._path / frame_file_name(frame)
        ok, data = cv2.imencode(path.suffix.lower() if path.suffix else ".jpg", overlay)
        if not ok:
            raise ConfigError(f"OpenCV could not encode {path}")
        atomic_write(path, data.tobytes(), overwrite=self._overwrite)
        self.written.append(str(path))

    def close(self, ok: bool = True) -> None:
        """Finish the output: on success the video is moved into place; on failure nothing is left."""
        if self._video is not None:
            self._video.release()
            self._video = None
        if self.kind == "video" and self._video_tmp is not None:
            if ok:
                self.written.append(str(self._path))
                self._stack.close()
            else:
                self._stack.__exit__(RuntimeError, RuntimeError("run failed"), None)
        else:
            self._stack.close()


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def frame_file_name(frame: Frame) -> str:
    """The overlay file name of *frame* in a ``--save`` folder: one file per frame.

    A frame read from its own image file keeps that file's name; frames of a video or a camera are
    named after the source and the frame number (``clip_000012.jpg``).
    """
    source = Path(frame.source)
    if source.suffix.lower() in _IMAGE_SUFFIXES and not frame.source.startswith("camera"):
        return source.name
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (source.stem or "frame"))
    return f"{stem}_{frame.index:06d}.jpg"


def run_on_source(task: Callable[..., Any], source: Source, *, on_result: Callable[[Frame, Any], None] | None = None,
                  writer: OverlayWriter | None = None, queue_size: int = 2, max_frames: int | None = None,
                  retries: int = 3, retry_delay_s: float = 0.5, progress: Callable[[int, float], None] | None = None,
                  ) -> RunSummary:
    """Run *task* (any edgecv task object) on every frame of *source*.

    Frames are read on a background thread and inferred here. A source that
    ends or disconnects ends the run cleanly (the summary says why); errors
    from the task itself propagate after the reader is stopped and partial
    output is discarded.
    """
    reader = FrameReader(source, queue_size=queue_size, max_frames=max_frames, retries=retries,
                         retry_delay_s=retry_delay_s).start()
    pre: list[float] = []
    inf: list[float] = []
    post: list[float] = []
    frames = 0
    start = time.perf_counter()
    ok = False
    try:
        for frame in reader:
            result = task(frame.image, color="bgr")
            timing = result.timing
            pre.append(timing.preprocess_ms)
            inf.append(timing.inference_ms)
            post.append(timing.postprocess_ms)
            frames += 1
            if on_result is not None:
                on_result(frame, result)
            if writer is not None:
                writer.write(frame, render(result, frame.image))
            if progress is not None:
                progress(frames, time.perf_counter() - start)
        ok = True
    finally:
        reader.stop()
        if writer is not None:
            writer.close(ok)
    wall = time.perf_counter() - start
    stats: ReaderStats = reader.stats

    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else 0.0

    return RunSummary(frames=frames, frames_dropped=stats.frames_dropped, bad_frames=stats.bad_frames,
                      reconnects=stats.reconnects, end_reason=stats.end_reason, wall_s=wall,
                      fps=frames / wall if wall > 0 else 0.0, preprocess_ms=med(pre), inference_ms=med(inf),
                      postprocess_ms=med(post), outputs=tuple(writer.written) if writer is not None else ())


def json_line(frame: Frame, task_name: str, result: Any, stream: TextIO) -> None:
    """One strict JSON object per frame: {"frame", "source", "task", "result"} (NaN/infinity as null, warned)."""
    stream.write(strict_json.dumps({"frame": frame.index, "source": frame.source, "task": task_name,
                                    "result": result.to_dict()}, what=f"frame {frame.index}") + "\n")
    stream.flush()

