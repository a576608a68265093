"""LiteRT (TensorFlow Lite) backend.

Resolves the interpreter from ``ai_edge_litert``, then ``tflite_runtime``,
then ``tensorflow.lite``, and reports which it used. The file is parsed and
bounds-checked by edgecv before the native interpreter sees it.

For models with static shapes the input arrays are the interpreter's own
tensor memory (TFLite never overwrites graph inputs or outputs during
``Invoke``), so writing an input or reading an output copies nothing. Models
with dynamic shapes use edgecv-owned arrays that are copied in and out, since
the interpreter may move tensors while it runs.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import sys
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np

from ..errors import BackendNotAvailable, IncompatibleModelError, InferenceError, ModelLoadError
from ..formats.tflite import TfliteModel
from ..specs import QuantParams, TensorSpec, guess_layout
from . import Backend

log = logging.getLogger("edgecv")

# (module to import, distribution for the version, short name)
_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert", "ai_edge_litert"),
    ("tflite_runtime.interpreter", "tflite-runtime", "tflite_runtime"),
    ("tensorflow.lite", "tensorflow", "tensorflow.lite"),
)
EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}


def resolve_interpreter(prefer: str | None = None) -> tuple[Any, Any, str]:
    """Return ``(Interpreter class, load_delegate function, "module version")``.

    Raises:
        BackendNotAvailable: none of ai_edge_litert, tflite_runtime, tensorflow is importable.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ log noise, unless the user chose
    candidates = [c for c in _CANDIDATES if prefer is None or c[2] == prefer]
    errors = []
    for module_name, dist, short in candidates:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or a numpy ABI mismatch raising something else
            errors.append(f"{short}: {exc.__class__.__name__}: {exc}")
            continue
        if short == "tensorflow.lite":
            interpreter_cls = module.Interpreter
            load_delegate = module.experimental.load_delegate
        else:
            interpreter_cls = module.Interpreter
            load_delegate = module.load_delegate
        try:
            version = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            version = "unknown"
        return interpreter_cls, load_delegate, f"{short} {version}"
    detail = "; ".join(errors)
    raise BackendNotAvailable(
        "no TFLite runtime found; pip install 'edgecv[litert]' (or 'edgecv[tflite-runtime]' on boards with numpy<2)"
        + (f" [{detail}]" if detail else ""))


def _np_dtype(dtype: Any) -> str:
    return np.dtype(dtype).name


def _spec(detail: dict, index: int, layout_hint: bool) -> TensorSpec:
    scale = np.asarray(detail.get("quantization_parameters", {}).get("scales", ()), np.float64)
    zps = np.asarray(detail.get("quantization_parameters", {}).get("zero_points", ()), np.int64)
    quant = None
    if scale.size and float(scale.max()) > 0:
        quant = QuantParams(tuple(float(s) for s in scale), tuple(int(z) for z in zps) or (0,) * scale.size,
                            int(detail.get("quantization_parameters", {}).get("quantized_dimension", 0)))
    elif detail.get("quantization", (0.0, 0))[0]:
        s, z = detail["quantization"]
        quant = QuantParams((float(s),), (int(z),))
    shape = tuple(int(d) for d in detail["shape"])
    return TensorSpec(name=detail["name"], shape=shape, dtype=_np_dtype(detail["dtype"]), quantization=quant,
                      layout=guess_layout(shape) if layout_hint else None, index=index)


class LiteRTBackend(Backend):
    """A TFLite interpreter with stable input and output arrays."""

    name = "litert"
    format = "tflite"

    def __init__(self, path: str, parsed: TfliteModel, *, num_threads: int | None = None,
                 delegate: str | None = None, prefer: str | None = None) -> None:
        interpreter_cls, load_delegate, self.runtime = resolve_interpreter(prefer)
        warnings: list[str] = []
        delegates = []
        accelerators: list[str] = []
        has_edgetpu_op = any(op.custom and op.opcode == "edgetpu-custom-op" for op in parsed.main.operators)
        if delegate == "edgetpu":
            library = EDGETPU_LIBRARY.get(sys.platform, "libedgetpu.so.1")
            try:
                ctypes.CDLL(library)  # probe first: a failed load_delegate leaves a noisy half-built Delegate
                delegates.append(load_delegate(library))
                accelerators.append("edgetpu")
            except (ValueError, OSError, RuntimeError) as exc:
                if has_edgetpu_op:
                    raise BackendNotAvailable(
                        f"the Edge TPU delegate {library} could not be loaded ({exc}); this model was compiled for the "
                        "Edge TPU and cannot run without it: install the Edge TPU runtime (apt install libedgetpu1-std) "
                        "and plug in the Coral device") from exc
                msg = (f"Edge TPU delegate {library} not available ({exc}); running this int8 model on the CPU instead")
                log.warning(msg)
                warnings.append(msg)
        elif has_edgetpu_op:
            raise IncompatibleModelError(
                "this model was compiled for the Edge TPU (edgetpu-custom-op); load it with target='coral-usb' "
                "or 'coral-devboard' on a host with a Coral device, or use the uncompiled int8 model")
        kwargs: dict[str, Any] = {"model_path": path}
        if num_threads is not None:
            kwargs["num_threads"] = int(num_threads)
        if delegates:
            kwargs["experimental_delegates"] = delegates
        try:
            self._interp = interpreter_cls(**kwargs)
        except MemoryError as exc:
            raise ModelLoadError(_out_of_memory(path)) from exc
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"the TFLite runtime rejected {path}: {_first_line(exc)}; re-export the model") from exc
        details = self._interp.get_input_details()
        for d in details:
            sig = tuple(int(v) for v in d.get("shape_signature", d["shape"]))
            if any(v < 0 for v in sig[1:]):
                raise IncompatibleModelError(
                    f"input {d['name']!r} has dynamic dimensions {list(sig)}; edgecv needs fixed image sizes: "
                    "re-export the model with a static input shape")
            if sig and sig[0] < 0:
                self._interp.resize_tensor_input(d["index"], [1, *d["shape"][1:]])
        try:
            self._interp.allocate_tensors()
        except MemoryError as exc:
            raise ModelLoadError(_out_of_memory(path)) from exc
        except RuntimeError as exc:
            text = _first_line(exc)
            if "custom op" in text.lower() or "unresolved" in text.lower():
                raise IncompatibleModelError(f"{path} uses an operator this TFLite runtime lacks: {text}") from exc
            raise ModelLoadError(f"the TFLite runtime could not prepare {path}: {text}") from exc
        self._in_details = self._interp.get_input_details()
        self._out_details = self._interp.get_output_details()
        self.inputs = tuple(_spec(d, i, True) for i, d in enumerate(self._in_details))
        self.outputs = tuple(_spec(d, i, False) for i, d in enumerate(self._out_details))
        dynamic = any(-1 in tuple(t.shape_signature) for sg in parsed.subgraphs for t in sg.tensors)
        native = getattr(self._interp, "_interpreter", None)
        self._native_invoke = getattr(native, "Invoke", None)
        self.direct = not dynamic and self._native_invoke is not None
        if self.direct:
            try:
                self.input_arrays = tuple(self._interp.tensor(d["index"])() for d in self._in_details)
                self.output_arrays = tuple(self._interp.tensor(d["index"])() for d in self._out_details)
                if not all(isinstance(a, np.ndarray) and a.ndim for a in self.input_arrays + self.output_arrays):
                    raise ValueError("a scalar tensor maps to a numpy scalar (a copy), not a view")
            except ValueError:  # "Tensor data is null": sized only when the model runs (dynamic in effect)
                self.input_arrays = self.output_arrays = ()
                self.direct = False
        if not self.direct:
            # the bound native Invoke holds a reference to the interpreter, which its safe-to-run check
            # counts as "a reference to internal data" and then refuses interpreter.invoke()
            self._native_invoke = None
            try:
                self.input_arrays = tuple(np.zeros(s.shape, s.np_dtype) for s in self.inputs)
                self.output_arrays = tuple(np.zeros(s.shape, s.np_dtype) for s in self.outputs)
            except MemoryError as exc:
                raise ModelLoadError(_out_of_memory(path)) from exc
        self.accelerators = tuple(accelerators) or ("cpu",)
        self.warnings = tuple(warnings)
        self.metadata = dict(parsed.metadata)
        log.info("loaded %s with %s (%s)", path, self.runtime, ", ".join(self.accelerators))

    def invoke(self) -> None:
        try:
            if self.direct:
                self._native_invoke()
                return
            for d, arr in zip(self._in_details, self.input_arrays):
                self._interp.set_tensor(d["index"], arr)
            self._interp.invoke()
            for d, arr in zip(self._out_details, self.output_arrays):
                value = self._interp.tensor(d["index"])()
                if value.shape != arr.shape:
                    raise InferenceError(f"output {d['name']!r} changed shape to {value.shape}; "
                                         "edgecv needs fixed output shapes")
                np.copyto(arr, value)
                del value
        except InferenceError:
            raise
        except MemoryError as exc:
            raise InferenceError("TFLite inference ran out of memory; the model's tensors do not fit this "
                                 "device (check the model's input size)") from exc
        except (RuntimeError, ValueError) as exc:
            raise InferenceError(f"TFLite inference failed: {_first_line(exc)}") from exc

    def tensor_by_name(self, name: str) -> np.ndarray | None:
        """A copy of any tensor by name (only meaningful for tensors the runtime preserves)."""
        for d in self._interp.get_tensor_details():
            if d["name"] == name:
                return np.array(self._interp.get_tensor(d["index"]))
        return None

    def close(self) -> None:
        self.input_arrays = ()
        self.output_arrays = ()
        self._interp = None
        self._native_invoke = None


def _out_of_memory(path: str) -> str:
    return (f"not enough memory to load {path}: its tensors do not fit this device; use a smaller model or input "
            "size (a corrupt file can also claim huge tensors: re-export or re-copy it)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
