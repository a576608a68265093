"""The task-specific part of the manifest (``Manifest.head``), the labels and the preprocessing.

Defaults are filled from what the float model's outputs show (probabilities
or logits, unit-length embeddings); anything the caller states in ``head=``
wins. Keys follow the manifest contract (see edgecv/manifest.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edgecv.errors import ConfigError
from edgecv.heads import Head
from edgecv.manifest import Preprocessing, read_labels
from edgecv.task_registry import get_task

__all__ = ["build_head", "resolve_labels", "resolve_preprocessing", "DEFAULT_PREPROCESSING"]

log = logging.getLogger("edgecv.converters")

#: mean/std the runtime assumes for float inputs when none is stated: (x - 127.5) / 127.5, i.e. -1..1.
DEFAULT_PREPROCESSING = Preprocessing(mean=(127.5,), std=(127.5,), color="rgb")

_TF_BOX_CODER = {"convention": "tf", "scales": [10.0, 10.0, 5.0, 5.0]}


def resolve_preprocessing(preprocessing: Preprocessing | Mapping[str, Any] | None, layout: str) -> tuple[Preprocessing, list[str]]:
    """The preprocessing to store, with mean, std and layout stated explicitly.

    Raises:
        ConfigError: only one of mean/std given, or a layout that contradicts the model input.
    """
    notes: list[str] = []
    pre = Preprocessing.coerce(preprocessing)
    if pre is None:
        pre = DEFAULT_PREPROCESSING
        notes.append("no preprocessing given: stored mean 127.5, std 127.5, RGB (pixels scaled to -1..1, the "
                     "runtime's float default); pass preprocessing= if the model was trained otherwise")
        log.warning(notes[-1])
    if (pre.mean is None) != (pre.std is None):
        raise ConfigError("preprocessing states only one of mean/std; give both (e.g. mean=127.5, std=127.5 for "
                          "-1..1 inputs, or mean=0, std=255 for 0..1)")
    if pre.mean is None:
        pre = Preprocessing(mean=DEFAULT_PREPROCESSING.mean, std=DEFAULT_PREPROCESSING.std, color=pre.color,
                            layout=pre.layout, resize=pre.resize, pad_value=pre.pad_value,
                            interpolation=pre.interpolation)
        notes.append("preprocessing gave no mean/std: stored 127.5/127.5 (pixels scaled to -1..1)")
    if pre.layout is not None and pre.layout != layout:
        raise ConfigError(f"preprocessing layout {pre.layout!r} contradicts the model input, which is {layout}")
    return Preprocessing(mean=pre.mean, std=pre.std, color=pre.color, layout=layout, resize=pre.resize,
                         pad_value=pre.pad_value, interpolation=pre.interpolation), notes


def resolve_labels(labels: Sequence[str] | str | os.PathLike | None, task: str,
                   num_classes: int | None) -> tuple[tuple[str, ...] | None, int]:
    """``(labels, label_offset)`` for the manifest.

    For classification and segmentation the count must equal the model's
    classes, or be one less (a background class 0 without a label row).

    Raises:
        ConfigError: unreadable label file, non-string labels, or a count that does not fit.
    """
    if labels is None:
        return None, 0
    if isinstance(labels, (str, os.PathLike)):
        found = read_labels(labels)
    else:
        found = tuple(labels)
        if not all(isinstance(x, str) for x in found):
            raise ConfigError("labels must be a sequence of strings or a label file path")
    if task in ("classification", "segmentation") and num_classes is not None:
        if len(found) == num_classes:
            return found, 0
        if len(found) == num_classes - 1:
            return found, 1
        raise ConfigError(f"{len(found)} labels for a model with {num_classes} classes; give {num_classes} labels "
                          f"(or {num_classes - 1} when class 0 is an unlabelled background)")
    return found, 0


def _looks_like_probabilities(values: np.ndarray, axis: int) -> bool:
    if values.size == 0 or float(values.min()) < 0.0 or float(values.max()) > 1.0:
        return False
    return bool(np.allclose(values.sum(axis=axis), 1.0, atol=1e-3))


def build_head(task: str, head: Head | Mapping[str, Any] | None, *, anchors: Any, float_outputs: Mapping[str, np.ndarray],
               layout: str) -> Head:
    """The manifest head for *task*: what the float model's outputs show, with the caller's settings over it.

    Args:
        task: canonical task.
        head: caller's settings (a typed head or its dict; they win over the defaults).
        anchors: detection: AnchorSpec (raw outputs) or None.
        float_outputs: role -> float source outputs on a few inputs (N, ...).
        layout: the model input's layout (segmentation logits follow it).

    Raises:
        ConfigError: unknown head keys or bad values, anchors that cannot be stored, or anchors for another task.
    """
    info = get_task(task)
    given = info.head(head)
    if anchors is not None and task != "detection":
        raise ConfigError(f"anchors are for detection models, not {task}")
    if task == "classification":
        scores = float_outputs.get("scores")
        found = {"kind": "multiclass",
                 "output": "probabilities" if scores is not None and _looks_like_probabilities(
                     scores.reshape(len(scores), -1), 1) else "logits"}
    elif task == "segmentation":
        mask = float_outputs.get("mask")
        axis = -1 if layout == "nhwc" else 1
        found = {"output": "probabilities" if mask is not None and mask.ndim == 4 and _looks_like_probabilities(
            mask, axis) else "logits", "layout": layout}
    elif task == "embedding":
        emb = float_outputs.get("embedding")
        unit = emb is not None and bool(np.allclose(np.linalg.norm(emb.reshape(len(emb), -1), axis=1), 1.0, atol=1e-3))
        found = {"l2_normalized": unit}
    else:
        found = _detection_defaults(anchors if anchors is not None else given.anchors)
    out = given.merged_over(info.head(found))
    if anchors is not None:                        # the anchors= argument wins over head["anchors"]
        out = replace(out, anchors=anchors)
    if task == "detection" and out.anchors is not None and not hasattr(out.anchors, "to_dict"):
        raise ConfigError("anchors must be an edgecv.anchors.AnchorSpec (or its to_dict()), got an array; "
                          "an explicit anchor array cannot travel in the manifest")
    return out


def _detection_defaults(anchors: Any) -> dict[str, Any]:
    """A detector's head before the caller's settings: raw with the TF box coder when anchors are known."""
    if anchors is not None:
        out = {"form": "raw", "anchors": anchors, "box_coder": dict(_TF_BOX_CODER), "score_activation": "sigmoid",
               "background_class": None}
    else:
        out = {"form": "decoded", "box_format": "xyxy", "box_normalized": True, "score_activation": "none",
               "background_class": None}
    return {**out, "score_threshold": 0.5, "iou_threshold": 0.5, "max_detections": 100}
