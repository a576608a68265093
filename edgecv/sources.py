"""Frame sources for ``edgecv run``: an image, a folder, a video file, a camera.

``open_source(spec)`` picks the kind: an int or digit string or ``/dev/video*``
is a camera; a directory is a folder of images (sorted by name); a file with
an image suffix is one image; any other file is a video. Frames are HxWx3
uint8 BGR arrays.

:class:`FrameReader` reads a source on its own thread into a bounded queue.
For live sources (cameras) a full queue drops the oldest frame, so a model
slower than the camera always sees the newest frame, and the drops are
counted. For files nothing is dropped: the reader waits for the model.
Corrupt or empty frames are counted and skipped; a source that ends,
disconnects or keeps failing ends the run with a reason instead of an
exception. Cameras are reopened a few times before giving up.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .image import IMAGE_SUFFIXES, import_cv2, read_image

__all__ = ["Frame", "Source", "ImageSource", "VideoSource", "open_source", "FrameReader", "ReaderStats"]

log = logging.getLogger("edgecv")

MAX_CONSECUTIVE_BAD_FRAMES = 30
#: Largest camera index accepted (OpenCV takes a C int; V4L numbers devices from 0).
MAX_CAMERA_INDEX = 4095


@dataclass(frozen=True)
class Frame:
    """One frame: its position in the source, the pixels (BGR) and where it came from."""

    index: int
    image: np.ndarray
    source: str
    timestamp_s: float


class SourceEnded(Exception):
    """Raised by ``Source.read`` when the source has no more frames (not an error)."""


class Source:
    """A sequence of frames. ``read()`` returns a frame, None for a bad frame, or raises SourceEnded."""

    live = False
    name = ""

    @property
    def frame_count(self) -> int | None:
        """Frames the source will yield, when known (image sources), else None."""
        return None

    def read(self) -> tuple[np.ndarray | None, str]:
        raise NotImplementedError

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        pass

    @property
    def fps(self) -> float | None:
        return None


class ImageSource(Source):
    """One image file or every image in a folder, in name order."""

    def __init__(self, paths: list[Path], name: str) -> None:
        if not paths:
            raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {name}")
        self._paths = paths
        self._next = 0
        self.name = name

    @property
    def frame_count(self) -> int | None:
        return len(self._paths)

    def read(self) -> tuple[np.ndarray | None, str]:
        if self._next >= len(self._paths):
            raise SourceEnded("all images read")
        path = self._paths[self._next]
        self._next += 1
        try:
            return read_image(path), path.name
        except ConfigError as exc:
            log.warning("skipping %s: %s", path, exc)
            return None, path.name


class VideoSource(Source):
    """A video file or a camera, through cv2.VideoCapture."""

    def __init__(self, spec: str | int, *, live: bool) -> None:
        self._spec = spec
        self.live = live
        self.name = f"camera:{spec}" if live else str(spec)
        self._cap = None
        self._frames_read = 0
        if not self._open():
            kind = "camera" if live else "video"
            raise ConfigError(f"cannot open {kind} {spec!r}; check the device index/path or that the file is a "
                              "video OpenCV can decode")

    def _open(self) -> bool:
        cv2 = import_cv2()
        if self._cap is not None:
            self._cap.release()
        try:
            self._cap = cv2.VideoCapture(self._spec)
        except (cv2.error, OverflowError, SystemError) as exc:
            raise ConfigError(f"OpenCV cannot open {self.name!r}: {' '.join(str(exc).split())[:200]}") from exc
        return bool(self._cap.isOpened())

    def _declared_frames(self) -> int:
        cv2 = import_cv2()
        value = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self._cap is not None else 0.0
        return int(value) if 0 < value < 1e9 else 0

    @property
    def fps(self) -> float | None:
        cv2 = import_cv2()
        value = float(self._cap.get(cv2.CAP_PROP_FPS)) if self._cap is not None else 0.0
        return value if value > 0 else None

    def read(self) -> tuple[np.ndarray | None, str]:
        ok, frame = self._cap.read()
        if not ok:
            if self.live:
                raise ConnectionError(f"{self.name} returned no frame (disconnected?)")
            declared = self._declared_frames()
            if 0 < self._frames_read < declared:
                log.warning("%s: the video ended after %d of its %d frames; the file is damaged or truncated",
                            self.name, self._frames_read, declared)
                raise SourceEnded(f"the video ended after {self._frames_read} of its {declared} frames "
                                  "(damaged or truncated file)")
            raise SourceEnded("end of video")
        self._frames_read += 1
        if frame is None or frame.size == 0 or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            return None, self.name
        return frame, self.name

    def reopen(self) -> bool:
        return self.live and self._open()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(spec: str | int | os.PathLike) -> Source:
    """Open an image, a folder of images, a video file, or a camera (index or /dev/video path).

    Raises:
        ConfigError: the path does not exist or cannot be opened.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        if not 0 <= int(spec) <= MAX_CAMERA_INDEX:
            raise ConfigError(f"camera index {spec} is out of range; cameras are numbered 0 to {MAX_CAMERA_INDEX} "
                              "(see ls /dev/video*)")
        return VideoSource(int(spec), live=True)
    text = os.fspath(spec)
    if re.fullmatch(r"/dev/video\d+", text):
        return VideoSource(text, live=True)
    path = Path(text)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return ImageSource(images, str(path))
    if not path.exists():
        raise ConfigError(f"source {text!r} does not exist (expected an image, a folder, a video file, "
                          "or a camera index such as 0)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([path], str(path))
    return VideoSource(str(path), live=False)


@dataclass(frozen=True)
class ReaderStats:
    """What the reader saw: frames read and handed on, dropped (live sources), bad, and why it ended."""

    frames_read: int
    frames_dropped: int
    bad_frames: int
    reconnects: int
    end_reason: str


class FrameReader:
    """Reads a :class:`Source` on a background thread into a bounded queue.

    Args:
        source: the frames.
        queue_size: frames buffered ahead of the consumer (>= 1).
        drop_oldest: drop the oldest buffered frame when full; default: for live sources only.
        retries: reopen attempts for a live source that stops delivering.
        retry_delay_s: wait between attempts, seconds.
        max_frames: stop after this many good frames (None: until the source ends).
    """

    def __init__(self, source: Source, *, queue_size: int = 2, drop_oldest: bool | None = None,
                 retries: int = 3, retry_delay_s: float = 0.5, max_frames: int | None = None) -> None:
        if queue_size < 1:
            raise ConfigError(f"queue_size must be at least 1, got {queue_size}")
        self.source = source
        self._queue: collections.deque[Frame] = collections.deque()
        self._size = queue_size
        self._drop = source.live if drop_oldest is None else drop_oldest
        self._retries = retries
        self._delay = retry_delay_s
        self._max = max_frames
        self._cond = threading.Condition()
        self._stop = False
        self._done = False
        self._read = self._dropped = self._bad = self._reconnects = 0
        self._reason = ""
        self._thread = threading.Thread(target=self._loop, name=f"edgecv-reader-{source.name}", daemon=True)

    def start(self) -> FrameReader:
        self._thread.start()
        return self

    def _finish(self, reason: str) -> None:
        with self._cond:
            self._reason = self._reason or reason
            self._done = True
            self._cond.notify_all()

    def _loop(self) -> None:
        consecutive_bad = 0
        try:
            while not self._stop:
                if self._max is not None and self._read >= self._max:
                    self._finish(f"reached --max-frames {self._max}")
                    return
                try:
                    image, name = self.source.read()
                except SourceEnded as end:
                    self._finish(str(end))
                    return
                except Exception as exc:  # a camera unplugged, a driver error, a broken stream
                    if self._reconnect(exc):
                        continue
                    self._finish(f"source failed: {exc}")
                    return
                if image is None:
                    self._bad += 1
                    consecutive_bad += 1
                    if consecutive_bad >= MAX_CONSECUTIVE_BAD_FRAMES:
                        self._finish(f"{consecutive_bad} bad frames in a row; giving up")
                        return
                    continue
                consecutive_bad = 0
                frame = Frame(self._read, image, name, time.monotonic())
                self._read += 1
                with self._cond:
                    while len(self._queue) >= self._size and not self._stop:
                        if self._drop:
                            self._queue.popleft()
                            self._dropped += 1
                            break
                        self._cond.wait(0.1)
                    self._queue.append(frame)
                    self._cond.notify_all()
        finally:
            self._finish("stopped")

    def _reconnect(self, exc: Exception) -> bool:
        for attempt in range(1, self._retries + 1):
            if self._stop:
                return False
            log.warning("%s: %s; reconnecting (%d/%d)", self.source.name, exc, attempt, self._retries)
            time.sleep(self._delay)
            try:
                if self.source.reopen():
                    self._reconnects += 1
                    return True
            except Exception as again:  # keep trying until the attempts run out
                exc = again
        return False

    def get(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame, or None when the source has ended and the queue is empty."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._queue:
                if self._done:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    def __iter__(self):
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    def stop(self) -> None:
        """Stop reading and release the source."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.source.close()

    @property
    def stats(self) -> ReaderStats:
        return ReaderStats(self._read, self._dropped, self._bad, self._reconnects, self._reason or "running")
