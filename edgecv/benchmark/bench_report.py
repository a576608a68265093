"""BenchReport: the result of a benchmark, its JSON form and its schema version.

A report is plain data (frozen dataclasses of Python numbers and strings).
``to_json()`` writes it with ``schema_version``; ``from_json()`` reads it
back, refusing a newer schema (upgrade edgecv) or a malformed document with
:class:`ConfigError`. Several reports (a comparison, a thread sweep) are
stored as a JSON array of report objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..checks import is_int, is_number
from ..errors import ConfigError
from .host import HostInfo
from .memory import MemoryStats
from .stats import LatencyStats, StageSplit, StageStats

__all__ = ["SCHEMA_VERSION", "BenchReport", "ModelFacts", "Fingerprint", "FIGURES",
           "reports_to_json", "reports_from_json", "read_reports", "write_reports"]

SCHEMA_VERSION = 1
MAX_REPORT_BYTES = 256 * 1024 * 1024

# Figures a report can be gated on: name -> (where it lives, True when higher is worse)
FIGURES: dict[str, tuple[str, bool]] = {
    "p50_ms": ("latency", True), "p90_ms": ("latency", True), "p99_ms": ("latency", True),
    "mean_ms": ("latency", True), "min_ms": ("latency", True), "max_ms": ("latency", True),
    "std_ms": ("latency", True), "fps": ("latency", False),
    "first_inference_ms": ("report", True), "load_ms": ("report", True),
    "peak_rss_bytes": ("memory", True),
}


@dataclass(frozen=True)
class ModelFacts:
    """The artifact measured: file, size, hash, precision, tensors (``TensorSpec.to_dict()`` form)."""

    path: str
    format: str
    size_bytes: int
    sha256: str
    precision: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Fingerprint:
    """Host facts plus what the runtime really used, and whether this host is the target.

    Attributes:
        host: the machine.
        runtime: interpreter module and version ("ai_edge_litert 2.3.0", "onnxruntime 1.31.1").
        accelerators: delegates or ONNX Runtime providers really in use.
        target: target profile name the model was loaded for, or None.
        host_matches_target: None without a target; else whether the figures
            were measured on that hardware with its accelerator.
        target_mismatches: the reasons when it does not match.
    """

    host: HostInfo
    runtime: str
    accelerators: tuple[str, ...]
    target: str | None
    host_matches_target: bool | None
    target_mismatches: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class BenchReport:
    """One benchmarked artifact (at one thread setting).

    Attributes:
        schema_version: version of this document's layout (:data:`SCHEMA_VERSION`).
        label: short name of the artifact (its file name, or path when names clash).
        fingerprint: host and runtime facts.
        model: the artifact's facts.
        task: "classification", ... for a task benchmark (whole calls timed), None for the bare model.
        threads: interpreter threads requested (None: the runtime's default).
        input_source: "random" or the image file / folder used.
        load_ms: time to load the model (and build the task); None when an already loaded one was given.
        first_inference_ms: the first, cold call.
        warmup_runs: calls after the first and before measuring.
        warmup_mean_ms: their mean (None when there were none).
        latency: statistics of the measured calls.
        latencies_ms: every measured call, in order.
        split: preprocess / inference / postprocess of task calls (None for a bare model).
        memory: resident memory around the measured calls.
        wall_s: wall time of the measured phase (all artifacts together when interleaved).
        interleaved_with: labels of the artifacts run round-robin with this one (compare), else empty.
        temperature_end_c: thermal reading after the runs (start is in the fingerprint).
        created_utc: ISO 8601 time the measurement finished.
        edgecv_version: version of edgecv that measured.
        warnings: runtime fallbacks and measurement caveats.
    """

    schema_version: int
    label: str
    fingerprint: Fingerprint
    model: ModelFacts
    task: str | None
    threads: int | None
    input_source: str
    load_ms: float | None
    first_inference_ms: float
    warmup_runs: int
    warmup_mean_ms: float | None
    latency: LatencyStats
    latencies_ms: tuple[float, ...]
    split: StageSplit | None
    memory: MemoryStats
    wall_s: float
    interleaved_with: tuple[str, ...]
    temperature_end_c: float | None
    created_utc: str
    edgecv_version: str
    warnings: tuple[str, ...]

    @property
    def runs(self) -> int:
        return self.latency.runs

    def figure(self, name: str) -> float | None:
        """A named figure (see :data:`FIGURES`): "p50_ms", "fps", "peak_rss_bytes", ...

        Raises:
            ConfigError: unknown figure name.
        """
        if name not in FIGURES:
            raise ConfigError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
        where = FIGURES[name][0]
        holder = self.latency if where == "latency" else self.memory if where == "memory" else self
        value = getattr(holder, name)
        return float(value) if value is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (strict JSON: no NaN).

        Raises:
            ConfigError: a figure is NaN or infinite (a report that could not gate anything).
        """
        return _strict_dumps(self.to_dict(), indent)

    @classmethod
    def from_dict(cls, data: Any) -> BenchReport:
        """Rebuild a report from its ``to_dict()`` form.

        Raises:
            ConfigError: newer schema version, or a missing / mistyped field.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a bench report must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if not is_int(version, allow_numpy=False) or version < 1:
            raise ConfigError(f"bench report has no valid schema_version (got {version!r}); "
                              "is this a file written by edgecv bench --json?")
        if version > SCHEMA_VERSION:
            raise ConfigError(f"bench report schema version {version} is newer than this edgecv understands "
                              f"({SCHEMA_VERSION}); upgrade edgecv (pip install -U edgecv) to read it")
        return _build(cls, data, "report")

    @classmethod
    def from_json(cls, text: str | bytes) -> BenchReport:
        """Parse one report written by :meth:`to_json`.

        Raises:
            ConfigError: not JSON, several reports (use :func:`reports_from_json`), newer schema, bad fields.
        """
        data = _parse(text)
        if isinstance(data, list):
            raise ConfigError(f"this JSON holds {len(data)} reports; read it with "
                              "edgecv.benchmark.reports_from_json()")
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` to *path* atomically.

        Raises:
            ConfigError: the destination cannot be written, or exists and ``overwrite`` is False.
        """
        return atomic_write(path, self.to_json() + "\n", overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BenchReport:
        """Read one report from a JSON file.

        Raises:
            ConfigError: missing or unreadable file, or see :meth:`from_json`.
        """
        return cls.from_json(_read(path))


def reports_to_json(reports: Sequence[BenchReport], *, indent: int | None = 2) -> str:
    """One report as an object, several as an array of objects."""
    items = list(reports)
    if len(items) == 1:
        return items[0].to_json(indent=indent)
    return _strict_dumps([r.to_dict() for r in items], indent)


def _strict_dumps(data: Any, indent: int | None) -> str:
    try:
        return json.dumps(data, indent=indent, allow_nan=False)
    except ValueError as exc:  # json refuses NaN and infinity here
        raise ConfigError(f"the bench report holds a NaN or infinite figure ({exc}); the measurement failed, "
                          "run edgecv bench again") from exc


def reports_from_json(text: str | bytes) -> list[BenchReport]:
    """Parse a report object or an array of them.

    Raises:
        ConfigError: not JSON, an empty array, or a bad report.
    """
    data = _parse(text)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ConfigError("the bench report file holds an empty list; run edgecv bench --json again")
    return [BenchReport.from_dict(item) for item in items]


def read_reports(path: str | os.PathLike) -> list[BenchReport]:
    """Read a report file written by ``edgecv bench --json`` (one report or several).

    Raises:
        ConfigError: missing, unreadable or malformed file.
    """
    return reports_from_json(_read(path))


def write_reports(reports: Sequence[BenchReport], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write reports (one object, or an array) to *path* atomically.

    Raises:
        ConfigError: the destination cannot be written, or exists and ``overwrite`` is False.
    """
    return atomic_write(path, reports_to_json(reports) + "\n", overwrite=overwrite)


# -- (de)serialisation helpers ------------------------------------------------

def _plain(value: Any) -> Any:
    if is_dataclass(value) and hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _read(path: str | os.PathLike) -> str:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"bench report {p} does not exist; write one with edgecv bench --json {p}")
    if p.stat().st_size > MAX_REPORT_BYTES:
        raise ConfigError(f"bench report {p} is larger than {MAX_REPORT_BYTES} bytes; is it a report?")
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read bench report {p}: {exc}") from exc


def _parse(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bench report is not valid JSON ({exc}); pass a file written by edgecv bench --json") from exc
    except RecursionError as exc:
        raise ConfigError("bench report JSON is nested too deeply to be a report; pass a file written by "
                          "edgecv bench --json") from exc


_NESTED = {"HostInfo": HostInfo, "MemoryStats": MemoryStats, "LatencyStats": LatencyStats,
           "StageSplit": StageSplit, "StageStats": StageStats, "ModelFacts": ModelFacts,
           "Fingerprint": Fingerprint}


def _convert(value: Any, kind: str, where: str) -> Any:
    """Check *value* against a field annotation string and convert lists to tuples."""
    kind = kind.strip()
    if kind.endswith("| None"):
        return None if value is None else _convert(value, kind[: -len("| None")], where)
    if kind in _NESTED:
        return _build(_NESTED[kind], value, where)
    if kind.startswith("tuple[") and kind.endswith(", ...]"):
        if not isinstance(value, list):
            raise ConfigError(f"bench report field {where} must be a list, got {type(value).__name__}")
        inner = kind[len("tuple["): -len(", ...]")]
        return tuple(_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if kind.startswith("dict"):
        if not isinstance(value, dict):
            raise ConfigError(f"bench report field {where} must be an object, got {type(value).__name__}")
        return value
    if kind == "float":
        if not is_number(value):
            raise ConfigError(f"bench report field {where} must be a number, got {value!r}")
        return float(value)
    if kind == "int":
        if not is_int(value, allow_numpy=False):
            raise ConfigError(f"bench report field {where} must be an integer, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"bench report field {where} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"bench report field {where} must be a string, got {value!r}")
        return value
    raise TypeError(f"no converter for field type {kind!r}")  # a programming error in this module


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"bench report field {where} must be an object, got {type(data).__name__}")
    values = {}
    for f in fields(cls):
        if f.name not in data:
            raise ConfigError(f"bench report is missing {where}.{f.name}; was it written by edgecv bench --json?")
        values[f.name] = _convert(data[f.name], str(f.type), f"{where}.{f.name}")
    return cls(**values)
