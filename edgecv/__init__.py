"""edgecv: take trained vision models to edge devices.

The whole public API of the on-device runtime is listed here. Importing
edgecv loads the standard library only: each name below is imported on first
use (numpy with the first of them; runtimes, OpenCV and TensorFlow when a
model is loaded or an image is processed).

Runtime:
    load(path, *, target=None, backend=None, num_threads=None) -> Model
    Model               inputs/outputs (TensorSpec), input_buffer(), preprocess(image),
                        invoke(*, dequantize=True), run(), raw_output(i), close(), manifest, runtime,
                        accelerators, warnings
    TensorSpec, QuantParams
    Preprocessing, Manifest, read_labels
    Preprocessor, ImageTransform, read_image

Errors (all subclasses of EdgeCVError):
    ConfigError, BackendNotAvailable, ModelLoadError, IncompatibleModelError,
    InferenceError, ConversionError, CalibrationError, UnsupportedOpError,
    UnknownTargetError

Tasks (each takes a Model or a path; methods take an HxWx3 uint8 image or a path, color="bgr"|"rgb"):
    Classifier(model, *, labels, top_k, score_threshold, kind)    .classify(image) -> ClassificationResult
    Detector(model, *, labels, score_threshold, iou_threshold, max_detections, anchors, box_coder,
             class_agnostic, ..., head)                          .detect(image) -> DetectionResult
    Segmenter(model, *, labels)                                  .segment(image) -> SegmentationResult
    Embedder(model, *, l2_normalize=True)                        .embed(image) -> Embedding
    Gallery(embedder)  enroll, identify, verify, evaluate, save, load
    cosine_distance, euclidean_distance
    Results: Category, Box, Detection, ClassArea, Timing, EmbeddingEvaluation (frozen, to_dict())
    Drawing: edgecv.draw.draw_detections, draw_mask, color_palette
    Every task keeps results with score >= score_threshold.

Task settings (the manifest's typed head; edgecv.heads):
    ClassificationHead, DetectionHead, SegmentationHead, EmbeddingHead   frozen; None = not stated;
        to_dict()/from_dict(), merged_over(other);  edgecv.task_registry.get_task(name) -> TaskInfo

Post-processing math (pure numpy):
    nms(boxes, scores, *, iou_threshold, score_threshold=None, max_output=None, class_ids=None,
        method="hard", sigma=0.5, box_index=None) -> kept indices;  soft_nms(...) -> (indices, decayed scores)
    scores_above(scores, threshold, *, background=None, quantization=None) -> (rows, classes, values)
    dequantize(values, (scale, zero_point)) -> float32, as Model dequantizes outputs
    box_iou(a, b);  decode_center_size / encode_center_size;  clip_boxes;  BoxCoder, BoxDecoder
    AnchorSpec (TF OD API SSD generator, per-level min sizes), generate_anchors(spec)
    (edgecv.nms is the function; its modules are the package edgecv.suppression)

Benchmarking:
    bench(model_or_task, *, target=None, runs=None, warmup=None, duration_s=None, threads=None, inputs=None)
        -> BenchReport;  compare([...paths]) -> [BenchReport];  check_regression(report, baseline, tolerance)

Utilities:
    atomic_write(path, data), atomic_path(path)
    edgecv.sources.open_source / FrameReader and edgecv.streaming.run_on_source (what `edgecv run` uses)

Elsewhere in the distribution:
    converters.convert(model, *, task, target, precision, calibration, validation, ...)   (workstation)
    targets.get(name), targets.all(), targets.check(model_path, target), targets.detect()
    command line: edgecv convert | run | bench | targets | check | doctor | demo
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> the module that defines it; loaded on first attribute access, so that
# `import edgecv` costs next to nothing and a device loads only what it uses
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("load", "Model"), "model"),
    **dict.fromkeys(("TensorSpec", "QuantParams"), "specs"),
    **dict.fromkeys(("Manifest", "Preprocessing", "read_labels"), "manifest"),
    **dict.fromkeys(("Preprocessor", "ImageTransform"), "preprocess"),
    "read_image": "image",
    **dict.fromkeys(("nms", "soft_nms", "scores_above", "dequantize"), "suppression"),
    **dict.fromkeys(("box_iou", "decode_center_size", "encode_center_size", "clip_boxes", "BoxCoder", "BoxDecoder"),
                    "boxes"),
    **dict.fromkeys(("AnchorSpec", "generate_anchors"), "anchors"),
    **dict.fromkeys(("Classifier", "Detector", "Segmenter", "Embedder", "Gallery", "ClassificationResult", "Category",
                     "DetectionResult", "Detection", "Box", "SegmentationResult", "ClassArea", "Embedding",
                     "EmbeddingEvaluation", "Timing"), "tasks"),
    **dict.fromkeys(("cosine_distance", "euclidean_distance"), "metrics_embedding"),
    **dict.fromkeys(("atomic_write", "atomic_path"), "atomic"),
    **dict.fromkeys(("bench", "compare", "BenchReport", "check_regression"), "benchmark"),
    **dict.fromkeys(("EdgeCVError", "ConfigError", "BackendNotAvailable", "ModelLoadError", "IncompatibleModelError",
                     "InferenceError", "ConversionError", "CalibrationError", "UnsupportedOpError",
                     "UnknownTargetError"), "errors"),
}
_SUBMODULES = ("draw", "heads")

__all__ = ["__version__", *_SUBMODULES, *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Load a public name, or a submodule (``edgecv.draw``, ``edgecv.tasks``, ...), on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'edgecv' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what static analysis and IDEs see; at run time __getattr__ loads these on first use
    from . import draw, heads
    from .anchors import AnchorSpec, generate_anchors
    from .atomic import atomic_path, atomic_write
    from .benchmark import BenchReport, bench, check_regression, compare
    from .boxes import BoxCoder, BoxDecoder, box_iou, clip_boxes, decode_center_size, encode_center_size
    from .errors import (
        BackendNotAvailable,
        CalibrationError,
        ConfigError,
        ConversionError,
        EdgeCVError,
        IncompatibleModelError,
        InferenceError,
        ModelLoadError,
        UnknownTargetError,
        UnsupportedOpError,
    )
    from .image import read_image
    from .manifest import Manifest, Preprocessing, read_labels
    from .metrics_embedding import cosine_distance, euclidean_distance
    from .model import Model, load
    from .preprocess import ImageTransform, Preprocessor
    from .specs import QuantParams, TensorSpec
    from .suppression import dequantize, nms, scores_above, soft_nms
    from .tasks import (
        Box,
        Category,
        ClassArea,
        ClassificationResult,
        Classifier,
        Detection,
        DetectionResult,
        Detector,
        Embedder,
        Embedding,
        EmbeddingEvaluation,
        Gallery,
        SegmentationResult,
        Segmenter,
        Timing,
    )
