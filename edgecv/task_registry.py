"""The task registry: every task edgecv knows, in one table.

Each :class:`TaskInfo` names a task (and the aliases the CLI and the
converters accept), the output roles its models have, its typed head, the
metric conversions validate it with, and its runtime class and result type.
Code that needs a per-task fact reads it here instead of keeping its own
table. The registry names the runtime classes; :func:`edgecv.tasks.task_class`
returns them, so this module imports no task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, did_you_mean
from .heads import ClassificationHead, DetectionHead, EmbeddingHead, Head, SegmentationHead

__all__ = ["TaskInfo", "TASKS", "TASK_NAMES", "get_task", "normalize_task"]


@dataclass(frozen=True)
class TaskInfo:
    """What edgecv knows about one task.

    Attributes:
        name: canonical name ("classification", ...).
        verb: the task method and CLI verb ("classify", ...).
        aliases: other accepted spellings (the verb and the class name included).
        class_name: the runtime class in :mod:`edgecv.tasks` ("Classifier", ...).
        result_name: the class of what the task method returns ("ClassificationResult", ...).
        roles: output roles the runtime task reads (a model has some or all of them).
        export_roles: output roles every converted model of this task has.
        head_type: the typed head of the manifest.
        metrics: (primary metric with ground truth, primary metric without), as validation names them.
    """

    name: str
    verb: str
    aliases: tuple[str, ...]
    class_name: str
    result_name: str
    roles: tuple[str, ...]
    export_roles: tuple[str, ...]
    head_type: type[Head]
    metrics: tuple[str, str]

    def head(self, data: Any = None) -> Head:
        """This task's typed head from a head, its JSON object, or None (nothing stated).

        Raises:
            ConfigError: unknown keys or bad values.
        """
        return self.head_type.from_dict(data)


TASKS: tuple[TaskInfo, ...] = (
    TaskInfo("classification", "classify", ("classify", "classifier"), "Classifier", "ClassificationResult",
             ("scores",), ("scores",), ClassificationHead, ("top1_accuracy", "top1_agreement")),
    TaskInfo("detection", "detect", ("detect", "detector"), "Detector", "DetectionResult",
             ("boxes", "classes", "scores", "count"), ("boxes", "scores"), DetectionHead, ("map50", "detection_f1")),
    TaskInfo("segmentation", "segment", ("segment", "segmenter"), "Segmenter", "SegmentationResult",
             ("mask",), ("mask",), SegmentationHead, ("miou", "pixel_agreement")),
    TaskInfo("embedding", "embed", ("embed", "embedder"), "Embedder", "Embedding",
             ("embedding",), ("embedding",), EmbeddingHead, ("tar_at_far_1e-3", "mean_cosine")),
)
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
_BY_SPELLING = {spelling: t for t in TASKS for spelling in (t.name, *t.aliases)}


def get_task(name: str) -> TaskInfo:
    """The task called *name* (canonical name, verb or class name; case-insensitive).

    Raises:
        ConfigError: unknown task (with close matches).
    """
    if not isinstance(name, str) or name.lower() not in _BY_SPELLING:
        raise ConfigError(f"unknown task {name!r}{did_you_mean(str(name), _BY_SPELLING)}; "
                          f"choose one of {', '.join(TASK_NAMES)}")
    return _BY_SPELLING[name.lower()]


def normalize_task(name: str) -> str:
    """Canonical task name of *name* (see :func:`get_task`).

    Raises:
        ConfigError: unknown task.
    """
    return get_task(name).name
