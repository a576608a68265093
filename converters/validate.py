"""Validating artifacts: run each one through its edgecv task and score it against the float model.

What is measured is what the device runs: every artifact is loaded with
:func:`edgecv.load` and driven by :class:`edgecv.tasks.Classifier` /
``Detector`` / ``Segmenter`` / ``Embedder`` on the validation images, with
the preprocessing and output handling of its embedded manifest. Task-level
agreement is measured against the float reference artifact (fp32, the same
path through the runtime); the raw output difference against the float
source model itself (TensorFlow or ONNX Runtime on the same preprocessed input).

Metrics (see :mod:`edgecv.metrics`):

* classification: ``top1_accuracy`` (with labels), ``top1_agreement``;
* detection: ``map50`` (with boxes; VOC all-point interpolation),
  ``detection_f1`` / ``detection_recall`` / ``detection_precision``
  against the float detections at the head's score threshold;
* segmentation: ``miou`` (with masks), ``pixel_agreement``;
* embedding: ``mean_cosine`` to the float embeddings, ``tar_at_far_1e-2`` /
  ``tar_at_far_1e-3`` and ``recall_at_1`` (with identities; leave-one-out,
  :func:`edgecv.metrics_embedding.evaluate_embeddings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import ConfigError, EdgeCVError
from edgecv.heads import DetectionHead, Head
from edgecv.image import as_uint8_image
from edgecv.task_registry import TASKS

from .calibration import Preprocess, list_image_folder, sample_hash

__all__ = ["ValidationSet", "validation_set", "TaskOutputs", "run_artifact", "score", "PRIMARY_METRICS",
           "primary_metric", "DETECTION_MIN_SCORE"]

#: Detector score floor used while collecting detections for mAP (agreement uses the head's threshold).
DETECTION_MIN_SCORE = 0.05

#: (metric with ground truth, metric without) per task; the first available is the primary metric.
PRIMARY_METRICS = {t.name: t.metrics for t in TASKS}


@dataclass(frozen=True)
class ValidationSet:
    """Held-out images with optional ground truth.

    Attributes:
        images: HxWx3 uint8 arrays (in ``color`` order) or image paths.
        labels: classification: class index per image.
        boxes: detection: per image an (k, 4) array of x1, y1, x2, y2 in original-image pixels.
        box_classes: detection: per image (k,) class ids (first real class = 0, background excluded).
        masks: segmentation: per image an HxW class-id mask at the image's own size.
        identities: embedding: identity per image (any hashable values).
        color: channel order of array images, "bgr" (OpenCV) or "rgb".
    """

    images: tuple[Any, ...]
    labels: tuple[int, ...] | None = None
    boxes: tuple[np.ndarray, ...] | None = None
    box_classes: tuple[np.ndarray, ...] | None = None
    masks: tuple[np.ndarray, ...] | None = None
    identities: tuple[Any, ...] | None = None
    color: str = "bgr"

    def __post_init__(self) -> None:
        n = len(self.images)
        if n == 0:
            raise ConfigError("the validation set is empty; pass held-out images (a few hundred give steady figures)")
        for name in ("labels", "boxes", "box_classes", "masks", "identities"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ConfigError(f"validation {name} has {len(value)} entries for {n} images; give one per image")
        if (self.boxes is None) != (self.box_classes is None):
            raise ConfigError("validation boxes need box_classes (and vice versa)")
        if self.color not in ("bgr", "rgb"):
            raise ConfigError(f"validation color must be 'bgr' or 'rgb', got {self.color!r}")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> np.ndarray:
        """Image *index* as HxWx3 uint8 (read from disk for paths, then BGR).

        Raises:
            ConfigError: unreadable or malformed image.
        """
        pixels, _ = as_uint8_image(self.images[index], self.color)
        return pixels

    def image_color(self, index: int) -> str:
        return "bgr" if isinstance(self.images[index], (str, os.PathLike)) else self.color


def validation_set(data: Any, *, color: str = "bgr") -> ValidationSet:
    """Coerce *data* into a :class:`ValidationSet`.

    Accepts a ValidationSet; an object with ``to_validation_set()`` (e.g.
    :class:`converters.synthetic.ShapesDataset`); a dict of ValidationSet
    fields; a folder of images; a (N, H, W, 3) uint8 array; or a sequence of
    images / paths (images only: agreement metrics, no accuracy).

    Raises:
        ConfigError: anything else, or an empty set.
    """
    if isinstance(data, ValidationSet):
        return data
    convert = getattr(data, "to_validation_set", None)
    if callable(convert):
        return convert()
    if isinstance(data, Mapping):
        fields = dict(data)
        unknown = set(fields) - set(ValidationSet.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown validation fields {sorted(unknown)}; use images, labels, boxes, "
                              "box_classes, masks, identities, color")
        if "images" not in fields:
            raise ConfigError("a validation dict needs 'images'")
        return ValidationSet(**{k: _as_tuple(v) if k != "color" else v for k, v in fields.items()})
    if isinstance(data, (str, os.PathLike)):
        folder = Path(data)
        if not folder.is_dir():
            raise ConfigError(f"validation path {folder} is not a folder of images")
        return ValidationSet(tuple(list_image_folder(folder)), color=color)
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 4:
            raise ConfigError(f"a validation array must be uint8 images shaped (N, H, W, 3), got {data.dtype} "
                              f"{data.shape}; validation runs the device's own preprocessing on images")
        return ValidationSet(tuple(data), color=color)
    if isinstance(data, Sequence):
        return ValidationSet(tuple(data), color=color)
    raise ConfigError(f"validation must be a ValidationSet, a dict, a folder, an image array or a list of images, "
                      f"got {type(data).__name__}")


def _as_tuple(value: Any) -> tuple | None:
    if value is None:
        return None
    return tuple(value)


def preprocess_validation(vs: ValidationSet, pre: Preprocess) -> tuple[np.ndarray, frozenset[str]]:
    """``(N, ...) float32 inputs, their hashes)`` through the runtime preprocessing.

    Raises:
        ConfigError: an unreadable image.
    """
    old = pre.color
    tensors = []
    try:
        for i in range(len(vs)):
            pre.color = vs.image_color(i)
            tensors.append(pre(vs.image(i))[0])
    finally:
        pre.color = old
    arr = np.stack(tensors)
    return arr, frozenset(sample_hash(x[None]) for x in arr)


@dataclass(frozen=True)
class TaskOutputs:
    """What one artifact produced on the validation set.

    ``task`` holds per image: the top-1 index (classification), a
    ``(boxes, scores, classes)`` triple (detection), a class-id mask
    (segmentation) or a vector (embedding). ``raw`` maps output role to the
    stacked raw (dequantized) outputs, for the difference to the float source.
    """

    task: tuple[Any, ...]
    raw: dict[str, np.ndarray]


def _make_task(task: str, model: Any) -> Any:
    if task == "classification":
        from edgecv.tasks.classifier import Classifier

        return Classifier(model, top_k=1)
    if task == "detection":
        from edgecv.tasks.detector import Detector

        stated = model.manifest.head_as(DetectionHead).score_threshold
        threshold = stated if stated is not None else 0.5
        return Detector(model, score_threshold=min(DETECTION_MIN_SCORE, threshold))
    if task == "segmentation":
        from edgecv.tasks.segmenter import Segmenter

        return Segmenter(model)
    from edgecv.tasks.embedder import Embedder

    return Embedder(model)


def _dequantized(model: Any, index: int) -> np.ndarray:
    raw = np.asarray(model.raw_output(index))
    spec = model.outputs[index]
    q = spec.quantization
    if q is None or raw.dtype.kind not in "ui":
        return raw.astype(np.float32, copy=True)
    shape = [1] * raw.ndim
    if not q.per_tensor:
        shape[q.axis] = len(q.scale)
    scale = np.asarray(q.scale, np.float32).reshape(shape)
    zero = np.asarray(q.zero_point, np.float32).reshape(shape)
    return (raw.astype(np.float32) - zero) * scale


def run_artifact(task: str, path: Path, vs: ValidationSet, roles: Sequence[str]) -> TaskOutputs:
    """Run the artifact at *path* through its task on every validation image.

    Raises:
        EdgeCVError: the artifact failed to load or run (its own error class).
    """
    from edgecv.model import load

    from ._native_logs import native_logs_filtered

    with native_logs_filtered():                 # (TFLite's "INFO: Created ... XNNPACK delegate" line)
        model = load(path)
    try:
        runner = _make_task(task, model)
        indices = {role: model.output_index(role) for role in roles}
        outs: list[Any] = []
        raw: dict[str, list[np.ndarray]] = {role: [] for role in roles}
        for i in range(len(vs)):
            image, color = vs.image(i), vs.image_color(i)
            if task == "classification":
                result = runner.classify(image, color=color)
                outs.append(result.categories[0].index if result.categories else -1)
            elif task == "detection":
                result = runner.detect(image, color=color)
                dets = result.detections
                outs.append((np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in dets], np.float64).reshape(-1, 4),
                             np.array([d.score for d in dets], np.float64),
                             np.array([d.class_id for d in dets], np.int64)))
            elif task == "segmentation":
                outs.append(runner.segment(image, color=color).mask)
            else:
                outs.append(runner.embed(image, color=color).vector)
            for role, index in indices.items():
                raw[role].append(_dequantized(model, index))
        return TaskOutputs(tuple(outs), {role: np.concatenate(parts, axis=0) for role, parts in raw.items()})
    finally:
        model.close()


def _above(dets: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = dets[1] >= threshold           # the tasks' rule: score >= score_threshold
    return dets[0][keep], dets[1][keep], dets[2][keep]


def score(task: str, outputs: TaskOutputs, reference: TaskOutputs, vs: ValidationSet, *,
          head: Head, num_classes: int | None = None) -> dict[str, float]:
    """The task's metrics for one artifact (plain floats, 0-1 scale, cosine -1..1).

    Raises:
        ConfigError: ground truth that does not fit (propagated from :mod:`edgecv.metrics`).
    """
    from edgecv import metrics

    out: dict[str, float] = {}
    if task == "classification":
        if vs.labels is not None:
            out["top1_accuracy"] = metrics.top1_accuracy(outputs.task, vs.labels)
        out["top1_agreement"] = metrics.top1_agreement(outputs.task, reference.task)
    elif task == "detection":
        if vs.boxes is not None:
            gt = list(zip(vs.boxes, vs.box_classes))
            if sum(len(np.asarray(b).reshape(-1, 4)) for b in vs.boxes) > 0:
                out["map50"] = metrics.mean_average_precision(outputs.task, gt, iou_threshold=0.5)
        threshold = head.score_threshold if head.score_threshold is not None else 0.5
        agreement = metrics.detection_agreement([_above(d, threshold) for d in reference.task],
                                                [_above(d, threshold) for d in outputs.task], iou_threshold=0.5)
        out["detection_f1"] = agreement.f1
        out["detection_recall"] = agreement.recall
        out["detection_precision"] = agreement.precision
    elif task == "segmentation":
        if vs.masks is not None:
            if num_classes is None:
                raise ConfigError("mIoU needs the number of classes")
            out["miou"] = metrics.mean_iou(outputs.task, [np.asarray(m) for m in vs.masks], num_classes=num_classes)
        out["pixel_agreement"] = metrics.pixel_agreement(outputs.task, reference.task)
    else:
        vectors = np.stack(outputs.task)
        out["mean_cosine"] = metrics.mean_cosine_similarity(vectors, np.stack(reference.task))
        if vs.identities is not None:
            from edgecv.metrics_embedding import evaluate_embeddings

            evaluation = evaluate_embeddings(vectors, list(vs.identities), ks=(1,), fars=(1e-2, 1e-3))
            out["recall_at_1"] = float(evaluation.recall_at[1])
            for far, (tar, _threshold) in evaluation.tar_at_far.items():
                out[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = float(tar)
    return out


def primary_metric(task: str, vs: ValidationSet | None) -> str:
    """Name of the metric the accuracy budget applies to."""
    with_truth, without = PRIMARY_METRICS[task]
    if vs is None:
        return without
    has_truth = {"classification": vs.labels is not None, "detection": vs.boxes is not None,
                 "segmentation": vs.masks is not None, "embedding": vs.identities is not None}[task]
    return with_truth if has_truth else without


def safe_run(task: str, path: Path, vs: ValidationSet, roles: Sequence[str]) -> tuple[TaskOutputs | None, str | None]:
    """:func:`run_artifact`, with an edgecv error turned into a note instead of aborting the conversion."""
    try:
        return run_artifact(task, path, vs, roles), None
    except EdgeCVError as exc:
        return None, f"{type(exc).__name__}: {exc}"
