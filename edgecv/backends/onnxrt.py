"""ONNX Runtime backend.

Inputs and outputs are bound once with an IOBinding to edgecv-owned numpy
arrays, so ``invoke()`` copies nothing and allocates nothing per call for
models with static output shapes. Providers are requested in order and the
ones really granted are reported; a requested provider that was not granted
is logged as a warning, never dropped silently. ORT's own log noise is
turned down to errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np

from ..errors import BackendNotAvailable, IncompatibleModelError, InferenceError, ModelLoadError
from ..specs import TensorSpec, guess_layout
from . import Backend

log = logging.getLogger("edgecv")

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(uint16)": "uint16",
    "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool",
}


def import_onnxruntime() -> Any:
    """Import onnxruntime with its logging turned down.

    Raises:
        BackendNotAvailable: onnxruntime is not installed or fails to import.
    """
    try:
        import onnxruntime as ort
    except Exception as exc:
        raise BackendNotAvailable(f"no ONNX Runtime found; pip install 'edgecv[onnx]' ({exc})") from exc
    try:
        ort.set_default_logger_severity(3)
    except Exception:  # older builds
        pass
    return ort


def _concrete(shape: Sequence[Any], name: str, is_input: bool) -> tuple[int, ...] | None:
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            dims.append(d)
        elif i == 0:
            dims.append(1)  # dynamic batch: edgecv runs one image per call
        elif is_input:
            raise IncompatibleModelError(
                f"input {name!r} has dynamic dimension {i} ({d!r}) in shape {list(shape)}; edgecv needs fixed "
                "image sizes: re-export the model with a static input shape")
        else:
            return None
    return tuple(dims)


class OnnxRuntimeBackend(Backend):
    """An ONNX Runtime session bound to stable input and output arrays."""

    name = "onnxruntime"
    format = "onnx"

    def __init__(self, path: str, *, num_threads: int | None = None,
                 providers: Sequence[str | tuple[str, dict]] | None = None) -> None:
        ort = import_onnxruntime()
        self.runtime = f"onnxruntime {getattr(ort, '__version__', None) or _dist_version('onnxruntime')}"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
        requested = list(providers) if providers else ["CPUExecutionProvider"]
        available = set(ort.get_available_providers())
        names = [p if isinstance(p, str) else p[0] for p in requested]
        usable = [p for p, n in zip(requested, names) if n in available]
        warnings = [f"{n} was requested but this onnxruntime build does not provide it "
                    f"(available: {', '.join(sorted(available))}); falling back" for n in names if n not in available]
        if not usable:
            usable = ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(path, sess_options=options, providers=usable)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/NoSuchFile... classes
            text = _first_line(exc)
            if "NOT_IMPLEMENTED" in text or "not implemented" in text.lower():
                raise IncompatibleModelError(f"ONNX Runtime cannot run {path}: {text}") from exc
            raise ModelLoadError(f"ONNX Runtime rejected {path}: {text}; check the file is a complete ONNX model") from exc
        granted = list(self._session.get_providers())
        for n in names:
            if n in available and n not in granted:
                warnings.append(f"{n} was requested but not granted by ONNX Runtime; running on {', '.join(granted)}")
        for w in warnings:
            log.warning(w)
        self.warnings = tuple(warnings)
        self.accelerators = tuple(granted)
        try:  # names, dims and metadata cross into Python here; a corrupt file can make them undecodable
            meta = self._session.get_modelmeta()
            self.metadata = dict(meta.custom_metadata_map or {})
            self.inputs = tuple(self._spec(node, i, True) for i, node in enumerate(self._session.get_inputs()))
            outs = []
            self._dynamic_outputs: list[int] = []
            for i, node in enumerate(self._session.get_outputs()):
                spec = self._spec(node, i, False)
                if spec is None:
                    self._dynamic_outputs.append(i)
                    spec = TensorSpec(node.name, tuple(d if isinstance(d, int) else -1 for d in node.shape),
                                      _dtype(node.type, node.name), None, None, i)
                outs.append(spec)
        except UnicodeDecodeError as exc:
            raise ModelLoadError(f"{path} holds tensor names or metadata that are not UTF-8: the file is corrupt; "
                                 "re-export it") from exc
        self.outputs = tuple(outs)
        self.replaces_outputs = bool(self._dynamic_outputs)
        for spec in self.inputs + tuple(s for i, s in enumerate(self.outputs) if i not in self._dynamic_outputs):
            _check_size(spec, path)
        try:
            self.input_arrays = tuple(np.zeros(s.shape, s.np_dtype) for s in self.inputs)
            self.output_arrays = tuple(np.zeros(s.shape if i not in self._dynamic_outputs else (0,), s.np_dtype)
                                       for i, s in enumerate(self.outputs))
        except MemoryError as exc:
            raise ModelLoadError(f"not enough memory for the inputs and outputs of {path}; use a smaller model or "
                                 "input size") from exc
        self._binding = self._session.io_binding()
        for spec, arr in zip(self.inputs, self.input_arrays):
            self._binding.bind_input(spec.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        for i, (spec, arr) in enumerate(zip(self.outputs, self.output_arrays)):
            if i in self._dynamic_outputs:
                self._binding.bind_output(spec.name, "cpu")
            else:
                self._binding.bind_output(spec.name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        log.info("loaded %s with %s (%s)", path, self.runtime, ", ".join(granted))

    @staticmethod
    def _spec(node: Any, index: int, is_input: bool) -> TensorSpec | None:
        shape = _concrete(node.shape, node.name, is_input)
        if shape is None:
            return None
        return TensorSpec(node.name, shape, _dtype(node.type, node.name), None,
                          guess_layout(shape) if is_input else None, index)

    def invoke(self) -> None:
        for i in self._dynamic_outputs:  # unallocated again: ORT sizes them anew for this run's data
            self._binding.bind_output(self.outputs[i].name, "cpu")
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime inference failed: {_first_line(exc)}") from exc
        if self._dynamic_outputs:
            values = self._binding.copy_outputs_to_cpu()
            arrays = list(self.output_arrays)
            for i in self._dynamic_outputs:
                arrays[i] = values[i]
            self.output_arrays = tuple(arrays)

    def close(self) -> None:
        self._binding = None
        self._session = None
        self.input_arrays = ()
        self.output_arrays = ()


#: Largest input or output edgecv allocates a buffer for (2 GiB); bigger shapes come from corrupt files.
MAX_TENSOR_BYTES = 1 << 31


def _check_size(spec: TensorSpec, path: str) -> None:
    count = 1
    for d in spec.shape:
        count *= d
    if count * spec.np_dtype.itemsize > MAX_TENSOR_BYTES:
        raise ModelLoadError(f"{path}: tensor {spec.name!r} claims shape {list(spec.shape)} "
                             f"({count * spec.np_dtype.itemsize} bytes, over the {MAX_TENSOR_BYTES}-byte limit); "
                             "the file is corrupt or the model is far too large for an edge device")


def _dtype(ort_type: str, name: str) -> str:
    if ort_type not in _ORT_TYPES:
        raise IncompatibleModelError(f"tensor {name!r} has type {ort_type}, which edgecv does not feed or read")
    return _ORT_TYPES[ort_type]


def _dist_version(dist: str) -> str:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
