"""What every task shares: owning a Model, one preprocessor, the per-call lock, labels, output roles.

A task object uses one :class:`edgecv.Model` and is not thread-safe: a second
thread calling it while a call is running gets :class:`InferenceError`
(the same policy as ``Model.invoke``). Create one task object per thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..checks import check_int
from ..errors import ConfigError, IncompatibleModelError, InferenceError
from ..labels import drop_background_placeholder, suspicious_labels
from ..manifest import Manifest, Preprocessing, read_labels
from ..model import Model, load
from ..preprocess import Preprocessor
from ..task_registry import get_task
from .results import Timing
from .sanity import describe_input, missing_preprocessing, missing_settings_error

__all__ = ["Task", "resolve_model", "resolve_labels", "find_output", "describe_outputs", "ms_since"]

log = logging.getLogger("edgecv")



def resolve_model(model_or_path: Model | str | os.PathLike, *, target: Any = None, backend: str | None = None,
                  num_threads: int | None = None) -> tuple[Model, bool]:
    """Return ``(model, owned)``: a given Model as is, or a path loaded with :func:`edgecv.load`.

    Raises:
        ConfigError: load options given together with an already loaded Model, or a wrong type.
        (and everything :func:`edgecv.load` raises)
    """
    if isinstance(model_or_path, Model):
        given = [n for n, v in (("target", target), ("backend", backend), ("num_threads", num_threads))
                 if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be applied to an already loaded Model; pass the model "
                              "path instead, or give them to edgecv.load()")
        return model_or_path, False
    if isinstance(model_or_path, (str, os.PathLike)):
        return load(model_or_path, target=target, backend=backend, num_threads=num_threads), True
    raise ConfigError(f"expected an edgecv.Model or a model file path, got {type(model_or_path).__name__}")


def describe_outputs(model: Model) -> str:
    """``name[shape]:dtype`` of every output, for error messages."""
    return ", ".join(f"{s.name!r}{list(s.shape)}:{s.dtype}" for s in model.outputs)


def find_output(model: Model, role: str, *, task: str, expected: str, name: str | int | None = None) -> int:
    """Index of the output playing *role* (see :func:`_find_output`), checked to hold numbers.

    Raises:
        IncompatibleModelError: see :func:`_find_output`, or the output is boolean (no scores to read).
    """
    index = _find_output(model, role, task=task, expected=expected, name=name)
    spec = model.outputs[index]
    if spec.np_dtype.kind not in "fiu":
        raise IncompatibleModelError(f"{task}: expected {expected}; output {spec.name!r} holds {spec.dtype} values, "
                                     f"not numbers; found outputs {describe_outputs(model)}")
    return index


def _find_output(model: Model, role: str, *, task: str, expected: str, name: str | int | None = None) -> int:
    """Index of the output playing *role*: an explicit name, the manifest role, or the only output.

    For the single-output tasks (classification, segmentation, embedding). A
    manifest that gives outputs other roles (e.g. a detector's boxes/count)
    means the model is made for another task.

    Raises:
        IncompatibleModelError: the named/role output is missing, the manifest gives
            other roles, or several outputs and none named.
    """
    stated = set(model.manifest.outputs)
    if name is None and stated - {role}:
        raise IncompatibleModelError(
            f"{task}: expected {expected}; the model's outputs play the roles {sorted(stated)} "
            f"(found outputs {describe_outputs(model)}): it is made for another task")
    if name is not None:
        try:
            return model.output_index(name)
        except IncompatibleModelError as exc:
            raise IncompatibleModelError(f"{task}: expected {expected}; output {name!r} not found; "
                                         f"found outputs {describe_outputs(model)}") from exc
    if role in model.manifest.outputs:
        try:
            return model.output_index(role)
        except IncompatibleModelError as exc:
            raise IncompatibleModelError(
                f"{task}: the manifest maps role {role!r} to {model.manifest.outputs[role]!r}, which the model "
                f"lacks; found outputs {describe_outputs(model)}") from exc
    if len(model.outputs) == 1:
        return 0
    raise IncompatibleModelError(
        f"{task}: expected {expected}; found {len(model.outputs)} outputs {describe_outputs(model)} and no "
        f"manifest role {role!r}: name the output with output={model.outputs[0].name!r} (or the right one)")


def resolve_labels(labels: Sequence[str] | str | os.PathLike | None, label_offset: int | None,
                   manifest: Manifest, num_classes: int | None,
                   warn: Callable[[str], None] | None = None) -> tuple[tuple[str, ...] | None, int]:
    """Labels and the number of leading model classes that have no label row.

    Labels come from the argument (a sequence, or a label file path), else the
    manifest. The offset is ``label_offset`` when given; else the manifest's
    when the labels came from it; else an explicit rule: when the class
    count is known and ``len(labels) == num_classes - 1`` the model has a
    background class at index 0 that the file lacks (offset 1, the
    1001-outputs-vs-1000-labels ImageNet case); ``len(labels) == num_classes``
    gives offset 0. Any other count is refused, never padded or cut.

    Raises:
        ConfigError: unreadable label file, bad offset, or a label count that does not fit the model.
    """
    if label_offset is not None:
        label_offset = check_int(label_offset, "label_offset", minimum=0, expected="a non-negative int")
    source = "labels argument"
    if labels is None:
        if manifest.labels is None:
            return None, label_offset if label_offset is not None else 0
        found, source = manifest.labels, "model manifest"
        stated = manifest.label_offset
    elif isinstance(labels, (str, os.PathLike)):
        found, source, stated = read_labels(labels), f"label file {Path(labels).name}", None
        for message in suspicious_labels(found, source):
            (warn or log.warning)(message)
    else:
        if not all(isinstance(x, str) for x in labels):
            raise ConfigError("labels must be a sequence of strings or a label file path")
        found, stated = tuple(labels), None
    if not found:
        raise ConfigError(f"{source} holds no labels; give one label per class, or leave labels out")
    if label_offset is None and not stated:
        without = drop_background_placeholder(found, num_classes)
        if without is not None:
            log.info("%s starts with a ??? background row the model's %d classes lack: row dropped",
                     source, num_classes)
            found = without
    if label_offset is not None:
        offset = label_offset
    elif stated:
        offset = stated
    elif num_classes is not None and len(found) == num_classes - 1:
        offset = 1
        log.info("%s has %d labels for %d model classes: class 0 taken as background (label_offset=1)",
                 source, len(found), num_classes)
    else:
        offset = 0
    if num_classes is not None and len(found) + offset != num_classes:
        raise ConfigError(
            f"{source} has {len(found)} labels with label_offset={offset}, but the model has {num_classes} "
            f"classes; give a label file with {num_classes} rows (or {num_classes - 1} without the background "
            "row), or set label_offset")
    return found, offset


def ms_since(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e6


class Task:
    """Base of Classifier, Detector, Segmenter and Embedder.

    Raises (at construction):
        IncompatibleModelError: the manifest names another task, or the input is not an image.

    A float input whose mean/std neither the model nor the arguments state is in ``self.unstated``;
    each task raises it (:meth:`_require_stated`) once its own checks have passed, so a model of
    another family is refused as such first.
    """

    task_name = ""
    task_title = ""
    _dequantize = True      # False: the task reads quantized outputs as stored (Model.invoke(dequantize=False))

    def __init__(self, model_or_path: Model | str | os.PathLike, *, target: Any = None, backend: str | None = None,
                 num_threads: int | None = None, preprocessing: Preprocessing | dict | None = None) -> None:
        self.model, self._owned = resolve_model(model_or_path, target=target, backend=backend,
                                                num_threads=num_threads)
        try:
            stated = self.model.manifest.task
            if stated is not None and stated != self.task_name:
                raise IncompatibleModelError(
                    f"{self.task_title}: this model's manifest says task {stated!r}, not {self.task_name!r}; "
                    "use the matching task class")
            if len(self.model.inputs) != 1:
                raise IncompatibleModelError(
                    f"{self.task_title}: expected one image input, found {len(self.model.inputs)} inputs "
                    f"{[s.name for s in self.model.inputs]}")
            self.preprocessor: Preprocessor = self.model.preprocessor(0, preprocessing)
            self.unstated: list[str] = missing_preprocessing(self.preprocessor.spec, self.preprocessor.options)
        except BaseException:
            self._close_owned()
            raise
        self._lock = threading.Lock()

    def _require_stated(self) -> None:
        """Refuse to run on a setting nobody stated (the task's last construction check).

        Raises:
            ConfigError: a float input's mean/std is not stated (the error says how to state it).
        """
        if self.unstated:
            raise self._unstated_error(self.unstated)

    def _unstated_error(self, missing: Sequence[str], shows: str = "") -> ConfigError:
        """The one error naming *missing* settings (see :func:`edgecv.tasks.sanity.missing_settings_error`)."""
        pre = self.preprocessor
        parts = [describe_input(pre.spec, pre.options)] if "preprocessing" in missing else []
        return missing_settings_error(missing, self.model.path.name, "; ".join(parts + ([shows] if shows else [])),
                                      title=self.task_title, verb=get_task(self.task_name).verb)

    def _forward(self, image: Any, color: str) -> tuple[Any, tuple, int, int, int]:
        """Preprocess *image* into the input and invoke: ``(transform, outputs, t0, t1, t2)`` (perf_counter_ns)."""
        t0 = time.perf_counter_ns()
        transform = self.preprocessor(image, color)
        t1 = time.perf_counter_ns()
        outputs = self.model.invoke(dequantize=self._dequantize)
        return transform, outputs, t0, t1, time.perf_counter_ns()

    @staticmethod
    def _timing(t0: int, t1: int, t2: int) -> Timing:
        """The preprocess / inference / postprocess split, with postprocessing ending now."""
        return Timing(ms_since(t0, t1), ms_since(t1, t2), ms_since(t2, time.perf_counter_ns()))

    @property
    def manifest(self) -> Manifest:
        return self.model.manifest

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise InferenceError(f"{self.task_title} called from two threads at once; a task object is not "
                                 "thread-safe: create one per thread")
        try:
            yield
        finally:
            self._lock.release()

    def _close_owned(self) -> None:
        if getattr(self, "_owned", False):
            self.model.close()

    def close(self) -> None:
        """Close the model if this task loaded it from a path (a Model passed in stays open)."""
        self._close_owned()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<edgecv.{type(self).__name__} {self.model.path.name}>"
