"""Conversion recipes: which artifacts (format, precision, I/O dtype, Edge TPU compile) to build for a target.

``converters.convert(..., target=NAME)`` calls :func:`recipe` and needs no
other argument to know what to produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecv.errors import ConfigError, did_you_mean

from .registry import resolve
from .target import PRECISIONS, Target

__all__ = ["Recipe", "recipe", "supports_int16_activations", "symmetric_activations"]

# Precisions each format can be produced in (ONNX "dynamic" is onnxruntime's dynamic quantization).
_FORMAT_PRECISIONS = {"tflite": ("fp32", "fp16", "dynamic", "int8"), "onnx": ("fp32", "fp16", "dynamic", "int8")}


@dataclass(frozen=True)
class Recipe:
    """One artifact to build for a target.

    Attributes:
        format: "tflite" or "onnx".
        precision: "fp32", "fp16", "dynamic" (int8 weights, float activations) or
            "int8" (full integer for TFLite; static QDQ for ONNX).
        io_dtype: dtype of the model's inputs and outputs ("float32", "uint8", "int8").
        edgetpu_compile: run edgetpu_compiler on the result (Coral targets).
        needs_calibration: the precision needs representative images.
        static_shapes: export with fixed input shapes (batch 1).
        target: name of the target the recipe is for.
    """

    format: str
    precision: str
    io_dtype: str
    edgetpu_compile: bool
    needs_calibration: bool
    static_shapes: bool
    target: str

    def artifact_name(self, stem: str) -> str:
        """File name for this artifact, e.g. ``model_int8_edgetpu.tflite`` or ``model_fp16.onnx``."""
        suffix = "_edgetpu" if self.edgetpu_compile else ""
        return f"{stem}_{self.precision}{suffix}.{self.format}"

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "precision": self.precision, "io_dtype": self.io_dtype,
                "edgetpu_compile": self.edgetpu_compile, "needs_calibration": self.needs_calibration,
                "static_shapes": self.static_shapes, "target": self.target}


def recipe(target: str | Target, precision: str | None = None, formats: tuple[str, ...] | list[str] | None = None
           ) -> list[Recipe]:
    """The artifacts to build for *target*, preferred first (pure function of the profile).

    One recipe per (format, precision) the target runs, for its default
    formats (``Target.default_formats``) or *formats*, in the target's order, precisions in its order within each format. int8
    artifacts use the target's I/O dtype (uint8 for Coral, int8 for Raspberry
    Pi; ONNX QDQ and CPU int8 keep float32 I/O); every other precision keeps
    float32 I/O.

    Args:
        target: a target name or Target.
        precision: only this precision (must be one the target runs).
        formats: these formats (each one the target runs) instead of its default formats.

    Raises:
        UnknownTargetError: unknown target name.
        ConfigError: *precision* is not a precision, or not one the target runs; a format it does not run.
    """
    t = resolve(target)
    if formats is not None:
        outside = [f for f in formats if f not in t.formats]
        if outside:
            raise ConfigError(f"target '{t.name}' runs {', '.join(t.formats)} models, not {', '.join(outside)}; "
                              "drop formats= or pick another target (target=None builds any format)")
    if precision is not None:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}{did_you_mean(str(precision), PRECISIONS)}; "
                              f"use one of {', '.join(PRECISIONS)}")
        if precision not in t.precisions:
            raise ConfigError(f"target '{t.name}' runs {', '.join(t.precisions)} models, not {precision}; "
                              f"pick one of those (or leave precision unset for {t.precisions[0]})")
    out: list[Recipe] = []
    for fmt in [f for f in t.formats if f in (t.default_formats if formats is None else formats)]:
        for prec in t.precisions:
            if precision is not None and prec != precision:
                continue
            if prec not in _FORMAT_PRECISIONS[fmt]:
                continue
            out.append(Recipe(
                format=fmt, precision=prec, io_dtype=_io_dtype(t, fmt, prec),
                edgetpu_compile=t.constraints.edgetpu_compile and fmt == "tflite" and prec == "int8",
                needs_calibration=prec == "int8",
                static_shapes=t.static_shapes, target=t.name,
            ))
    return out


def _io_dtype(t: Target, fmt: str, precision: str) -> str:
    if precision == "int8" and fmt == "tflite" and t.io_dtype in ("uint8", "int8"):
        return t.io_dtype
    return "float32"


def supports_int16_activations(target: str | Target, fmt: str) -> bool:
    """Whether *target* runs *fmt* models with 16-bit activations and 8-bit weights (the "16x8" scheme).

    Not on integer-only accelerators (Edge TPU, ``full_int8_only``), nor on ONNX targets whose first
    provider is TensorRT (it has no 16-bit Q/DQ); TFLite runs 16x8 on its reference CPU kernels (XNNPACK
    does not delegate it: slower), ONNX Runtime on its CPU kernels.

    Raises:
        UnknownTargetError: unknown target name.
    """
    t = resolve(target)
    if t.full_int8_only or t.constraints.edgetpu_compile or fmt not in t.formats:
        return False
    return not _tensorrt_first(t, fmt)


def symmetric_activations(target: str | Target, fmt: str) -> bool:
    """Whether *target*'s int8 *fmt* models need activations quantized with zero point 0.

    TensorRT builds a Q/DQ model only when every zero point is 0 (its ONNX parser refuses others), so
    ONNX models for targets whose first provider is TensorRT quantize activations symmetrically; other
    runtimes take the asymmetric range, which spends all 256 levels on a ReLU output instead of 128.

    Raises:
        UnknownTargetError: unknown target name.
    """
    return _tensorrt_first(resolve(target), fmt)


def _tensorrt_first(t: Target, fmt: str) -> bool:
    return fmt == "onnx" and t.onnx_providers[:1] == ("TensorrtExecutionProvider",)
