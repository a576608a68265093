"""Task runtime: Classifier, Detector, Segmenter, Embedder and Gallery on top of :class:`edgecv.Model`.

Every task takes a Model or a model path (plus ``target=``, ``backend=``,
``num_threads=``, ``preprocessing=``), accepts HxWx3 uint8 images or paths
with ``color="bgr"`` (default) or ``"rgb"``, returns frozen results of plain
Python numbers with a ``timing`` split and ``to_dict()``, and raises
:class:`IncompatibleModelError` naming expected vs found outputs when a model
does not fit. A task object is not thread-safe: create one per thread
(concurrent calls raise :class:`InferenceError`).
"""

from .classifier import Classifier
from .detector import Detector
from .embedder import Embedder
from .gallery import Gallery
from .results import (
    Box,
    Category,
    ClassArea,
    ClassificationResult,
    Detection,
    DetectionResult,
    Embedding,
    EmbeddingEvaluation,
    SegmentationResult,
    Timing,
)
from .segmenter import Segmenter


def task_class(task: str) -> type:
    """The runtime class of *task* (a name, verb or class name the task registry knows).

    Raises:
        ConfigError: unknown task.
    """
    from ..task_registry import get_task

    return globals()[get_task(task).class_name]

__all__ = [
    "Classifier", "Detector", "Segmenter", "Embedder", "Gallery",
    "Timing", "Category", "ClassificationResult", "Box", "Detection", "DetectionResult",
    "ClassArea", "SegmentationResult", "Embedding", "EmbeddingEvaluation", "task_class",
]
