"""TensorFlow SavedModel -> TFLite at one precision.

Precisions:

* ``fp32``: plain conversion.
* ``fp16``: weights stored as float16 (dequantized at load; float32 I/O).
* ``dynamic``: dynamic-range int8: int8 weights, float activations, float I/O;
  no calibration needed.
* ``int8``: full-integer (the Coral / NPU recipe): ``TFLITE_BUILTINS_INT8``
  only, activations calibrated on a representative data set, I/O ``uint8``,
  ``int8`` or ``float32``. The converter can still leave an op in float
  (wrapped in DEQUANTIZE/QUANTIZE) when it has no int8 kernel; edgecv checks
  the result and raises :class:`UnsupportedOpError` naming the op instead of
  shipping a silently mixed model.

With Keras 3 the converter is fed a SavedModel written by
``keras.export.ExportArchive`` (``from_keras_model`` re-exports and prints to
stdout; concrete functions keep resource variables the int8 calibrator cannot
read).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgecv.errors import ConfigError, ConversionError, UnsupportedOpError

from ._env import import_tensorflow
from ._native_logs import native_logs_filtered
from .tflite_writer import float_compute_ops

__all__ = ["convert_tflite", "TFLITE_PRECISIONS", "TFLITE_IO_DTYPES"]

log = logging.getLogger("edgecv.converters")

TFLITE_PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
TFLITE_IO_DTYPES = ("uint8", "int8", "float32")

_OP_PATTERNS = (
    re.compile(r"'(?:tf|tfl)\.([A-Za-z0-9_]+)' op is neither a custom op nor a flex op"),
    re.compile(r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(?:tf\.|tfl\.)?([A-Za-z0-9_]+)"),
    re.compile(r"op '(?:tf|tfl)\.([A-Za-z0-9_]+)'"),
)


def _ops_in(message: str) -> list[str]:
    found: list[str] = []
    for pattern in _OP_PATTERNS:
        for name in pattern.findall(message):
            if name not in found:
                found.append(name)
    return found


def convert_tflite(saved_model_dir: str, *, precision: str, io_dtype: str = "uint8",
                   representative: Callable[[], Iterable[np.ndarray]] | None = None,
                   activations16: bool = False) -> bytes:
    """Convert a SavedModel (``serving_default``, batch 1) to TFLite bytes.

    Args:
        saved_model_dir: folder written by :meth:`SourceModel.write_saved_model`.
        precision: one of ``TFLITE_PRECISIONS``.
        io_dtype: for ``int8``: input/output type, one of ``TFLITE_IO_DTYPES``.
        representative: for ``int8``: callable returning an iterable of
            (1, ...) float32 preprocessed inputs.
        activations16: for ``int8``: 16-bit activations with 8-bit weights
            (``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``), float32 I/O.

    Raises:
        ConfigError: unknown precision or io_dtype, or int8 without calibration.
        UnsupportedOpError: an op has no int8 kernel (named in the message).
        ConversionError: the converter failed for another reason.
    """
    if precision not in TFLITE_PRECISIONS:
        raise ConfigError(f"TFLite precision {precision!r} is not one of {TFLITE_PRECISIONS}")
    if precision == "int8" and io_dtype not in TFLITE_IO_DTYPES:
        raise ConfigError(f"int8 io_dtype {io_dtype!r} is not one of {TFLITE_IO_DTYPES}")
    if precision == "int8" and representative is None:
        raise ConfigError("full-integer int8 needs a calibration set")
    tf = import_tensorflow()
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    except Exception as exc:
        raise ConversionError(f"the TFLite converter could not read the exported model: {_first_line(exc)}") from exc
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def dataset() -> Iterable[list[np.ndarray]]:
            for x in representative():
                yield [np.asarray(x, np.float32)]

        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if activations16:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            io_dtype = "float32"
        io = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[io_dtype]
        converter.inference_input_type = io
        converter.inference_output_type = io
    try:
        with native_logs_filtered():             # (the quantizer prints its settings to stderr)
            model = converter.convert()
    except Exception as exc:
        text = str(exc)
        ops = _ops_in(text)
        if ops:
            raise UnsupportedOpError(
                f"TFLite {precision} conversion failed: op(s) {', '.join(ops)} cannot be converted"
                + (" to full-integer int8 (no int8 kernel); replace them in the model (e.g. ReLU6 for "
                   "swish/GELU) or use precision 'dynamic'/'fp16' on a target that allows float ops"
                   if precision == "int8" else "; replace them with TFLite builtin ops")) from exc
        raise ConversionError(f"TFLite {precision} conversion failed: {_first_line(exc)}") from exc
    if precision == "int8":
        floating = float_compute_ops(model)
        if floating:
            named = [op for op in dict.fromkeys(floating) if op not in ("QUANTIZE", "DEQUANTIZE")] or floating
            raise UnsupportedOpError(
                f"full-integer int8 conversion left op(s) {', '.join(dict.fromkeys(named))} computing in float "
                "(no int8 kernel); an integer-only accelerator (Edge TPU, NPU) cannot run them. Replace them in "
                "the model, or choose precision 'dynamic'/'fp16' for a CPU target")
    return bytes(model)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()[:500]
    return text.splitlines()[0][:500] if text else exc.__class__.__name__


def converter_version() -> dict[str, Any]:
    """The TFLite converter's identity for provenance."""
    tf = import_tensorflow()
    return {"converter": "tf.lite.TFLiteConverter", "tensorflow": tf.__version__}
