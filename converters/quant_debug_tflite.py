"""Per-layer error and coverage of a TFLite int8 model, and a selectively quantized build, with TensorFlow's debugger.

``tf.lite.experimental.QuantizationDebugger`` builds a debug model in which
every quantized op is followed by a NumericVerify op that runs the same op in
float on the dequantized inputs. Its ``layer_direct_compare_metrics`` hand
each layer's float output, quantized output, scale and zero point to a
metric: :mod:`converters.quant_stats` turns them into the error the layer
adds (calibration inputs) and the share of its float values outside the
calibrated range (validation inputs). ``QuantizationDebugOptions(
denylisted_nodes=...)`` keeps layers (named by their output tensors) in float.

The calibration runs once per conversion (:func:`calibrated_model`, the model the debugger itself
quantizes); the debug model and every selective build are quantized from it with the MLIR quantizer the
debugger wraps (``tensorflow.lite.python.convert.mlir_quantize``), with integer I/O where the plan asks.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import ConversionError

from ._env import import_tensorflow
from ._native_logs import native_logs_filtered
from .quant_stats import (
    DEBUG_CALIBRATION_SAMPLES,
    DEBUG_VALIDATION_SAMPLES,
    QuantDiagnosis,
    TensorQuant,
    TensorStats,
    accumulate,
    layer_errors,
)

__all__ = ["calibrated_model", "diagnose_tflite", "selective_int8"]


def _converter(saved_model: str, representative: Callable[[], Iterable[np.ndarray]]) -> Any:
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.asarray(x, np.float32)] for x in representative())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the Python warnings of TensorFlow's interpreter (deprecation, "keeping every tensor is for
    debugging"): the debugger needs exactly that interpreter, and the user can do nothing about them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first(inputs: Iterable[np.ndarray], n: int) -> list[list[np.ndarray]]:
    return [[np.asarray(x, np.float32)] for x, _ in zip(inputs, range(n))]


class _Collector:
    """A ``layer_direct_compare_metrics`` function that accumulates :class:`TensorStats` per layer in call order."""

    def __init__(self) -> None:
        self.stats: list[tuple[TensorQuant, TensorStats]] = []
        self.position = 0

    def rewind(self) -> None:
        self.position = 0

    def __call__(self, float_out: np.ndarray, quant_out: np.ndarray, scale: float, zero_point: int) -> float:
        if self.position == len(self.stats):
            dtype = np.asarray(quant_out).dtype
            info = np.iinfo(dtype) if dtype.kind in "iu" else np.iinfo(np.int8)
            q = TensorQuant(f"#{self.position}", f"#{self.position}", "", float(scale), int(zero_point),
                            int(info.min), int(info.max))
            self.stats.append((q, TensorStats()))
        q, stats = self.stats[self.position]
        accumulate(stats, float_out, q)
        self.position += 1
        return 0.0


def _run(debugger_type: Any, options_type: Any, model: bytes, data: list[list[np.ndarray]]) -> tuple[list, list[str]]:
    """Run the debug *model* over *data*; the per-layer stats and the layer (tensor) names in the same order."""
    collector = _Collector()
    options = options_type(layer_direct_compare_metrics={"edgecv": collector})
    debugger = debugger_type(quant_debug_model_content=model, debug_dataset=lambda: iter(data), debug_options=options)
    original = debugger._data_gen                       # rewind the collector before each input

    def inputs() -> Iterable[list[np.ndarray]]:
        for x in original():
            collector.rewind()
            yield x

    debugger._data_gen = inputs
    debugger.run()
    layers = [(_tensor_name(name), _op_type(debugger, name), _consumers(debugger, name))
              for name in debugger.layer_statistics]
    return collector.stats, layers


def _consumers(debugger: Any, numeric_verify_name: str) -> tuple[str, ...]:
    """Output tensors of the ops that read the verified tensor: they must be float too for it to stay float
    (an int8 consumer quantizes it again over the same calibrated range)."""
    try:
        quantized = debugger._numeric_verify_op_details[numeric_verify_name]["inputs"][0]
        interpreter = debugger._quant_interpreter
        out = []
        for op in interpreter._get_ops_details():
            if op["op_name"] in ("NumericVerify", "DEQUANTIZE", "QUANTIZE") or not len(op["outputs"]):
                continue                               # the debug model's own checks and float twins
            if quantized in list(op["inputs"]):
                name = str(interpreter._get_tensor_details(op["outputs"][0], subgraph_index=0)["name"])
                if not name.startswith("tfl."):      # converter-made tensors have no layer to keep float
                    out.append(_tensor_name(name))  # the debug model appends a digit, as to verified names
        return tuple(out)
    except (AttributeError, KeyError, IndexError, TypeError):
        return ()


def _tensor_name(numeric_verify_name: str) -> str:
    """The quantized op's output tensor named by a NumericVerify output, ``NumericVerify/<tensor><digit>[:<index>]``
    (the format the debugger documents); this is the name ``denylisted_nodes`` takes."""
    name = numeric_verify_name
    if name.startswith("NumericVerify/") and ":" in name:
        name = name.rsplit(":", 1)[0]
    name = name[len("NumericVerify/"):] if name.startswith("NumericVerify/") else name
    return name[:-1] if name and name[-1].isdigit() else name


def _op_type(debugger: Any, numeric_verify_name: str) -> str:
    """The builtin op that computes the verified tensor ("CONV_2D", ...), or "" when the debugger does not say."""
    try:
        op = debugger._numeric_verify_op_details[numeric_verify_name]
        defining = debugger._defining_op[op["inputs"][0]]
        return str(debugger._quant_interpreter._get_op_details(defining)["op_name"])
    except (AttributeError, KeyError, IndexError, TypeError):
        return ""


def calibrated_model(saved_model: str, representative: Callable[[], Iterable[np.ndarray]], cache: Path) -> bytes:
    """The model with calibration statistics and no quantization yet, made once per conversion in *cache*.

    It is what the debugger quantizes (``converter._experimental_calibrate_only``, as the debugger sets it):
    every selective build and the debug model are quantized from it, so the calibration set runs once.

    Raises:
        ConversionError: the converter failed.
    """
    if cache.exists():
        return cache.read_bytes()
    converter = _converter(saved_model, representative)
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    try:
        with native_logs_filtered(), _quiet():
            data = bytes(converter.convert())
    except Exception as exc:
        raise ConversionError(f"TFLite calibration failed: {str(exc).splitlines()[0][:300]}") from exc
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(data)
    return data


def _quantize(calibrated: bytes, *, debug: bool = False, io_dtype: str = "float32",
              kept_float: Sequence[str] = ()) -> bytes:
    """Quantize a calibrated model with TensorFlow's MLIR quantizer (what the debugger wraps)."""
    tf = import_tensorflow()
    from tensorflow.lite.python import convert as tflite_convert

    kwargs: dict[str, Any] = {"enable_numeric_verify": debug, "denylisted_nodes": list(kept_float) or None}
    if io_dtype != "float32":
        io = {"uint8": tf.uint8, "int8": tf.int8}[io_dtype]
        kwargs.update(fully_quantize=True, input_data_type=io, output_data_type=io)
    return bytes(tflite_convert.mlir_quantize(calibrated, **kwargs))


def diagnose_tflite(calibrated: bytes, representative: Callable[[], Iterable[np.ndarray]],
                    validation: np.ndarray | None, *,
                    calibration_samples: int = DEBUG_CALIBRATION_SAMPLES,
                    validation_samples: int = DEBUG_VALIDATION_SAMPLES) -> tuple[QuantDiagnosis, tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The per-layer error (calibration inputs) and coverage (validation inputs) of the int8 TFLite model.

    Args:
        calibrated: :func:`calibrated_model`.
        representative: calibration inputs (the first *calibration_samples* are measured).
        validation: (N, ...) validation inputs, or None.

    Returns:
        ``(diagnosis, layer names in graph order, layer -> what to keep float for it: itself and the ops that
        read it)``; layer names are op output tensor names, which :func:`selective_int8` takes.

    Raises:
        ConversionError: the debugger could not build or run the model.
    """
    tf = import_tensorflow()
    debugger_type, options_type = tf.lite.experimental.QuantizationDebugger, tf.lite.experimental.QuantizationDebugOptions
    calib = _first(representative(), calibration_samples)
    try:
        with native_logs_filtered(), _quiet():
            model = _quantize(calibrated, debug=True)
            calib_stats, names = _run(debugger_type, options_type, model, calib)
            valid = [] if validation is None else [[v[None].astype(np.float32)] for v in validation[:validation_samples]]
            valid_stats = _run(debugger_type, options_type, model, valid)[0] if valid else []
    except Exception as exc:
        raise ConversionError(f"the TFLite quantization debugger failed: {str(exc).splitlines()[0][:300]}") from exc
    quants, calib_map, valid_map = [], {}, {}
    consumers = {}
    for i, ((layer, op_type, readers), (q, stats)) in enumerate(zip(names, calib_stats)):
        consumers[layer] = (layer, *readers)
        named = TensorQuant(layer, layer, op_type, q.scale, q.zero_point, q.qmin, q.qmax)
        quants.append(named)
        calib_map[layer] = stats
        if i < len(valid_stats):
            valid_map[layer] = valid_stats[i][1]
    diagnosis = QuantDiagnosis(layer_errors(quants, calib_map, valid_map), {}, len(calib), len(valid) if valid_stats else 0,
                               "each int8 op against its float twin on the same inputs (TFLite QuantizationDebugger)")
    return diagnosis, tuple(q.tensor for q in quants), consumers


def selective_int8(calibrated: bytes, io_dtype: str, kept_float: Sequence[str]) -> bytes:
    """int8 TFLite with the layers named in *kept_float* (op output tensors) left in float.

    Args:
        calibrated: :func:`calibrated_model`.
        io_dtype: "uint8", "int8" (the MLIR quantizer's ``fully_quantize``) or "float32".
        kept_float: op output tensor names (``QuantizationDebugOptions.denylisted_nodes``).

    Raises:
        ConversionError: the quantizer failed.
    """
    try:
        with native_logs_filtered(), _quiet():
            return _quantize(calibrated, io_dtype=io_dtype, kept_float=kept_float)
    except Exception as exc:
        raise ConversionError(f"selective int8 TFLite conversion failed: {str(exc).splitlines()[0][:300]}") from exc
