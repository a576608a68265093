"""ONNX artifacts: export from TensorFlow, float16, and int8 (QDQ static, dynamic).

* fp32: ``tf2onnx.convert.from_function`` on the batch-1 serving function,
  at a chosen opset (default 17: ONNX Runtime >= 1.13, TensorRT >= 8.6).
  ONNX sources are used as they are.
* fp16: ``onnxruntime.transformers.float16.convert_float_to_float16`` with
  ``keep_io_types=True``: float32 inputs and outputs (the runtime's
  preprocessing and decoding stay the same), float16 inside.
* int8: QDQ static quantization (``onnxruntime.quantization.quantize_static``):
  per-channel symmetric int8 weights, asymmetric int8 activations (symmetric,
  zero point 0, for TensorRT targets: its parser takes no other), calibrated
  over the preprocessed calibration set with

  - ``minmax`` (default): the observed range of every tensor;
  - ``entropy``: the range whose 128-level quantization has the least KL
    divergence from a 2048-bin histogram (TensorRT's recipe; onnxruntime's
    own default of 128/128 bins would reduce it to MinMax). It clips
    outliers on purpose, which can hurt outputs that need their full range
    (detector scores): the validation report shows it. Slow (histograms);
  - ``percentile``: the range holding 99.999 % of the values (2048 bins).

  ``quant_pre_process`` (shape inference + graph optimisation) runs first.
  Models below opset 13 are upgraded to 13 (per-channel QDQ needs it).
* dynamic: ``quantize_dynamic``: 8-bit (uint8) weights, activations quantized at run time.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.errors import ConfigError, ConversionError, UnsupportedOpError

from ._env import import_onnx, import_onnxruntime, import_tensorflow, import_tf2onnx
from ._native_logs import native_logs_filtered

__all__ = ["tf_to_onnx", "to_fp16", "quantize_int8_static", "quantize_int8_dynamic", "set_metadata",
           "prepare_for_qdq", "ONNX_PRECISIONS", "CALIBRATION_METHODS", "DEFAULT_OPSET", "opset_of"]

log = logging.getLogger("edgecv.converters")

ONNX_PRECISIONS = ("fp32", "fp16", "int8", "dynamic")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_OPSET = 17
_MIN_QDQ_OPSET = 13


def opset_of(model: Any) -> int:
    """The default-domain opset of an ONNX model."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def tf_to_onnx(serving_function: Any, input_shape: tuple[int, ...], *, opset: int = DEFAULT_OPSET) -> Any:
    """Export a batch-1 ``tf.function(image) -> {role: tensor}`` to an ONNX ModelProto.

    Outputs are named by role ("scores", "boxes", ...), the input "image".

    Raises:
        UnsupportedOpError: tf2onnx has no mapping for an op.
        ConversionError: tf2onnx failed otherwise.
    """
    tf = import_tensorflow()
    tf2onnx = import_tf2onnx()
    signature = [tf.TensorSpec(list(input_shape), tf.float32, name="image")]
    try:
        with native_logs_filtered():
            model, _ = tf2onnx.convert.from_function(serving_function, input_signature=signature,
                                                     opset=int(opset))
    except Exception as exc:
        text = str(exc)
        if "unsupported ops" in text.lower() or "not supported" in text.lower():
            raise UnsupportedOpError(f"tf2onnx cannot export the model at opset {opset}: {_first_line(exc)}") from exc
        raise ConversionError(f"tf2onnx failed to export the model: {_first_line(exc)}") from exc
    return model


def to_fp16(model: Any) -> Any:
    """Float16 copy of a float32 ModelProto with float32 inputs and outputs kept.

    Raises:
        ConversionError: the float16 converter failed.
    """
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise ConversionError("ONNX float16 conversion needs onnxruntime's transformers tools "
                              "(onnxruntime >= 1.10); pip install -U onnxruntime") from exc
    onnx = import_onnx()
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    try:
        return convert_float_to_float16(copy, keep_io_types=True)
    except Exception as exc:
        raise ConversionError(f"ONNX float16 conversion failed: {_first_line(exc)}") from exc


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed (1, ...) float32 inputs."""

    def __init__(self, input_name: str, inputs: Callable[[], Iterable[np.ndarray]]) -> None:
        from onnxruntime.quantization import CalibrationDataReader

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(inputs())

            def get_next(self) -> dict[str, np.ndarray] | None:
                x = next(self._it, None)
                return None if x is None else {input_name: np.asarray(x, np.float32)}

            def rewind(self) -> None:
                self._it = iter(inputs())

        self.reader = Reader()


def _upgrade(model: Any, opset: int) -> Any:
    onnx = import_onnx()
    if opset_of(model) >= opset:
        return model
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, opset)
    except Exception as exc:
        raise ConversionError(f"cannot upgrade the ONNX model from opset {opset_of(model)} to {opset} "
                              f"(needed for per-channel int8): {_first_line(exc)}; re-export it at opset >= {opset}") from exc
    if upgraded.ir_version < 7:
        upgraded.ir_version = 7
    onnx.checker.check_model(upgraded)
    return upgraded


def _has_sympy() -> bool:
    try:
        import sympy  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger; hold it to errors meanwhile.

    Left alone when the application has configured the root logger's level itself.
    """
    root = logging.getLogger()
    if root.level != logging.WARNING:
        yield
        return
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(logging.WARNING)


#: Histogram settings per method: entropy searches 2048 bins for the 128-level range with the least
#: KL divergence (TensorRT's recipe; onnxruntime's own default of 128/128 leaves one candidate, i.e. MinMax);
#: percentile keeps 99.999 % of the values, asymmetric like the activations it quantizes.
_HISTOGRAM_OPTIONS = {"entropy": {"num_bins": 2048, "num_quantized_bins": 128, "symmetric": False},
                      "percentile": {"num_bins": 2048, "percentile": 99.999, "symmetric": False}}


def _calibrate(model_path: Path, tmp: Path, method: Any, reader: Any, cache: Path) -> None:
    """Run onnxruntime's histogram calibrator with :data:`_HISTOGRAM_OPTIONS`; write the ranges to *cache*."""
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    name = "entropy" if "Entropy" in str(method) else "percentile"
    calibrator = create_calibrator(model_path, None, augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=method, extra_options=dict(_HISTOGRAM_OPTIONS[name]))
    calibrator.collect_data(reader)
    save_tensors_data(calibrator.compute_data(), cache)


def quantize_int8_static(model: Any, input_name: str, inputs: Callable[[], Iterable[np.ndarray]], *,
                         method: str = "minmax", per_channel: bool = True,
                         activation_type: str = "int8", symmetric_activations: bool = False,
                         pre_process: bool = True, nodes_to_exclude: Sequence[str] = (), range_overrides: Mapping[str, tuple[float, float]] | None = None,
                         work_dir: Path | None = None) -> tuple[Any, list[str]]:
    """QDQ int8 quantization calibrated on *inputs*.

    Args:
        model: float32 ModelProto.
        input_name: its image input.
        inputs: callable returning an iterable of (1, ...) float32 preprocessed inputs.
        method: "minmax", "entropy" or "percentile".
        per_channel: per-output-channel weight scales.
        activation_type: "int8" (S8S8, ONNX Runtime's default for QDQ), "uint8", or "int16" (16-bit
            activations with 8-bit weights, com.microsoft Q/DQ: ONNX Runtime's CPU kernels, not TensorRT).
        symmetric_activations: activation zero points 0 (TensorRT builds Q/DQ models only then; see
            ``targets.symmetric_activations``); else each range is mapped asymmetrically.
        pre_process: run ``quant_pre_process`` first.
        nodes_to_exclude: node names (of the pre-processed model, as in the quantized one) kept in float.
        range_overrides: tensor name -> (min, max) used instead of the calibrated range (a widened range).
        work_dir: a folder kept between calls of one conversion: the pre-processed model
            (``prepped.onnx``) and each method's calibrated ranges are made once there and reused.

    Returns:
        ``(quantized ModelProto, notes)``.

    Raises:
        ConfigError: unknown method or activation type.
        ConversionError: quantization failed.
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration_method {method!r} is not one of {CALIBRATION_METHODS}")
    if activation_type not in ("int8", "uint8", "int16"):
        raise ConfigError(f"activation_type must be 'int8', 'uint8' or 'int16', got {activation_type!r}")
    import_onnxruntime()
    onnx = import_onnx()
    with tempfile.TemporaryDirectory(prefix="edgecv-onnx-") as tmp:
        keep = Path(work_dir) if work_dir is not None else Path(tmp)
        src, notes = prepare_for_qdq(model, keep, pre_process=pre_process)
        out = Path(tmp) / "int8.onnx"
        _quantize_prepared(src, out, _Reader(input_name, inputs).reader, method=method, per_channel=per_channel,
                           activation_type=activation_type, symmetric_activations=symmetric_activations,
                           nodes_to_exclude=nodes_to_exclude,
                           range_overrides=range_overrides or {}, cache=keep / f"ranges_{method}.json", notes=notes)
        return onnx.load(str(out)), notes


def prepare_for_qdq(model: Any, folder: Path, *, pre_process: bool = True) -> tuple[Path, list[str]]:
    """The float model as the quantizer sees it (opset >= 13, ``quant_pre_process``), saved in *folder*.

    Made once: when ``folder/prepped.onnx`` exists it is reused (its notes are in ``prepped.notes``).

    Raises:
        ConversionError: the opset cannot be upgraded.
    """
    onnx = import_onnx()
    prepped, notes_file = folder / "prepped.onnx", folder / "prepped.notes"
    if prepped.exists():
        return prepped, [n for n in notes_file.read_text().splitlines() if n] if notes_file.exists() else []
    notes: list[str] = []
    source_opset = opset_of(model)
    model = _upgrade(model, _MIN_QDQ_OPSET)
    if opset_of(model) != source_opset:
        notes.append(f"opset upgraded {source_opset} -> {opset_of(model)} for per-channel QDQ")
    model, constants = _initializers_out_of_inputs(model)
    if constants:
        notes.append(f"{constants} weights listed as graph inputs made constants, so ONNX Runtime folds "
                     "BatchNormalization into the convolutions before quantizing")
    src = folder / "float.onnx"
    onnx.save(model, str(src))
    if pre_process:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        try:  # symbolic shape inference needs sympy; edgecv's inputs have fixed shapes anyway
            with quiet_root_logger():
                quant_pre_process(str(src), str(prepped), skip_symbolic_shape=not _has_sympy())
        except Exception as exc:
            notes.append(f"quant_pre_process skipped: {_first_line(exc)}")
            log.warning("onnxruntime quant_pre_process failed (%s); quantizing the model as exported",
                        _first_line(exc))
    if not prepped.exists():
        src.replace(prepped)
    named = onnx.load(str(prepped))
    if _name_nodes(named):          # nodes_to_exclude and the per-layer report name nodes
        onnx.save(named, str(prepped))
    notes_file.write_text("\n".join(notes))
    return prepped, notes


def _initializers_out_of_inputs(model: Any) -> tuple[Any, int]:
    """A copy of *model* whose initializers are no longer graph inputs, and how many were (IR >= 4 only).

    Old exporters list every weight as a graph input too. ONNX Runtime then treats the weights as
    overridable inputs: no constant folding, no Conv+BatchNormalization fusion, so the quantizer puts
    a separate int8 step after each convolution and after each BatchNormalization.
    """
    weights = {t.name for t in model.graph.initializer}
    listed = [i for i in model.graph.input if i.name in weights]
    if not listed or model.ir_version < 4:
        return model, 0
    onnx = import_onnx()
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [i for i in copy.graph.input if i.name not in weights]
    del copy.graph.input[:]
    copy.graph.input.extend(kept)
    return copy, len(listed)


def _name_nodes(model: Any) -> bool:
    """Give every unnamed node a unique name ``<op_type>_<index>``; True when one was named."""
    taken = {n.name for n in model.graph.node if n.name}
    changed = False
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name, changed = name, True
            taken.add(name)
    return changed


def _quantize_prepared(src: Path, out: Path, reader: Any, *, method: str, per_channel: bool, activation_type: str,
                       symmetric_activations: bool, nodes_to_exclude: Sequence[str], range_overrides: Mapping[str, tuple[float, float]],
                       cache: Path, notes: list[str]) -> None:
    """quantize_static on the pre-processed model, the ranges cached in *cache* (computed on the first call)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "int16": QuantType.QInt16}[activation_type]
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True}
    if activation_type == "int16":
        extra["UseQDQContribOps"] = True        # 16-bit Q/DQ: onnxruntime's com.microsoft kernels
    if range_overrides:
        extra["TensorQuantOverrides"] = {name: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
                                         for name, (lo, hi) in range_overrides.items()}
    try:
        with quiet_root_logger(), contextlib.redirect_stdout(io.StringIO()) as printed:
            if "calibration_cache_path" in inspect.signature(quantize_static).parameters:
                if method != "minmax" and not cache.exists():
                    _calibrate(src, out.parent, calibrate, reader, cache)
                kwargs["calibration_cache_path"] = str(cache)
            elif method == "entropy":
                notes.append("this onnxruntime cannot take precomputed ranges: entropy calibration ran with "
                             "its defaults (128 histogram bins)")
            quantize_static(str(src), str(out), reader, quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=act, weight_type=QuantType.QInt8,
                            calibrate_method=calibrate, nodes_to_exclude=list(nodes_to_exclude) or None,
                            extra_options=extra, **kwargs)
        if printed.getvalue().strip():
            log.debug("onnxruntime.quantization: %s", printed.getvalue().strip())
    except Exception as exc:
        raise ConversionError(f"ONNX int8 static quantization failed: {_first_line(exc)}") from exc


def quantize_int8_dynamic(model: Any) -> Any:
    """Dynamic-range 8-bit: uint8 weights, activations quantized at run time (float I/O).

    Raises:
        ConversionError: quantization failed.
    """
    import_onnxruntime()
    onnx = import_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgecv-onnx-") as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "dynamic.onnx"
        onnx.save(model, str(src))
        try:
            with quiet_root_logger():
                quantize_dynamic(str(src), str(out), weight_type=QuantType.QUInt8)
        except Exception as exc:
            raise ConversionError(f"ONNX dynamic quantization failed: {_first_line(exc)}") from exc
        return onnx.load(str(out))


def set_metadata(model: Any, key: str, value: str) -> Any:
    """A copy of *model* with ``metadata_props[key] = value`` (replacing an old entry)."""
    onnx = import_onnx()
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [(p.key, p.value) for p in copy.metadata_props if p.key != key]
    del copy.metadata_props[:]
    for k, v in kept:
        copy.metadata_props.add(key=k, value=v)
    copy.metadata_props.add(key=key, value=value)
    return copy


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else exc.__class__.__name__
