"""Long runs: each task for N frames, resident memory at start, after warm-up and at the end.

Used by tests/test_soak.py (short) and bench/soak.py (20,000 frames per task).
The tasks are the fixture models (uint8 MobileNetV2 classifier, SSD MobileNet
detector with the in-model post-processing op, float DeepLabV3 257 segmenter)
and the tiny in-process ONNX embedder of :mod:`tests.reliability.tiny_models`
(3x3 conv, ReLU, global average pool to 16 values): the fixtures hold no
embedding model. Frames cycle through real photos of different sizes, so the
preprocessor's size-dependent paths are exercised too.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecv.benchmark.memory import read_rss

__all__ = ["SoakResult", "soak", "default_tasks", "soak_frames", "MIB"]

MIB = 1 << 20


@dataclass(frozen=True)
class SoakResult:
    """One task's run. RSS in bytes (None where the platform does not report current RSS)."""

    task: str
    model: str
    frames: int
    warmup_frames: int
    rss_start_bytes: int | None
    rss_warm_bytes: int | None
    rss_end_bytes: int | None
    seconds: float

    @property
    def growth_bytes(self) -> int | None:
        """RSS growth from after warm-up to the end."""
        if self.rss_warm_bytes is None or self.rss_end_bytes is None:
            return None
        return self.rss_end_bytes - self.rss_warm_bytes


def _rss() -> int | None:
    gc.collect()
    return read_rss().rss_bytes


def soak_frames(fixtures: Path) -> list[np.ndarray]:
    """The frames to cycle through: four photos at four sizes (BGR uint8)."""
    import cv2

    frames = []
    for name, size in (("cat.bmp", (320, 240)), ("grace_hopper.bmp", (517, 606)), ("burger.jpg", (640, 480)),
                       ("cats_and_dogs.jpg", (1200, 1200))):
        image = cv2.imread(str(fixtures / "images" / name))
        frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return frames


def default_tasks(fixtures: Path, workdir: Path, *, num_threads: int | None = None) -> dict[str, tuple[str, Callable]]:
    """name -> (model description, factory returning ``(task, method)``) for the four soak tasks."""
    from edgecv.tasks import Classifier, Detector, Embedder, Segmenter

    from .tiny_models import onnx_embedder

    embedder = workdir / "soak_embedder.onnx"
    embedder.write_bytes(onnx_embedder())
    classifier = fixtures / "classification" / "mobilenet_v2_1.0_224_quant.tflite"
    detector = fixtures / "detection" / "ssd_mobilenet_v1_coco_quant_postprocess.tflite"
    segmenter = fixtures / "segmentation" / "deeplabv3_257_float.tflite"

    def make(cls, path, method, **kwargs):
        def factory():
            task = cls(path, num_threads=num_threads, **kwargs)
            return task, getattr(task, method)
        return factory

    return {
        "classify": (classifier.name, make(Classifier, classifier, "classify")),
        "detect": (detector.name, make(Detector, detector, "detect", score_threshold=0.3)),
        "segment": (segmenter.name, make(Segmenter, segmenter, "segment")),
        "embed": (f"{embedder.name} (tiny in-process ONNX embedder)",
                  make(Embedder, embedder, "embed", preprocessing={"mean": 127.5, "std": 127.5})),
    }


def soak(name: str, model: str, factory: Callable, frames: list[np.ndarray], *, count: int,
         warmup: int = 200, progress: Callable[[int], None] | None = None) -> SoakResult:
    """Run one task for *count* frames after *warmup* frames; read RSS before loading, after warm-up, at the end.

    Each frame's result is consumed (its numbers read) and dropped, as an application would.
    """
    start = _rss()
    task, call = factory()
    try:
        for i in range(warmup):
            _consume(call(frames[i % len(frames)]))
        warm = _rss()
        t0 = time.perf_counter()
        for i in range(count):
            _consume(call(frames[i % len(frames)]))
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1)
        seconds = time.perf_counter() - t0
        end = _rss()
    finally:
        task.close()
    return SoakResult(name, model, count, warmup, start, warm, end, seconds)


def _consume(result) -> None:
    """Read what an application would read from a result (the values, not just the object)."""
    result.to_dict()
    mask = getattr(result, "mask", None)
    if mask is not None:
        int(mask[0, 0])
