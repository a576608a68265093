"""The conversion request: ``convert()``'s keyword arguments, checked before any work, as one frozen value."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from edgecv.checks import check_int, check_number
from edgecv.errors import ConfigError
from edgecv.heads import Head
from edgecv.manifest import Preprocessing, normalize_task
from edgecv.task_registry import get_task

from .calibration import MIN_CALIBRATION_SAMPLES

__all__ = ["ConvertOptions", "check_options", "DEFAULT_BUDGET_POINTS", "DEFAULT_MAX_FLOAT_SHARE"]

#: Allowed drop of the primary metric, in points (1 = 1 %), for the recommendation.
DEFAULT_BUDGET_POINTS = 1.0
#: The int8 fallback loop keeps at most this share of an artifact's quantized layers in float.
DEFAULT_MAX_FLOAT_SHARE = 0.5


@dataclass(frozen=True)
class ConvertOptions:
    """The arguments of :func:`converters.convert` after :func:`check_options` (see its docstring for each one).

    After the check ``task`` is the canonical task name and ``opset`` an int (17 when not given); everything
    else is as the caller passed it. The data arguments (``calibration``, ``validation``) are read later, by the
    data stage.
    """

    model: Any
    task: str
    target: Any = "cpu"
    precision: str | Sequence[str] | None = None
    calibration: Any = None
    validation: Any = None
    labels: Sequence[str] | str | os.PathLike | None = None
    preprocessing: Preprocessing | Mapping[str, Any] | None = None
    anchors: Any = None
    output_dir: str | os.PathLike = "edgecv-out"
    overwrite: bool = False
    formats: str | Sequence[str] | None = None
    io_dtype: str | None = None
    head: Head | Mapping[str, Any] | None = None     # after check_options: the task's typed head
    outputs: Mapping[str, str | int] | None = None
    name: str | None = None
    color: str = "bgr"
    calibration_method: str = "minmax"
    per_channel: bool = True
    allow_overlap: bool = False
    accuracy_budget: float = DEFAULT_BUDGET_POINTS
    opset: int | None = None
    input_shape: tuple[int, ...] | None = None
    custom_objects: Mapping[str, Any] | None = None
    postprocess: str = "none"
    min_calibration: int = MIN_CALIBRATION_SAMPLES
    write_report: bool = True
    float_fallback: bool = True
    max_float_share: float = DEFAULT_MAX_FLOAT_SHARE

    @property
    def source_is_onnx(self) -> bool:
        """The source is an ``.onnx`` file (ONNX sources give ONNX artifacts only)."""
        return isinstance(self.model, (str, os.PathLike)) and str(self.model).lower().endswith(".onnx")


def check_options(model: Any, **kwargs: Any) -> ConvertOptions:
    """Check the arguments that can be checked before any work and return them as :class:`ConvertOptions`.

    Args:
        model: the source model (checked when it is loaded).
        kwargs: the other keyword arguments of :func:`converters.convert`.

    Raises:
        ConfigError: unknown task, a negative or NaN accuracy budget, a max_float_share outside 0..1, an output_dir that is not a path, a bad
            color, calibration method, opset, preprocessing, head or postprocess value, or anchors / postprocess
            for a task other than detection.
    """
    options = ConvertOptions(model, **kwargs)
    task = normalize_task(options.task)
    check_number(options.accuracy_budget, "accuracy_budget", minimum=0.0, finite=False,     # inf: any drop
                 expected="a non-negative number of points")
    if not isinstance(options.output_dir, (str, os.PathLike)):
        raise ConfigError(f"output_dir must be a folder path, got {type(options.output_dir).__name__}")
    if options.color not in ("bgr", "rgb"):
        raise ConfigError(f"color must be 'bgr' or 'rgb', got {options.color!r}")
    from .onnx_export import CALIBRATION_METHODS, DEFAULT_OPSET

    if options.calibration_method not in (*CALIBRATION_METHODS, "auto"):
        raise ConfigError(f"calibration_method {options.calibration_method!r} is not one of "
                          f"{(*CALIBRATION_METHODS, 'auto')}")
    if not isinstance(options.float_fallback, bool):
        raise ConfigError(f"float_fallback must be True or False, got {options.float_fallback!r}")
    check_number(options.max_float_share, "max_float_share", minimum=0.0, maximum=1.0,
                 expected="a share of the quantized layers in 0..1")
    opset = DEFAULT_OPSET if options.opset is None else check_int(options.opset, "opset", minimum=13, maximum=21,
                                                                  expected="an int in 13..21", allow_numpy=False)
    Preprocessing.coerce(options.preprocessing)  # bad preprocessing fails before any work
    head = get_task(task).head(options.head)    # and so do unknown head keys and bad values
    if options.anchors is not None and task != "detection":
        raise ConfigError(f"anchors are for detection models, not {task}")
    _check_postprocess(options.postprocess, task)
    return replace(options, task=task, opset=opset, head=head)


def _check_postprocess(postprocess: str, task: str) -> None:
    from .postprocess import POSTPROCESS

    if postprocess not in POSTPROCESS:
        raise ConfigError(f"postprocess must be one of {POSTPROCESS}, got {postprocess!r}"
                          + ("; in-graph NMS is not produced (TensorFlow's NMS ops are not TFLite builtins): the "
                             "runtime runs NMS" if postprocess == "nms" else ""))
    if postprocess != "none" and task != "detection":
        raise ConfigError(f"postprocess={postprocess!r} is for detection models, not {task}")

