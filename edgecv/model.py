"""``edgecv.load`` and :class:`Model`: one loaded model with preallocated buffers."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .backends import Backend, backend_for_suffix, normalize_backend
from .errors import ConfigError, IncompatibleModelError, InferenceError, ModelLoadError
from .formats import read_model_bytes
from .hashing import sha256_file
from .manifest import MANIFEST_KEY, Manifest, Preprocessing, from_tflite_metadata, read_sidecar
from .preprocess import ImageTransform, Preprocessor
from .specs import TensorSpec

__all__ = ["load", "Model"]

log = logging.getLogger("edgecv")

#: Most interpreter threads a model may be loaded with (a runtime starts them all at once).
MAX_THREADS = 256


class Model:
    """A loaded model: specs, preallocated buffers, manifest.

    ``input_buffer(i)`` is a writable array that *is* the model input (for
    TFLite models with static shapes, the interpreter's own tensor). ``invoke()``
    runs the model and returns its outputs, dequantized to float32 where the
    output is quantized, as arrays that are reused: they stay valid until the
    next call. Nothing per call is allocated in proportion to tensor sizes.

    Threads: a Model is not thread-safe. A call (``run``, ``invoke``,
    ``preprocess``) made while another thread's call is in progress raises
    :class:`InferenceError` instead of waiting or mixing the two; ``run`` copies
    in and invokes as one step. The output buffers are reused by the next call
    from any thread, so results read after another thread could have called
    again may be that thread's: the pattern is one Model (or task) per thread::

        import threading
        import edgecv
        from edgecv.tasks import Classifier

        local = threading.local()

        def classify(image):
            if not hasattr(local, "classifier"):   # loaded once per thread
                local.classifier = Classifier("model.tflite", num_threads=1)
            return local.classifier.classify(image)

    ``run(..., copy=True)`` returns arrays of its own, taken under the lock, for
    callers that share one Model behind their own lock.
    """

    def __init__(self, backend: Backend, manifest: Manifest, path: Path, target: Any = None) -> None:
        self._backend = backend
        self.manifest = manifest
        self.path = path
        self.target = target
        self._lock = threading.Lock()
        self._closed = False
        self._dequant: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] = []
        outputs = []
        for spec, raw in zip(backend.outputs, backend.output_arrays):
            q = spec.quantization
            if q is not None and raw.dtype.kind in "ui" and raw.ndim:
                shape = [1] * raw.ndim
                if not q.per_tensor:
                    shape[q.axis] = len(q.scale)
                scale = np.asarray(q.scale, np.float32).reshape(shape)
                zero = np.asarray(q.zero_point, np.float32).reshape(shape)
                buf = np.zeros(raw.shape, np.float32)
                self._dequant.append((raw, zero, scale, buf))
                outputs.append(buf)
            else:
                self._dequant.append(None)
                outputs.append(raw)
        self._outputs = tuple(outputs)
        self._preprocessors: dict[int, Preprocessor] = {}
        self._size_bytes = path.stat().st_size
        self._sha256: str | None = None
        self._notes: list[str] = []

    # -- facts -------------------------------------------------------------
    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._backend.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._backend.outputs

    @property
    def backend(self) -> str:
        """"litert" or "onnxruntime"."""
        return self._backend.name

    @property
    def format(self) -> str:
        """"tflite" or "onnx"."""
        return self._backend.format

    @property
    def runtime(self) -> str:
        """The interpreter module and version really used, e.g. "ai_edge_litert 2.3.0"."""
        return self._backend.runtime

    @property
    def accelerators(self) -> tuple[str, ...]:
        """Delegates or ONNX Runtime providers really in use."""
        return self._backend.accelerators

    @property
    def warnings(self) -> tuple[str, ...]:
        """Fallbacks that happened while loading (e.g. a provider not granted), then what the tasks
        noticed about the model's settings (:meth:`warn`)."""
        return tuple(self._backend.warnings) + tuple(self._notes)

    def warn(self, message: str) -> None:
        """Record a warning about this model (in :attr:`warnings` once, and on the ``edgecv`` log)."""
        if message not in self._notes:
            self._notes.append(message)
            log.warning("%s: %s", self.path.name, message)

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = sha256_file(self.path)
        return self._sha256

    @property
    def precision(self) -> str:
        """Best guess of the artifact precision: the manifest's, else from tensor types."""
        stated = self.manifest.quantization.get("precision") if self.manifest.quantization else None
        if stated:
            return str(stated)
        dtypes = {s.dtype for s in self.inputs}
        if dtypes & {"uint8", "int8"} and any(s.quantization is not None for s in self.inputs):
            return "int8"
        if "float16" in dtypes:
            return "fp16"
        return "fp32"

    def output_index(self, name_or_role: str | int) -> int:
        """Index of an output given its index, tensor name, or manifest role.

        Raises:
            IncompatibleModelError: no such output.
        """
        if isinstance(name_or_role, int):
            if 0 <= name_or_role < len(self.outputs):
                return name_or_role
        else:
            name = self.manifest.outputs.get(name_or_role, name_or_role)
            for spec in self.outputs:
                if spec.name == name:
                    return spec.index
        raise IncompatibleModelError(
            f"model has no output {name_or_role!r}; outputs are {[s.name for s in self.outputs]}")

    # -- buffers and running ----------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InferenceError("this model is closed; load it again")

    def _acquire(self, what: str) -> None:
        """Take the per-call lock without waiting; a call from another thread is in progress otherwise."""
        if not self._lock.acquire(blocking=False):
            raise InferenceError(f"Model.{what}() called while another thread is using this model; a Model is not "
                                 "thread-safe: load one Model per thread (see the Model docstring)")
        if self._closed:  # closed by another thread between the caller's check and now
            self._lock.release()
            raise InferenceError("this model is closed; load it again")

    def input_buffer(self, index: int = 0) -> np.ndarray:
        """The writable, preallocated array that feeds input *index*.

        Raises:
            ConfigError: no such input.
        """
        self._check_open()
        if not 0 <= index < len(self.inputs):
            raise ConfigError(f"input index {index} out of range; the model has {len(self.inputs)} input(s)")
        return self._backend.input_arrays[index]

    def raw_output(self, index: int) -> np.ndarray:
        """Output *index* as the runtime produced it (quantized outputs not dequantized)."""
        self._check_open()
        return self._backend.output_arrays[index]

    def invoke(self, *, dequantize: bool = True) -> tuple[np.ndarray, ...]:
        """Run the model on the current input buffers.

        Args:
            dequantize: False returns quantized outputs as the runtime wrote them
                (see :meth:`raw_output`; ``outputs[i].quantization`` holds their
                scale and zero point) and skips dequantizing them: a post-processor
                that reads the 8-bit tensors directly saves a float32 pass over each.

        Returns:
            The outputs (float32 for quantized outputs unless *dequantize* is False), reused between calls.

        Raises:
            InferenceError: the runtime failed, the model is closed, or another
                thread is using this model at the same moment.
        """
        self._check_open()
        self._acquire("invoke")
        try:
            if not dequantize:
                self._backend.invoke()
                return tuple(self._backend.output_arrays)
            return self._invoke_locked()
        finally:
            self._lock.release()

    def _invoke_locked(self) -> tuple[np.ndarray, ...]:
        self._backend.invoke()
        if self._backend.replaces_outputs:  # outputs of data-dependent shape are new arrays on every call
            self._outputs = tuple(buf if entry is not None else raw for buf, entry, raw in
                                  zip(self._outputs, self._dequant, self._backend.output_arrays))
        for entry in self._dequant:
            if entry is not None:
                raw, zero, scale, buf = entry
                np.subtract(raw, zero, out=buf, dtype=np.float32)
                np.multiply(buf, scale, out=buf)
        return self._outputs

    def run(self, *arrays: np.ndarray, copy: bool = False) -> tuple[np.ndarray, ...]:
        """Copy *arrays* into the inputs and invoke, as one step no other thread can interleave with.

        Args:
            arrays: one array per input, of its exact shape and dtype.
            copy: return new arrays, taken before the model can run again, instead of
                the reused output buffers (which the next call, from any thread, overwrites).

        Raises:
            ConfigError: wrong number of arrays, or an array of the wrong shape or dtype.
            InferenceError: see :meth:`invoke`.
        """
        self._check_open()
        if len(arrays) != len(self.inputs):
            raise ConfigError(f"model takes {len(self.inputs)} input(s), got {len(arrays)}")
        for spec, buf, arr in zip(self.inputs, self._backend.input_arrays, arrays):
            if not isinstance(arr, np.ndarray):
                raise ConfigError(f"input {spec.name!r} must be a numpy array, got {type(arr).__name__}")
            if arr.shape != buf.shape:
                raise ConfigError(f"input {spec.name!r} expects shape {list(buf.shape)}, got {list(arr.shape)}")
            if arr.dtype != buf.dtype:
                raise ConfigError(f"input {spec.name!r} expects dtype {buf.dtype}, got {arr.dtype}; "
                                  f"convert with arr.astype(np.{buf.dtype})")
        self._acquire("run")
        try:
            for buf, arr in zip(self._backend.input_arrays, arrays):
                np.copyto(buf, arr)
            outputs = self._invoke_locked()
            return tuple(np.array(o) for o in outputs) if copy else outputs
        finally:
            self._lock.release()

    def preprocessor(self, index: int = 0, preprocessing: Preprocessing | dict | None = None) -> Preprocessor:
        """The image preprocessor writing into input *index* (manifest settings unless overridden)."""
        self._check_open()
        options = Preprocessing.coerce(preprocessing)
        if options is None and index in self._preprocessors:
            return self._preprocessors[index]
        base = self.manifest.preprocessing
        chosen = options.merged(base) if options is not None and base is not None else (options or base)
        pre = Preprocessor(self.inputs[index], self.input_buffer(index), chosen)
        if options is None:
            self._preprocessors[index] = pre
        return pre

    def preprocess(self, image: Any, *, color: str = "bgr", index: int = 0) -> ImageTransform:
        """Write an image into input *index* with the model's preprocessing.

        Raises:
            ConfigError: the image cannot be used.
            InferenceError: the model is closed, or another thread is using it at the same moment.
        """
        pre = self.preprocessor(index)
        self._acquire("preprocess")
        try:
            return pre(image, color)
        finally:
            self._lock.release()

    # -- lifetime ------------------------------------------------------------
    def close(self) -> None:
        """Release the native session; further use raises InferenceError.

        Waits for a call in progress on another thread to finish first, so the
        native session is never freed under a running inference.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._preprocessors.clear()
                self._outputs = ()
                self._dequant = []
                self._backend.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{list(s.shape)}:{s.dtype}" for s in self.inputs)
        return f"<edgecv.Model {self.path.name} {self.runtime} inputs=[{ins}]>"

    def describe(self) -> dict[str, Any]:
        """Plain-dict facts about the model (for reports and the CLI)."""
        return {
            "path": str(self.path), "format": self.format, "backend": self.backend, "runtime": self.runtime,
            "accelerators": list(self.accelerators), "size_bytes": self.size_bytes, "precision": self.precision,
            "inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs],
            "task": self.manifest.task, "manifest_source": self.manifest.source,
        }


def _sniff_format(head: bytes) -> str | None:
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if head[:1] == b"\x08":  # ONNX ModelProto starts with ir_version (field 1, varint)
        return "onnx"
    return None


def load(path: str | os.PathLike, *, target: str | Any | None = None, backend: str | None = None,
         num_threads: int | None = None) -> Model:
    """Load a ``.tflite`` or ``.onnx`` model for inference.

    Args:
        path: model file.
        target: a target name or :class:`targets.Target`; applies its runtime
            settings (threads, Edge TPU delegate, ONNX Runtime providers).
        backend: "litert" or "onnxruntime"; default from the target, else the suffix.
        num_threads: interpreter threads; default from the target, else the runtime's.

    Raises:
        ModelLoadError: missing, unreadable, truncated or corrupt file.
        ConfigError: unknown suffix/backend, or bad arguments.
        BackendNotAvailable: the runtime (or a required delegate) is not installed.
        IncompatibleModelError: the model cannot run on this backend or target.
        UnknownTargetError: unknown target name.
    """
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file {p} does not exist")
    if p.is_dir():
        raise ModelLoadError(f"{p} is a directory; pass the .tflite or .onnx file "
                             "(SavedModel directories are converted with edgecv convert first)")
    if num_threads is not None and (not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS):
        raise ConfigError(f"num_threads must be an int from 1 to {MAX_THREADS}, got {num_threads!r}")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if not head:
        raise ModelLoadError(f"model file {p} is empty (0 bytes); the copy or export did not finish")

    tgt = None
    if target is not None:
        import targets as _targets

        tgt = _targets.get(target) if isinstance(target, str) else target
    chosen = normalize_backend(backend) if backend is not None else backend_for_suffix(p.suffix)
    if chosen is None:
        sniffed = _sniff_format(head)
        hint = f"; its content looks like {sniffed.upper()}: rename it to .{sniffed}" if sniffed else ""
        raise ConfigError(f"cannot tell the format of {p.name} from its suffix {p.suffix!r}{hint} "
                          "or pass backend='litert'|'onnxruntime'")
    if tgt is not None and backend is None:
        fmt = "tflite" if chosen == "litert" else "onnx"
        if fmt not in tuple(getattr(tgt, "formats", (fmt,))):
            raise IncompatibleModelError(
                f"target {tgt.name} runs {', '.join(tgt.formats)} models, not {fmt}; convert with "
                f"edgecv convert --target {tgt.name}")
    threads = num_threads if num_threads is not None else (getattr(tgt, "default_threads", None) if tgt else None)

    if chosen == "litert":
        from .backends.litert import LiteRTBackend
        from .formats.tflite import parse_tflite

        data = read_model_bytes(p)
        parsed = parse_tflite(data, what=f"TFLite model {p}")
        delegate = getattr(tgt, "delegate", None) if tgt is not None else None
        be: Backend = LiteRTBackend(str(p), parsed, num_threads=threads, delegate=delegate)
        embedded = from_tflite_metadata(data, parsed.metadata, [s.name for s in be.outputs])
        del data
    else:
        from .backends.onnxrt import OnnxRuntimeBackend
        from .formats.onnx import parse_onnx, resolve_external_data

        data = read_model_bytes(p)
        # structure and external-data paths are checked before ONNX Runtime opens anything
        parsed_onnx = parse_onnx(data, what=f"ONNX model {p}")
        resolve_external_data(parsed_onnx, p)
        del data
        embedded = (Manifest.from_json(parsed_onnx.metadata_props[MANIFEST_KEY], source="edgecv")
                    if MANIFEST_KEY in parsed_onnx.metadata_props else Manifest())
        providers = None
        if tgt is not None:
            import targets as _targets

            precision = embedded.quantization.get("precision") if embedded.quantization else None
            providers = _targets.providers_for(tgt, str(p), precision=precision)
            _targets.ensure_cache_dirs(providers)  # TensorRT engine cache folder keyed by model hash + precision
        be = OnnxRuntimeBackend(str(p), num_threads=threads, providers=providers)
    sidecar = read_sidecar(p)
    manifest = sidecar.merged_over(embedded) if sidecar is not None else embedded
    return Model(be, manifest, p, tgt)
