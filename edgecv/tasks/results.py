"""Result types of the tasks: frozen dataclasses of plain Python numbers.

Every result carries a :class:`Timing` and has ``to_dict()`` returning
JSON-ready data. Numbers are Python ``int``/``float``, never numpy scalars.
Two documented exceptions hold numpy arrays: ``SegmentationResult.mask``
(the class-id image) and ``Embedding.vector`` (float32); ``to_dict()``
turns the vector into a list and describes the mask unless asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Timing",
    "Category",
    "ClassificationResult",
    "Box",
    "Detection",
    "DetectionResult",
    "ClassArea",
    "SegmentationResult",
    "Embedding",
    "EmbeddingEvaluation",
]


@dataclass(frozen=True)
class Timing:
    """Where one call spent its time, in milliseconds."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms

    def to_dict(self) -> dict[str, float]:
        return {"preprocess_ms": self.preprocess_ms, "inference_ms": self.inference_ms,
                "postprocess_ms": self.postprocess_ms, "total_ms": self.total_ms}


@dataclass(frozen=True)
class Category:
    """One class of a classification.

    Attributes:
        index: the model's output index of this class (background included when the model has one).
        label: its name, or None when no label is known for that index.
        score: probability in 0..1 (after softmax/sigmoid where the model outputs logits).
    """

    index: int
    label: str | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class ClassificationResult:
    """Categories best first (``top_k`` at most, all above the score threshold)."""

    categories: tuple[Category, ...]
    timing: Timing = field(default_factory=Timing)

    @property
    def top(self) -> Category | None:
        """The best category, or None when nothing passed the threshold."""
        return self.categories[0] if self.categories else None

    def to_dict(self) -> dict[str, Any]:
        return {"categories": [c.to_dict() for c in self.categories], "timing": self.timing.to_dict()}


@dataclass(frozen=True)
class Box:
    """Corner box in pixels of the original image: ``x1 <= x2``, ``y1 <= y2``, inside the image."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def to_xywh(self) -> tuple[float, float, float, float]:
        """``(x, y, width, height)`` with (x, y) the top-left corner."""
        return (self.x1, self.y1, self.width, self.height)

    def to_dict(self) -> dict[str, float]:
        return {"x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2}


@dataclass(frozen=True)
class Detection:
    """One detected object.

    Attributes:
        box: where, in original-image pixels.
        score: confidence in 0..1.
        class_id: the model's class index (0 is a class; background already excluded).
        label: class name, or None when unknown.
    """

    box: Box
    score: float
    class_id: int
    label: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"box": self.box.to_dict(), "score": self.score, "class_id": self.class_id, "label": self.label}


@dataclass(frozen=True)
class DetectionResult:
    """Detections best first."""

    detections: tuple[Detection, ...]
    image_width: int = 0
    image_height: int = 0
    timing: Timing = field(default_factory=Timing)

    def to_dict(self) -> dict[str, Any]:
        return {"detections": [d.to_dict() for d in self.detections], "image_width": self.image_width,
                "image_height": self.image_height, "timing": self.timing.to_dict()}


@dataclass(frozen=True)
class ClassArea:
    """Pixels of one class in a segmentation mask (original-image pixels)."""

    class_id: int
    label: str | None
    pixels: int
    fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "label": self.label, "pixels": self.pixels, "fraction": self.fraction}


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """A class-id mask at the original image size.

    Attributes:
        mask: HxW numpy array of class ids (uint8 when the model has at most
            256 classes, else int32), owned by this result (not reused).
        areas: classes present, largest first.
        labels: label of each class id (index = class id), or None.
    """

    mask: np.ndarray
    areas: tuple[ClassArea, ...]
    labels: tuple[str, ...] | None = None
    timing: Timing = field(default_factory=Timing)

    def to_dict(self, *, include_mask: bool = False) -> dict[str, Any]:
        """JSON-ready dict; the mask as nested lists only when ``include_mask``."""
        out: dict[str, Any] = {
            "mask_shape": [int(v) for v in self.mask.shape], "mask_dtype": str(self.mask.dtype),
            "areas": [a.to_dict() for a in self.areas],
            "labels": list(self.labels) if self.labels is not None else None,
            "timing": self.timing.to_dict(),
        }
        if include_mask:
            out["mask"] = self.mask.tolist()
        return out


@dataclass(frozen=True, eq=False)
class Embedding:
    """An embedding vector (1-D float32 numpy array owned by this result; unit length when normalised)."""

    vector: np.ndarray
    normalized: bool = True
    timing: Timing = field(default_factory=Timing)

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    def to_dict(self) -> dict[str, Any]:
        return {"vector": [float(v) for v in self.vector], "normalized": self.normalized,
                "timing": self.timing.to_dict()}


@dataclass(frozen=True)
class EmbeddingEvaluation:
    """How well embeddings separate identities on a labelled set.

    Attributes:
        recall_at: k -> fraction of queries whose own identity is among the k nearest identities.
        tar_at_far: target FAR -> (TAR, distance threshold): the fraction of genuine
            pairs accepted (distance <= threshold) at the largest threshold whose
            false-accept rate on impostor pairs does not exceed the target.
        num_queries: queries counted for recall (those whose identity is enrolled).
        num_genuine_pairs, num_impostor_pairs: pair counts behind TAR@FAR.
        metric: "cosine" or "euclidean".
    """

    recall_at: dict[int, float]
    tar_at_far: dict[float, tuple[float, float]]
    num_queries: int
    num_genuine_pairs: int
    num_impostor_pairs: int
    metric: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "recall_at": {str(k): v for k, v in self.recall_at.items()},
            "tar_at_far": {repr(f): {"tar": t, "threshold": th} for f, (t, th) in self.tar_at_far.items()},
            "num_queries": self.num_queries, "num_genuine_pairs": self.num_genuine_pairs,
            "num_impostor_pairs": self.num_impostor_pairs, "metric": self.metric,
        }
