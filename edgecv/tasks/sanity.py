"""What a task must be told, and cheap checks of a detector's settings against the first frame's outputs.

A setting that changes results and that neither the model (manifest, TFLite metadata) nor the
arguments state is never assumed: :func:`missing_preprocessing` (every task) and
:func:`missing_detection_settings` name what is missing and :func:`missing_settings_error` builds
the one error that says what the model shows and how to state it. Settings that are stated but look wrong on the first frame's outputs are warned about
(:func:`detection_warnings`), never corrected.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from ..heads import DetectionHead

__all__ = ["missing_preprocessing", "describe_input", "missing_detection_settings", "missing_settings_error",
           "detection_warnings", "rows_are_probabilities"]

#: farther than this outside 0..1 is not a normalized box coordinate (a little outside is normal for SSDs)
_NORMALIZED_SLACK = 1.0
_TOP_ANCHORS = 100


def missing_preprocessing(spec, options) -> list[str]:
    """``["preprocessing"]`` when a float input's mean or std is unstated, else ``[]``.

    A float input takes whatever numbers it is given: pixels in 0..255, 0..1 and -1..1 all run, and
    only one is right. Integer inputs need none (they are fed raw pixels, through their quantization).

    Args:
        spec: the input's :class:`edgecv.specs.TensorSpec`.
        options: the :class:`edgecv.Preprocessing` in effect (arguments over the manifest).
    """
    if spec.np_dtype.kind != "f":
        return []
    return ["preprocessing"] if options.mean is None or options.std is None else []


def describe_input(spec, options) -> str:
    """What a float input shows about its missing mean/std, for :func:`missing_settings_error`."""
    stated = [f"{name} {list(getattr(options, name))}" for name in ("mean", "std") if getattr(options, name) is not None]
    return (f"input {spec.name!r}{list(spec.shape)} is {spec.dtype}, which takes pixels in any range (0..255, 0..1, "
            f"-1..1), and {'only ' + stated[0] + ' is' if stated else 'no mean/std is'} stated")


def missing_detection_settings(head: DetectionHead, num_columns: int, anchors_known: bool) -> list[str]:
    """The result-changing settings of a decoded/raw detector that *head* leaves unstated.

    - ``form`` when no anchors are known (decoded boxes or raw offsets look alike);
    - ``background_class`` when the scores have two or more columns (one column is one class);
    - ``score_activation`` always (probabilities and logits of either activation look alike);
    - ``box_format`` unless the form is raw (the box coder fixes a raw model's box layout; decoded
      boxes come as x1, y1, x2, y2 or y1, x1, y2, x2).
    """
    missing = []
    form = head.form or ("raw" if anchors_known else None)
    if form is None:
        missing.append("form")
    if head.background_class is None and num_columns >= 2:
        missing.append("background_class")
    if head.score_activation is None:
        missing.append("score_activation")
    if form != "raw" and head.box_format is None:
        missing.append("box_format")
    return missing


_HOW = {
    "preprocessing": ("preprocessing={'mean': ..., 'std': ...} as the model was trained (per channel, on 0..255 "
                      "pixels: it sees (pixel - mean) / std; mean 127.5, std 127.5 for -1..1; mean 0, std 255 for "
                      "0..1)", "--mean M --std S"),
    "form": ("form='decoded' when the boxes output holds corners, form='raw' with anchors=... and box_coder=... "
             "when it holds SSD offsets", "--form decoded|raw"),
    "background_class": ("background_class=0 when score column 0 is background (UltraFace, TF Object Detection "
                         "API SSDs), background_class='none' when every column is a real class",
                         "--background-class 0|none"),
    "score_activation": ("score_activation='none' when the scores are already probabilities (a softmax or "
                         "sigmoid inside the model, as UltraFace has), 'sigmoid' or 'softmax' when they are logits",
                         "--score-activation none|sigmoid|softmax"),
    "box_format": ("box_format='xyxy' when each decoded box row is x1, y1, x2, y2 (UltraFace), 'yxyx' when it is "
                   "y1, x1, y2, x2 (TF Object Detection API); form='raw' needs none (its box coder fixes the layout)",
                   "--box-format xyxy|yxyx"),
}


def missing_settings_error(missing: Sequence[str], model_name: str, shows: str, *, title: str = "Detector",
                           verb: str = "detect") -> ConfigError:
    """The error for settings nobody stated: what is missing, what the model shows, how to state it.

    Args:
        missing: keys of the settings (``"preprocessing"``, ``"form"``, ``"background_class"``, ...).
        model_name: the model's file name, for the ``edgecv annotate`` command line.
        shows: what the model shows (its tensors), in words.
        title, verb: the task class and its CLI verb.
    """
    names = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
    how = "; ".join(_HOW[m][0] for m in missing)
    flags = " ".join(_HOW[m][1] for m in missing)
    return ConfigError(
        f"{title}: {names} not stated by the model or the arguments, and edgecv does not guess: {shows}. "
        f"Pass {how}; or write them into the model once: edgecv annotate {model_name} --task {verb} {flags} "
        f"-o annotated_{model_name} (edgecv describe {model_name} lists what the model states)")


def rows_are_probabilities(scores: np.ndarray, atol: float = 2e-3) -> bool:
    """Whether every row of a 2-D score array lies in 0..1 and sums to 1 (a softmax was already applied)."""
    if scores.ndim != 2 or scores.shape[1] < 2 or scores.size == 0:
        return False
    if float(scores.min()) < 0.0 or float(scores.max()) > 1.0:
        return False
    return bool(np.all(np.abs(scores.sum(axis=1, dtype=np.float64) - 1.0) <= atol))


def _score_warnings(scores: np.ndarray, activation: str | None) -> list[str]:
    out = []
    lo, hi = float(scores.min()), float(scores.max())
    if activation == "softmax" and rows_are_probabilities(scores):
        out.append("score_activation='softmax' but every row of the scores already sums to 1: a second softmax "
                   "flattens them and drops detections; these scores are probabilities: use score_activation='none'")
    elif activation == "sigmoid" and rows_are_probabilities(scores):
        out.append("score_activation='sigmoid' but every row of the scores already sums to 1 (a softmax output): "
                   "a sigmoid squeezes them into 0.5..0.73; use score_activation='none'")
    elif activation == "none" and (lo < 0.0 or hi > 1.0):
        out.append(f"score_activation='none' but the scores hold values in [{lo:.3g}, {hi:.3g}]: they are not "
                   "probabilities; use score_activation='sigmoid' or 'softmax'")
    return out


def _box_warnings(boxes: np.ndarray, normalized: bool | None, raw: bool) -> list[str]:
    if boxes.size == 0 or not np.isfinite(boxes).all():
        return []
    lo, hi = float(boxes.min()), float(boxes.max())
    if raw and (lo < -_NORMALIZED_SLACK or hi > 1.0 + _NORMALIZED_SLACK):
        return [f"the best-scoring boxes decode to coordinates in [{lo:.3g}, {hi:.3g}], far outside 0..1 of the "
                "input: check the anchors and the box coder against the model"]
    if raw:
        return []
    if normalized and (lo < -_NORMALIZED_SLACK or hi > 1.0 + _NORMALIZED_SLACK):
        return [f"box_normalized is true but the best-scoring boxes hold coordinates in [{lo:.3g}, {hi:.3g}], far "
                "outside 0..1: boxes in input pixels need box_normalized=False; SSD offsets need form='raw'"]
    if normalized is False and lo >= -0.5 and hi <= 1.5:
        return [f"box_normalized is false but every best-scoring box coordinate lies in [{lo:.3g}, {hi:.3g}]: these "
                "look like 0..1 coordinates; use box_normalized=True"]
    return []


def detection_warnings(boxes: np.ndarray, scores: np.ndarray, head: DetectionHead, *,
                       background_column: int | None, decode=None) -> list[str]:
    """Warnings about *head* from one frame's dense outputs (float, ``(N, 4)`` and ``(N, C)``).

    Args:
        boxes: the boxes output as floats: corners (decoded form) or encodings (raw form).
        scores: the scores output as floats, before any activation.
        head: the settings in effect.
        background_column: the score column that is background, or None.
        decode: raw form: a function from ``(rows, anchor indices)`` to corner boxes.
    """
    scores = scores.reshape(scores.shape[0], -1)
    out = _score_warnings(scores, head.score_activation)
    fg = scores if background_column is None else np.delete(scores, background_column, axis=1)
    if fg.shape[1] == 0:
        return out
    best = np.max(fg, axis=1)
    top = np.argsort(-best, kind="stable")[:_TOP_ANCHORS]
    top.sort()
    rows = boxes.reshape(-1, 4)[top].astype(np.float64)
    if decode is not None:
        rows = decode(rows, top)
    return out + _box_warnings(rows, head.box_normalized, decode is not None)
