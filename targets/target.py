"""The Target and Constraints data types, and their strict construction from profile data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from edgecv.checks import check_int
from edgecv.errors import ConfigError

__all__ = ["Target", "Constraints", "FORMATS", "PRECISIONS", "IO_DTYPES", "RUNTIMES", "DELEGATES"]

FORMATS = ("tflite", "onnx")
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
IO_DTYPES = ("float32", "uint8", "int8")
RUNTIMES = ("litert", "onnxruntime")
DELEGATES = (None, "xnnpack", "edgetpu")
ONNX_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
SEVERITIES = ("error", "warning")
OP_LISTS = ("edgetpu",)
FAST_OP_LISTS = ("xnnpack",)


@dataclass(frozen=True)
class Constraints:
    """What a target cannot do, as data ``targets.check`` and the converters read.

    Attributes:
        op_allowlist: name of the operator list the accelerator runs ("edgetpu");
            ops outside it fall back to the CPU. None: no list.
        fast_ops: name of the list of ops the CPU delegate accelerates
            ("xnnpack"); ops outside it get a speed warning. None: no list.
        dynamic_shape_severity: how a dynamic input/output dimension is reported
            ("error", "warning"), None when dynamic shapes are fine.
        custom_op_severity: how a custom operator is reported.
        innermost_nonunit_dims: only this many innermost dimensions of an
            activation tensor may be larger than 1 (Edge TPU: 3). None: no limit.
        delegate_library: shared library the delegate needs (``libedgetpu.so.1``).
        edgetpu_compile: the artifact must go through ``edgetpu_compiler``.
        trt_workspace_bytes: TensorRT builder workspace limit, bytes.
    """

    op_allowlist: str | None = None
    fast_ops: str | None = None
    dynamic_shape_severity: str | None = None
    custom_op_severity: str = "warning"
    innermost_nonunit_dims: int | None = None
    delegate_library: str | None = None
    edgetpu_compile: bool = False
    trt_workspace_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Target:
    """A hardware target profile (frozen data).

    Attributes:
        name: profile name, e.g. "rpi4".
        device: human description of the board and its chips.
        arch: CPU architecture ("aarch64", "x86_64"), or "any" when the target
            attaches to whatever host it is plugged into.
        runtime: interpreter for the preferred format ("litert" | "onnxruntime").
        delegate: LiteRT delegate (None | "xnnpack" | "edgetpu"); "xnnpack" is
            LiteRT's default CPU delegate, nothing extra to load.
        onnx_providers: ONNX Runtime execution providers, in preference order.
        default_threads: interpreter threads; None means one per core.
        formats: model formats the target runs, preferred first.
        default_formats: the formats ``converters.convert`` builds for it when not told ``formats=``
            (empty in the profile: all of *formats*); the others are built on request.
        precisions: precisions it runs well, preferred first.
        io_dtype: input/output dtype of the preferred artifact.
        full_int8_only: every computing tensor must be 8-bit integer.
        static_shapes: inputs and outputs should have fixed shapes.
        constraints: the rest of what ``targets.check`` enforces.
        host_match: substrings of /proc/device-tree/model that identify the board.
        notes: short practical advice shown by ``edgecv targets``.
    """

    name: str
    device: str
    arch: str
    runtime: str
    delegate: str | None
    onnx_providers: tuple[str, ...]
    default_threads: int | None
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    io_dtype: str
    full_int8_only: bool
    static_shapes: bool
    constraints: Constraints = field(default_factory=Constraints)
    host_match: tuple[str, ...] = ()
    notes: str = ""
    default_formats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.default_formats:
            object.__setattr__(self, "default_formats", tuple(self.formats))

    @property
    def preferred_format(self) -> str:
        return self.formats[0]

    @property
    def preferred_precision(self) -> str:
        return self.precisions[0]

    def runtime_for(self, fmt: str) -> str:
        """Interpreter for a model format on this target ("litert" for tflite, "onnxruntime" for onnx).

        Raises:
            ConfigError: the target does not run that format.
        """
        if fmt not in self.formats:
            raise ConfigError(
                f"target '{self.name}' runs {' and '.join(self.formats)} models, not {fmt}; "
                f"convert the model for it with `edgecv convert --target {self.name}`"
            )
        return "litert" if fmt == "tflite" else "onnxruntime"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists for tuples, nested dict for constraints)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Constraints):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "target profile") -> Target:
        """Build a Target from profile data, checking every field.

        Raises:
            ConfigError: a missing or unknown key, or a value of the wrong kind.
        """
        return _target_from_dict(data, source)


def _fail(source: str, why: str) -> ConfigError:
    return ConfigError(f"{source}: {why}")


def _check_choice(source: str, key: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise _fail(source, f"'{key}' is {value!r}, expected one of {', '.join(repr(c) for c in choices)}")
    return value


def _check_tuple(source: str, key: str, value: Any, choices: tuple | None, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(source, f"'{key}' must be a list of strings, got {value!r}")
    if not value and not allow_empty:
        raise _fail(source, f"'{key}' must not be empty")
    if len(set(value)) != len(value):
        raise _fail(source, f"'{key}' lists a value twice: {value!r}")
    if choices is not None:
        for v in value:
            _check_choice(source, key, v, choices)
    return tuple(value)


def _check_type(source: str, key: str, value: Any, kinds: tuple) -> Any:
    # bool is an int subclass: refuse it where an int is expected and vice versa
    if isinstance(value, bool) and bool not in kinds:
        raise _fail(source, f"'{key}' must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise _fail(source, f"'{key}' must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def _constraints_from_dict(data: Any, source: str) -> Constraints:
    if not isinstance(data, Mapping):
        raise _fail(source, f"'constraints' must be an object, got {data!r}")
    known = {f.name for f in fields(Constraints)}
    unknown = set(data) - known
    if unknown:
        raise _fail(source, f"unknown constraint keys {sorted(unknown)}; known: {sorted(known)}")
    c = Constraints(**dict(data))
    if c.op_allowlist is not None:
        _check_choice(source, "op_allowlist", c.op_allowlist, OP_LISTS)
    if c.fast_ops is not None:
        _check_choice(source, "fast_ops", c.fast_ops, FAST_OP_LISTS)
    if c.dynamic_shape_severity is not None:
        _check_choice(source, "dynamic_shape_severity", c.dynamic_shape_severity, SEVERITIES)
    _check_choice(source, "custom_op_severity", c.custom_op_severity, SEVERITIES)
    for key in ("innermost_nonunit_dims", "trt_workspace_bytes"):
        if getattr(c, key) is not None:
            check_int(getattr(c, key), f"{source}: '{key}'", minimum=1, expected="a positive integer", allow_numpy=False)
    if c.delegate_library is not None:
        _check_type(source, "delegate_library", c.delegate_library, (str,))
    _check_type(source, "edgetpu_compile", c.edgetpu_compile, (bool,))
    return c


def _target_from_dict(data: Mapping[str, Any], source: str) -> Target:
    if not isinstance(data, Mapping):
        raise _fail(source, f"a target profile must be an object, got {type(data).__name__}")
    required = {f.name for f in fields(Target)} - {"constraints", "host_match", "notes", "default_formats"}
    known = {f.name for f in fields(Target)}
    missing = required - set(data)
    if missing:
        raise _fail(source, f"missing keys {sorted(missing)}")
    unknown = set(data) - known
    if unknown:
        raise _fail(source, f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
    name = _check_type(source, "name", data["name"], (str,))
    if not name or name != name.strip().lower() or " " in name:
        raise _fail(source, f"'name' must be a lower-case word like 'rpi4', got {name!r}")
    threads = data["default_threads"]
    if threads is not None:
        check_int(threads, f"{source}: 'default_threads'", minimum=1, expected="a positive integer or null",
                  allow_numpy=False)
    target = Target(
        name=name,
        device=_check_type(source, "device", data["device"], (str,)),
        arch=_check_type(source, "arch", data["arch"], (str,)),
        runtime=_check_choice(source, "runtime", data["runtime"], RUNTIMES),
        delegate=_check_choice(source, "delegate", data["delegate"], DELEGATES),
        onnx_providers=_check_tuple(source, "onnx_providers", data["onnx_providers"], ONNX_PROVIDERS, True),
        default_threads=threads,
        formats=_check_tuple(source, "formats", data["formats"], FORMATS, False),
        precisions=_check_tuple(source, "precisions", data["precisions"], PRECISIONS, False),
        io_dtype=_check_choice(source, "io_dtype", data["io_dtype"], IO_DTYPES),
        full_int8_only=_check_type(source, "full_int8_only", data["full_int8_only"], (bool,)),
        static_shapes=_check_type(source, "static_shapes", data["static_shapes"], (bool,)),
        constraints=_constraints_from_dict(data.get("constraints", {}), source),
        host_match=_check_tuple(source, "host_match", data.get("host_match", []), None, True),
        notes=_check_type(source, "notes", data.get("notes", ""), (str,)),
        default_formats=_check_tuple(source, "default_formats", data.get("default_formats", []), FORMATS, True),
    )
    _check_consistent(target, source)
    return target


def _check_consistent(t: Target, source: str) -> None:
    """Cross-field rules: what one field promises, the others must allow."""
    expected = "litert" if t.formats[0] == "tflite" else "onnxruntime"
    if t.runtime != expected:
        raise _fail(source, f"'runtime' {t.runtime!r} does not run the preferred format {t.formats[0]!r}")
    if any(f not in t.formats for f in t.default_formats):
        raise _fail(source, f"'default_formats' {list(t.default_formats)} must be formats the target runs")
    if "onnx" in t.formats and not t.onnx_providers:
        raise _fail(source, "a target that runs onnx models needs at least one entry in 'onnx_providers'")
    if t.full_int8_only and t.precisions != ("int8",):
        raise _fail(source, "a full_int8_only target must list exactly ['int8'] as precisions")
    if t.full_int8_only and t.io_dtype == "float32":
        raise _fail(source, "a full_int8_only target needs an 8-bit io_dtype")
    if t.delegate == "edgetpu" and t.constraints.op_allowlist != "edgetpu":
        raise _fail(source, "the edgetpu delegate needs constraints.op_allowlist 'edgetpu'")
    if t.constraints.edgetpu_compile and t.delegate != "edgetpu":
        raise _fail(source, "constraints.edgetpu_compile is only meaningful with the edgetpu delegate")
