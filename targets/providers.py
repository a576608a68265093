"""ONNX Runtime execution providers for a target: TensorRT options (fp16/int8, engine and timing cache), CUDA, CPU.

Option names and value spellings follow ONNX Runtime 1.17+: the Python API
takes every option value as a string and its TensorRT parser accepts only
"True"/"False" for booleans, so that is what is built here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from edgecv.errors import ConfigError, ModelLoadError
from edgecv.hashing import sha256_file

from .registry import resolve
from .target import Target

__all__ = ["providers_for", "granted_report", "trt_cache_dir", "default_cache_root", "model_sha256",
           "ensure_cache_dirs"]

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def default_cache_root() -> str:
    """Where edgecv keeps caches: $EDGECV_CACHE_DIR, else $XDG_CACHE_HOME/edgecv, else ~/.cache/edgecv."""
    explicit = os.environ.get("EDGECV_CACHE_DIR")
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.abspath(base), "edgecv")


def model_sha256(model_path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a model file (:func:`edgecv.hashing.sha256_file`).

    Raises:
        ModelLoadError: the file cannot be read.
    """
    try:
        return sha256_file(model_path)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {os.fspath(model_path)}: {exc.strerror or exc}") from exc


def _onnxruntime_version() -> str:
    from importlib import metadata

    for dist in ("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def trt_cache_dir(model_path: str | os.PathLike[str], precision: str,
                  cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Engine-cache folder for one model at one precision: ``<root>/tensorrt/<sha256[:16]>-<precision>-ort<ver>``.

    Keyed by the model's content hash (a changed model never reuses a stale
    engine), the precision and the ONNX Runtime version (engines do not carry
    across TensorRT versions). The folder is not created here.

    Raises:
        ModelLoadError: the model cannot be read.
    """
    root = os.path.abspath(os.fspath(cache_dir)) if cache_dir is not None else \
        os.path.join(default_cache_root(), "tensorrt")
    digest = model_sha256(model_path)[:16]
    return os.path.join(root, f"{digest}-{precision}-ort{_onnxruntime_version()}")


def _model_precision(model_path: str) -> str:
    from .graph import read_graph

    return read_graph(model_path).precision


def _bool(value: bool) -> str:
    return "True" if value else "False"


def providers_for(target: str | Target, model_path: str | os.PathLike[str],
                  precision: str | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, dict[str, str]]]:
    """ONNX Runtime providers with options for *target*, in preference order.

    For TensorRT: ``trt_fp16_enable`` / ``trt_int8_enable`` from the precision,
    engine and timing caches enabled in a folder keyed by model sha256 and
    precision (:func:`trt_cache_dir`), the target's workspace limit. CUDA gets
    device 0 and an arena that grows only by what is asked (CPU and GPU share
    memory on Jetson). CPU takes no options.

    Args:
        target: a target name or Target.
        model_path: the ``.onnx`` file (hashed for the cache key).
        precision: "fp32", "fp16" or "int8"; None reads the model: int8 when
            it has QuantizeLinear/DequantizeLinear nodes, else the target's
            preferred float precision (fp16 on Jetson: TensorRT builds fp16
            kernels from an fp32 model).
        cache_dir: root for engine caches; default :func:`default_cache_root`/tensorrt.

    Returns:
        ``[(provider_name, {option: value_str})]``; pass it as
        ``InferenceSession(path, providers=[name for name, _ in it], provider_options=[opts for _, opts in it])``.
        Create the ``trt_engine_cache_path`` folder before the session (:func:`ensure_cache_dirs`).

    Raises:
        UnknownTargetError: unknown target name.
        ConfigError: the target runs no ONNX models, or *precision* is not one
            TensorRT builds (fp32, fp16, int8).
        ModelLoadError: the model cannot be read.
    """
    t = resolve(target)
    if "onnx" not in t.formats or not t.onnx_providers:
        raise ConfigError(f"target '{t.name}' runs {', '.join(t.formats)} models, not ONNX; "
                          "pick an ONNX target (cpu, jetson-nano, jetson-orin)")
    path = os.fspath(model_path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"model file {path} does not exist; check the path")
    out: list[tuple[str, dict[str, str]]] = []
    for name in t.onnx_providers:
        if name == TRT:
            out.append((TRT, _tensorrt_options(t, path, precision, cache_dir)))
        elif name == CUDA:
            out.append((CUDA, {"device_id": "0", "arena_extend_strategy": "kSameAsRequested"}))
        else:
            out.append((name, {}))
    return out


def _tensorrt_options(t: Target, path: str, precision: str | None,
                      cache_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    if precision is None:
        precision = "int8" if _model_precision(path) == "int8" else \
            next((p for p in t.precisions if p in ("fp16", "fp32")), "fp32")
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"TensorRT builds fp32, fp16 or int8 engines, not {precision!r}; pick one of those")
    if precision == "int8" and "int8" not in t.precisions:
        raise ConfigError(f"target '{t.name}' has no INT8 path in TensorRT; use precision fp16 or fp32")
    cache = trt_cache_dir(path, precision, cache_dir)
    options = {
        "device_id": "0",
        # int8 engines keep fp16 enabled so layers TensorRT cannot run in int8 fall back to fp16, not fp32
        "trt_fp16_enable": _bool(precision in ("fp16", "int8")),
        "trt_int8_enable": _bool(precision == "int8"),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "True",
    }
    if t.constraints.trt_workspace_bytes is not None:
        options["trt_max_workspace_size"] = str(t.constraints.trt_workspace_bytes)
    return options


def ensure_cache_dirs(providers: Sequence[str | tuple[str, dict]]) -> None:
    """Create the TensorRT engine-cache folders named in *providers* (call it before the ORT session).

    Raises:
        ConfigError: a cache folder cannot be created (with the reason).
    """
    for entry in providers:
        if isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], dict):
            path = entry[1].get("trt_engine_cache_path")
            if path:
                try:
                    os.makedirs(path, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"cannot create the TensorRT engine cache {path}: {exc.strerror or exc}; "
                                      "pass cache_dir= a writable folder or set EDGECV_CACHE_DIR") from exc


def _provider_name(entry: str | tuple[str, dict] | Sequence) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, (tuple, list)) and entry and isinstance(entry[0], str):
        return entry[0]
    raise ConfigError(f"a provider must be a name or a (name, options) pair, got {entry!r}")


_FIXES = {
    TRT: "install an onnxruntime-gpu build with TensorRT (on Jetson the JetPack wheel from the Jetson Zoo) and make "
         "sure libnvinfer is on the library path",
    CUDA: "install onnxruntime-gpu matching your CUDA and cuDNN (not the CPU-only onnxruntime package) and check "
          "that the GPU is visible",
    CPU: "reinstall onnxruntime",
}


def granted_report(requested: Sequence[str | tuple[str, dict]], granted: Sequence[str]) -> list[str]:
    """One warning per provider that was asked for but not granted by ONNX Runtime.

    Args:
        requested: provider names (or ``(name, options)`` pairs as from :func:`providers_for`), in order.
        granted: ``session.get_providers()``.

    Returns:
        Warning strings naming the missing provider, what runs instead, and
        the fix; empty when everything asked for was granted.

    Raises:
        ConfigError: an entry of *requested* is neither a name nor a pair.
    """
    wanted = [_provider_name(r) for r in requested]
    have = list(granted)
    instead = next((g for g in have if g in wanted), have[0] if have else "nothing")
    warnings = []
    for name in wanted:
        if name in have:
            continue
        fix = _FIXES.get(name, f"install an onnxruntime build that includes {name}")
        warnings.append(f"{name} was requested but ONNX Runtime did not grant it (granted: "
                        f"{', '.join(have) or 'none'}); the model runs on {instead} instead. Fix: {fix}.")
    return warnings
