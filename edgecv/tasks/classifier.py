"""Image classification: multiclass (softmax), multilabel (sigmoid) or binary (one yes/no score)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checks import check_fraction, check_int
from ..errors import ConfigError, IncompatibleModelError
from ..heads import CLASSIFIER_KINDS, ClassificationHead
from ..manifest import Preprocessing
from ..model import Model
from .base import Task, describe_outputs, find_output, resolve_labels
from .results import Category, ClassificationResult

__all__ = ["Classifier", "KINDS", "ACTIVATIONS", "softmax_into", "sigmoid_into", "top_k_indices"]

KINDS = CLASSIFIER_KINDS
ACTIVATIONS = ("softmax", "sigmoid", "none")
PROBABILITY_SUM_TOLERANCE = 1e-3


def softmax_into(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Softmax of a 1-D float array written into *out* (same shape, float32)."""
    np.subtract(logits, logits.max(), out=out)
    np.exp(out, out=out)
    out /= out.sum()
    return out


def sigmoid_into(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Logistic function of a float array written into *out*."""
    np.negative(logits, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


def top_k_indices(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the *k* largest scores, best first; equal scores keep the lower index first."""
    n = scores.shape[0]
    if k >= n:
        candidates = np.arange(n)
    else:
        candidates = np.argpartition(scores, n - k)[n - k:]
    order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
    return order[:k]


def _quantized_unit_range(model: Model, index: int) -> bool:
    """True when a quantized output can only hold values in [0, 1] (TFLite's softmax/logistic quantization)."""
    spec = model.outputs[index]
    if spec.affine is None:
        return False
    scale, zero = spec.affine
    info = np.iinfo(spec.np_dtype)
    return scale * (info.min - zero) >= -1e-6 and scale * (info.max - zero) <= 1.0 + 1e-6


class Classifier(Task):
    """Classify whole images.

    Args:
        model_or_path: an :class:`edgecv.Model` or a model file path.
        labels: class names (sequence) or a label file path; default the manifest's.
        top_k: at most this many categories per result.
        score_threshold: categories need ``score >= score_threshold``.
        kind: "multiclass", "multilabel" or "binary"; None takes the manifest's
            head, else "binary" for a single output score and "multiclass" otherwise.
        label_offset: leading model classes without a label row; None: the manifest's,
            else 1 when ``len(labels) == classes - 1``, else 0 (see :func:`resolve_labels`).
        score_activation: "softmax", "sigmoid" or "none" (the model already outputs
            probabilities). None: the manifest head's ``output``; else "none" when a
            quantized output can only hold 0..1; else per frame: a multiclass row
            that lies in [0, 1] and sums to 1 (within 1e-3) is taken as probabilities
            and softmax is not applied again, a multilabel/binary row in [0, 1] is
            taken as sigmoid output.
        binary_threshold: for kind "binary", the probability from which the answer is yes.
        output: output tensor name or role to read, when the model has several outputs and no manifest role.
        target, backend, num_threads: passed to :func:`edgecv.load` when a path is given.
        preprocessing: overrides the manifest's preprocessing (a Preprocessing or a dict of its fields).
            A float input needs its mean and std stated here or by the model (ConfigError otherwise).

    ``classify(image, color="bgr")`` (or calling the object) returns a
    :class:`ClassificationResult`:

    - "multiclass": the ``top_k`` best classes with ``score >= score_threshold``.
    - "multilabel": every class with ``score >= score_threshold``, best first
      (``top_k`` does not cut this list).
    - "binary": one category, index 1 ("yes") with score p when
      ``p >= binary_threshold``, else index 0 ("no") with score ``1 - p``; p is
      the single output score (or column 1 of a two-column softmax). Labels of
      a binary model are ``(no, yes)``, or one name for "yes" alone.

    Not thread-safe: one Classifier per thread (concurrent calls raise InferenceError).

    Raises (at construction):
        IncompatibleModelError: no output of shape [1, classes] (expected vs found outputs named).
        ConfigError: bad options or a label count that does not fit; a float input whose mean/std
            neither the model nor the arguments state.
    """

    task_name = "classification"
    task_title = "Classifier"

    def __init__(self, model_or_path: Model | str | os.PathLike, *, labels: Sequence[str] | str | os.PathLike | None = None,
                 top_k: int = 5, score_threshold: float = 0.0, kind: str | None = None,
                 label_offset: int | None = None, score_activation: str | None = None,
                 binary_threshold: float = 0.5, output: str | int | None = None, target: Any = None,
                 backend: str | None = None, num_threads: int | None = None,
                 preprocessing: Preprocessing | dict | None = None) -> None:
        top_k = check_int(top_k, "top_k", minimum=1, expected="a positive int")
        score_threshold = check_fraction(score_threshold, "score_threshold")
        binary_threshold = check_fraction(binary_threshold, "binary_threshold")
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
        if score_activation is not None and score_activation not in ACTIVATIONS:
            raise ConfigError(f"score_activation must be one of {ACTIVATIONS}, got {score_activation!r}")
        super().__init__(model_or_path, target=target, backend=backend, num_threads=num_threads,
                         preprocessing=preprocessing)
        try:
            self._setup(labels, top_k, score_threshold, kind, label_offset, score_activation, binary_threshold,
                        output)
            self._require_stated()
        except BaseException:
            self._close_owned()
            raise

    def _setup(self, labels, top_k, score_threshold, kind, label_offset, score_activation, binary_threshold,
               output) -> None:
        model = self.model
        expected = "one scores output of shape [1, classes]"
        self._out = find_output(model, "scores", task="Classifier", expected=expected, name=output)
        shape = model.outputs[self._out].shape
        if len(shape) < 1 or any(d != 1 for d in shape[:-1]) or shape[-1] < 1:
            raise IncompatibleModelError(f"Classifier: expected {expected}; found outputs {describe_outputs(model)}")
        self.num_classes = int(shape[-1])
        head = model.manifest.head_as(ClassificationHead)     # checked when the manifest was read
        if kind is None:
            kind = head.kind if head.kind is not None else ("binary" if self.num_classes == 1 else "multiclass")
        if kind == "binary" and self.num_classes not in (1, 2):
            raise IncompatibleModelError(f"Classifier: kind 'binary' needs 1 score (or 2 softmax columns no/yes); "
                                         f"found outputs {describe_outputs(model)}")
        self.kind = kind
        self.top_k = top_k
        self.score_threshold = float(score_threshold)
        self.binary_threshold = float(binary_threshold)
        if score_activation is None:
            if head.output == "probabilities":
                score_activation = "none"
            elif head.output == "logits":
                score_activation = "softmax" if kind == "multiclass" or self.num_classes == 2 else "sigmoid"
            elif _quantized_unit_range(model, self._out):
                score_activation = "none"
        self.score_activation = score_activation  # None: decided per frame
        label_classes = 2 if kind == "binary" else self.num_classes
        self.labels, self.label_offset = resolve_labels(labels, label_offset, model.manifest, label_classes,
                                                        model.warn)
        self._probs = np.zeros(self.num_classes, np.float32)

    def _label(self, index: int) -> str | None:
        if self.labels is None:
            return None
        i = index - self.label_offset
        return self.labels[i] if 0 <= i < len(self.labels) else None

    def _probabilities(self, row: np.ndarray) -> np.ndarray:
        activation = self.score_activation
        if activation is None:
            inside = float(row.min()) >= 0.0 and float(row.max()) <= 1.0
            if self.kind == "multiclass" or self.num_classes == 2:
                activation = "none" if inside and abs(float(row.sum()) - 1.0) <= PROBABILITY_SUM_TOLERANCE else "softmax"
            else:
                activation = "none" if inside else "sigmoid"
        if activation == "none":
            return row
        if activation == "softmax":
            return softmax_into(row, self._probs)
        return sigmoid_into(row, self._probs)

    def classify(self, image: Any, *, color: str = "bgr") -> ClassificationResult:
        """Classify one image (HxWx3 uint8 array or path; *color* is its channel order).

        Raises:
            ConfigError: unusable image.
            InferenceError: the runtime failed, or this object is in use by another thread.
        """
        with self._exclusive():
            transform, outputs, t0, t1, t2 = self._forward(image, color)
            row = outputs[self._out].reshape(-1)
            probs = self._probabilities(row)
            categories = self._categories(probs)
            timing = self._timing(t0, t1, t2)
        return ClassificationResult(tuple(categories), timing)

    __call__ = classify

    def _categories(self, probs: np.ndarray) -> list[Category]:
        if self.kind == "binary":
            p = float(probs[-1])
            yes = p >= self.binary_threshold
            index, score = (1, p) if yes else (0, 1.0 - p)
            if score < self.score_threshold:
                return []
            return [Category(index, self._label(index), score)]
        if self.kind == "multilabel":
            # compared in float64, as every other score test (a Python float would round to float32 here)
            chosen = np.flatnonzero(probs >= np.float64(self.score_threshold)).tolist()
            chosen.sort(key=lambda i: (-float(probs[i]), i))
        else:
            chosen = [i for i in top_k_indices(probs, self.top_k) if float(probs[i]) >= self.score_threshold]
        return [Category(i, self._label(i), float(probs[i])) for i in chosen]
