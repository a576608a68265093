"""The result of ``targets.check``: problems found, with JSON and text renderings and a CI exit code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Problem", "ModelSummary", "CheckReport", "SCHEMA", "EXIT_OK", "EXIT_WARNINGS", "EXIT_ERRORS"]

SCHEMA = "edgecv.check/1"

#: exit codes of a check, for CI: no problems / warnings only / at least one error.
EXIT_OK, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2

#: how many problems of one code the text rendering shows before summarising the rest.
_TEXT_LIMIT = 8


@dataclass(frozen=True)
class Problem:
    """One thing that will not work on the target (error) or will run slowly / fall back (warning).

    Attributes:
        severity: "error" (will not run there) or "warning" (runs, but slowly or on a fallback).
        code: stable machine-readable kind, e.g. "float-tensor", "unsupported-op", "dynamic-shape".
        message: what will not work, why, and what to do.
        op: the operator type involved, when there is one.
        name: the tensor or operator instance involved, when there is one.
    """

    severity: str
    code: str
    message: str
    op: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "op": self.op, "name": self.name}


@dataclass(frozen=True)
class ModelSummary:
    """What ``check`` read from the file."""

    path: str
    format: str
    precision: str
    size_bytes: int
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    op_counts: tuple[tuple[str, int], ...]
    edgetpu_compiled: bool

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "precision": self.precision,
                "size_bytes": self.size_bytes, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "op_counts": {op: n for op, n in self.op_counts}, "edgetpu_compiled": self.edgetpu_compiled}


@dataclass(frozen=True)
class CheckReport:
    """Problems a model will meet on a target, found before anyone flashes a device.

    ``ok`` is True when nothing is an error (the model will run there, warnings
    aside). ``exit_code`` for CI: 0 no problems, 1 warnings only, 2 errors.
    """

    target: str
    model: ModelSummary
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ERRORS
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    def codes(self, severity: str | None = None) -> set[str]:
        """Distinct problem codes, optionally of one severity."""
        return {p.code for p in self.problems if severity is None or p.severity == severity}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "model": self.model.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self) -> str:
        """Human rendering: a verdict line, the model, then problems grouped by code (errors first)."""
        m = self.model
        if self.errors:
            verdict = f"FAIL: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        elif self.warnings:
            verdict = f"OK with {len(self.warnings)} warning(s)"
        else:
            verdict = "OK: no problems found"
        lines = [
            f"{m.path} on {self.target}: {verdict}",
            f"  model: {m.format}, {m.precision}, {m.size_bytes / 1e6:.2f} MB, {sum(n for _, n in m.op_counts)} ops"
            + (", compiled for the Edge TPU" if m.edgetpu_compiled else ""),
        ]
        for label, specs in (("input", m.inputs), ("output", m.outputs)):
            for spec in specs:
                lines.append(f"  {label} {spec['name']}: {spec['dtype']} {spec['shape']}")
        for severity in ("error", "warning"):
            groups: dict[str, list[Problem]] = {}
            for p in self.problems:
                if p.severity == severity:
                    groups.setdefault(p.code, []).append(p)
            for code, items in groups.items():
                lines.append(f"{severity.upper()} [{code}] x{len(items)}")
                for p in items[:_TEXT_LIMIT]:
                    lines.append(f"  - {p.message}")
                if len(items) > _TEXT_LIMIT:
                    lines.append(f"  ... and {len(items) - _TEXT_LIMIT} more (see --json)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()
