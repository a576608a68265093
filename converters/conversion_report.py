"""The conversion result and its validation report: dataclasses, JSON, a readable table, and composing the report.

:func:`compose_report` is the report stage of :func:`converters.convert`: it
turns the validated artifacts into a :class:`ConversionReport` with the
recommendation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import StagedArtifact
    from .context import ConversionContext

__all__ = ["Artifact", "ArtifactReport", "ConversionReport", "ConversionResult", "recommend", "compose_report",
           "REPORT_SCHEMA_VERSION"]

REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Artifact:
    """One written model file.

    Attributes:
        path: where it was written.
        format: "tflite" or "onnx".
        precision: "fp32", "fp16", "dynamic" or "int8".
        io_dtype: dtype of its inputs and outputs ("float32", "uint8", "int8").
        size_bytes: file size.
        sha256: hex digest of the file.
        edgetpu: compiled with edgetpu_compiler.
    """

    path: str
    format: str
    precision: str
    io_dtype: str
    size_bytes: int
    sha256: str
    edgetpu: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ArtifactReport:
    """Validation of one artifact against the float model.

    Attributes:
        name: file name.
        path: where it was written, or None for a reference built only to validate against.
        format, precision, io_dtype, size_bytes, sha256: as in :class:`Artifact`.
        metrics: metric name -> value (0-1 scale; cosine -1..1).
        max_abs_diff: largest absolute difference of any raw output to the float
            source model on the validation inputs (output units), None if not run.
        max_abs_diff_by_output: the same per output role.
        drop_points: primary metric of the reference minus this one, in points (x100).
        within_budget: drop_points <= the budget (None when not validated).
        reference: this is the float reference the others are compared with.
        validated: it ran through its task on the validation set.
        notes: anything the user should know (failures, skipped steps).
        collapsed: why its outputs collapsed (no detections, constant or non-finite outputs), or None; a
            collapsed artifact is never recommended.
        quant_debug: int8: per-layer error against float (calibration inputs) and coverage (validation
            inputs), as :meth:`converters.quant_stats.QuantDiagnosis.to_dict`, or None.
        kept_float: int8: the layers kept in float by the fallback loop.
        fallback: int8: each step of the fallback loop (what it changed, the metric, the drop).
        delegate: int8: what runs where on the target (Edge TPU ops, XNNPACK int8 ops), or None.
    """

    name: str
    path: str | None
    format: str
    precision: str
    io_dtype: str
    size_bytes: int
    sha256: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    max_abs_diff: float | None = None
    max_abs_diff_by_output: Mapping[str, float] = field(default_factory=dict)
    drop_points: float | None = None
    within_budget: bool | None = None
    reference: bool = False
    validated: bool = False
    notes: tuple[str, ...] = ()
    collapsed: str | None = None
    quant_debug: Mapping[str, Any] | None = None
    kept_float: tuple[str, ...] = ()
    fallback: tuple[Mapping[str, Any], ...] = ()
    delegate: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["metrics"] = dict(self.metrics)
        out["max_abs_diff_by_output"] = dict(self.max_abs_diff_by_output)
        out["notes"] = list(self.notes)
        out["kept_float"] = list(self.kept_float)
        out["fallback"] = [dict(step) for step in self.fallback]
        return out


@dataclass(frozen=True)
class ConversionReport:
    """Everything a conversion measured, and which artifact to ship.

    Attributes:
        task: canonical task name.
        target: target profile name, or None.
        primary_metric: the metric the accuracy budget applies to.
        budget_points: allowed drop of the primary metric, in points (1 = 1 %).
        validation_size: images in the validation set (0: not validated).
        calibration: ``{"method", "size", "sha256"}`` of the calibration set, or None.
        source: ``{"kind", "path", "sha256"}`` of the source model.
        artifacts: one report per artifact (the reference first).
        recommended: file name of the artifact to ship, or None.
        recommendation: why (or why none).
        edgetpu: the Edge TPU compile outcome, when the target asked for one.
        elapsed_s: wall time of the whole conversion.
        notes: conversion-wide notes.
    """

    task: str
    target: str | None
    primary_metric: str
    budget_points: float
    validation_size: int
    calibration: Mapping[str, Any] | None
    source: Mapping[str, Any]
    artifacts: tuple[ArtifactReport, ...]
    recommended: str | None
    recommendation: str
    edgetpu: Mapping[str, Any] | None = None
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = ()

    def artifact(self, name: str) -> ArtifactReport:
        """The report of the artifact called *name* (file name).

        Raises:
            KeyError: no such artifact.
        """
        for a in self.artifacts:
            if a.name == name:
                return a
        raise KeyError(f"no artifact named {name!r}; have {[a.name for a in self.artifacts]}")

    def find(self, fmt: str, precision: str) -> ArtifactReport:
        """The (first) report with this format and precision.

        Raises:
            KeyError: none.
        """
        for a in self.artifacts:
            if a.format == fmt and a.precision == precision and not (a.reference and a.path is None):
                return a
        raise KeyError(f"no {fmt} {precision} artifact in this report")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "task": self.task, "target": self.target, "primary_metric": self.primary_metric,
            "budget_points": self.budget_points, "validation_size": self.validation_size,
            "calibration": None if self.calibration is None else dict(self.calibration),
            "source": dict(self.source), "artifacts": [a.to_dict() for a in self.artifacts],
            "recommended": self.recommended, "recommendation": self.recommendation,
            "edgetpu": None if self.edgetpu is None else dict(self.edgetpu),
            "elapsed_s": self.elapsed_s, "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, default=_plain)

    def table(self) -> str:
        """A fixed-width text table: one row per artifact, metrics as percentages."""
        names = []
        for a in self.artifacts:
            for m in a.metrics:
                if m not in names:
                    names.append(m)
        header = ["artifact", "format", "precision", "I/O", "size", *names, "max|diff|", "drop", "ok"]
        rows = []
        for a in self.artifacts:
            label = a.name + (" (ref)" if a.reference else "")
            cells = [label, a.format, a.precision, a.io_dtype, _size(a.size_bytes)]
            for m in names:
                v = a.metrics.get(m)
                cells.append("-" if v is None else (f"{v:.4f}" if m == "mean_cosine" else f"{100 * v:.2f}"))
            cells.append("-" if a.max_abs_diff is None else f"{a.max_abs_diff:.3g}")
            cells.append("-" if a.drop_points is None else f"{a.drop_points:+.2f}")
            cells.append("-" if a.within_budget is None else ("yes" if a.within_budget else "NO"))
            rows.append(cells)
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines.append(f"{self.task}, primary metric {self.primary_metric} (%; mean_cosine as is), budget "
                     f"{self.budget_points:g} point(s), {self.validation_size} validation images")
        lines.append(f"recommended: {self.recommended or 'none'} ({self.recommendation})")
        lines += [f"note: {n}" for n in self.notes]
        for a in self.artifacts:
            lines += [f"note [{a.name}]: {n}" for n in a.notes]
        from .quant_report import quantization_lines

        for a in self.artifacts:
            lines += quantization_lines(a)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n} B"


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`converters.convert` returns.

    Attributes:
        artifacts: the written model files (reference-only builds are not written).
        report: the validation report.
        output_dir: folder they were written to.
        report_path: the report JSON written next to them.
    """

    artifacts: tuple[Artifact, ...]
    report: ConversionReport
    output_dir: str
    report_path: str | None = None

    def artifact(self, fmt: str, precision: str) -> Artifact:
        """The written artifact with this format and precision (the first, if several).

        Raises:
            KeyError: none.
        """
        for a in self.artifacts:
            if a.format == fmt and a.precision == precision and not a.edgetpu:
                return a
        raise KeyError(f"no {fmt} {precision} artifact was written; have "
                       f"{[(a.format, a.precision) for a in self.artifacts]}")

    def to_dict(self) -> dict[str, Any]:
        return {"artifacts": [a.to_dict() for a in self.artifacts], "report": self.report.to_dict(),
                "output_dir": self.output_dir, "report_path": self.report_path}


def recommend(reports: list[ArtifactReport], formats: tuple[str, ...], budget_points: float,
              primary: str) -> tuple[str | None, str]:
    """Smallest validated artifact within the budget (never a collapsed one), preferring earlier formats.

    Returns:
        ``(file name or None, reason)``.
    """
    candidates = [r for r in reports if r.path is not None and r.validated and r.within_budget and not r.collapsed]
    if not any(r.validated for r in reports):
        return None, "no artifact was validated (pass validation= held-out images to get a recommendation)"
    for fmt in formats:
        within = [r for r in candidates if r.format == fmt]
        if within:
            best = min(within, key=lambda r: (r.size_bytes, r.name))
            return best.name, (f"smallest {fmt} artifact whose {primary} is within {budget_points:g} point(s) of "
                               f"the float model ({best.size_bytes} bytes, drop {best.drop_points:+.2f})")
    return None, (f"no artifact kept {primary} within {budget_points:g} point(s) of the float model; ship the float "
                  "model, calibrate on more representative images, or raise the budget")


def compose_report(ctx: ConversionContext, staged: Sequence[StagedArtifact], reports: Sequence[ArtifactReport],
                   primary: str, *, started_s: float) -> ConversionReport:
    """The report of a conversion whose artifacts are staged and validated.

    The recommendation is the Edge TPU-compiled build of the recommended artifact when there is one.
    Notes: planning's, the source's, the data's, then the Edge TPU compile's.

    Args:
        ctx: the conversion.
        staged: the staged artifacts, in build order.
        reports: their reports (Edge TPU twins included), in the same order.
        primary: the metric the accuracy budget applies to.
        started_s: ``time.perf_counter()`` when the conversion began, in seconds.
    """
    options, data, source = ctx.options, ctx.data, ctx.source.model
    budget = float(options.accuracy_budget)
    recommended, why = recommend(list(reports), ctx.plans.formats, budget, primary)
    compiled = [s for s in staged if s.edgetpu is not None and s.edgetpu.compiled is not None]
    twin = next((s for s in compiled if s.name == recommended), None)
    if twin is not None:
        recommended, why = twin.edgetpu.compiled.name, why + "; Edge TPU-compiled build of it"
    edgetpu_builds = [s.edgetpu for s in staged if s.edgetpu is not None]
    notes = (*ctx.plans.notes, *ctx.source.notes, *data.notes, *(b.note for b in edgetpu_builds if b.note is not None))
    calib = data.calibration
    return ConversionReport(
        task=options.task, target=ctx.plans.target_name, primary_metric=primary, budget_points=budget,
        validation_size=len(data.validation) if data.validation is not None else 0,
        calibration=calib.summary(options.calibration_method) if calib is not None else None,
        source={"kind": source.kind, "path": str(source.path) if source.path is not None else None,
                "sha256": source.sha256, "input_shape": list(source.input_shape)},
        artifacts=tuple(reports), recommended=recommended, recommendation=why,
        edgetpu=edgetpu_builds[-1].info if edgetpu_builds else None, elapsed_s=time.perf_counter() - started_s,
        notes=notes)
