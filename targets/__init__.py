"""Hardware targets as data: profiles, conversion recipes, pre-flight checks, ONNX Runtime providers, host report.

Standard library only (plus edgecv's error tree and its pure-Python model
readers), so the converters, the on-device runtime and the CLI can all use it.

    >>> import targets
    >>> targets.get("coral-usb").io_dtype
    'uint8'
    >>> [r.artifact_name("model") for r in targets.recipe("coral-usb")]
    ['model_int8_edgetpu.tflite']
"""

from __future__ import annotations

from .check import check, check_graph
from .check_report import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS, CheckReport, ModelSummary, Problem
from .detect import EdgeTpuInfo, HostReport, RuntimeInfo, detect
from .graph import ModelGraph, OpInfo, TensorInfo, read_graph
from .providers import (
    default_cache_root,
    ensure_cache_dirs,
    granted_report,
    model_sha256,
    providers_for,
    trt_cache_dir,
)
from .recipes import Recipe, recipe, supports_int16_activations, symmetric_activations
from .registry import all_targets as _all_targets
from .registry import get, load_profile, names, resolve
from .target import FORMATS, IO_DTYPES, PRECISIONS, Constraints, Target

__all__ = [
    "Target", "Constraints", "get", "all", "names", "resolve", "load_profile",
    "FORMATS", "PRECISIONS", "IO_DTYPES",
    "Recipe", "recipe", "supports_int16_activations", "symmetric_activations",
    "check", "check_graph", "CheckReport", "Problem", "ModelSummary", "EXIT_OK", "EXIT_WARNINGS", "EXIT_ERRORS",
    "ModelGraph", "OpInfo", "TensorInfo", "read_graph",
    "providers_for", "granted_report", "trt_cache_dir", "default_cache_root", "model_sha256", "ensure_cache_dirs",
    "detect", "HostReport", "RuntimeInfo", "EdgeTpuInfo",
]


def all() -> list[Target]:  # noqa: A001 - the public name the issue asks for (targets.all())
    """Every built-in target, sorted by name."""
    return _all_targets()
