"""The validate stage: each staged artifact through its edgecv task on the validation set, scored against the float model.

First the baseline (:func:`validation_baseline`): the float source's raw
outputs on the validation inputs, and the float reference artifact's task
outputs and metrics. Then each artifact (:func:`validate_artifact`, callable
again for a rebuilt artifact): its task metrics, the drop of the primary
metric from the reference, and the largest raw output difference to the
float source. Without a validation set every artifact is reported
unvalidated. Running and scoring are in :mod:`converters.validate`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgecv.errors import ConversionError
from edgecv.hashing import sha256_file
from edgecv.task_registry import get_task

from .build import StagedArtifact
from .collapse import collapse_reason
from .context import ConversionContext
from .conversion_report import ArtifactReport
from .validate import TaskOutputs, primary_metric, safe_run, score

__all__ = ["ValidationBaseline", "ArtifactRun", "validation_baseline", "run_validation", "validate_artifact",
           "validate_artifacts", "edgetpu_report", "output_differences"]

log = logging.getLogger("edgecv.converters")


@dataclass(frozen=True)
class ArtifactRun:
    """One artifact run through its task on the validation set.

    Attributes:
        outputs: what it produced, or None (not run: no validation set, or it failed to load or run).
        notes: its build notes, then why it failed, if it did.
    """

    outputs: TaskOutputs | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationBaseline:
    """What every artifact is compared with.

    Attributes:
        primary_metric: the metric the accuracy budget applies to.
        source_outputs: role -> the float source's raw outputs on the validation inputs, or None.
        reference_run: the float reference artifact run through its task, or None (nothing validated).
        reference_metrics: the reference's own metrics (agreement with itself, accuracy on the ground truth).
    """

    primary_metric: str
    source_outputs: Mapping[str, np.ndarray] | None = None
    reference_run: ArtifactRun | None = None
    reference_metrics: Mapping[str, float] | None = None

    @property
    def reference(self) -> TaskOutputs | None:
        """The reference's task outputs, or None."""
        return self.reference_run.outputs if self.reference_run is not None else None


def run_validation(ctx: ConversionContext, staged: StagedArtifact) -> ArtifactRun:
    """Run *staged* through its task on the validation set; a load or run failure becomes a note."""
    vs = ctx.data.validation
    if vs is None:
        return ArtifactRun(None, staged.notes)
    log.info("validating %s on %d images", staged.name, len(vs))
    outputs, failure = safe_run(ctx.task, staged.path, vs, get_task(ctx.task).export_roles)
    return ArtifactRun(outputs, staged.notes + (() if failure is None else ("validation failed: " + failure,)))


def validation_baseline(ctx: ConversionContext, reference: StagedArtifact | None) -> ValidationBaseline:
    """The float source's outputs on the validation inputs, then the reference's task outputs and metrics.

    Raises:
        ConversionError: the float source failed to run on the validation inputs, or there is a
            validation set but the float reference failed to run through its task.
    """
    data = ctx.data
    primary = primary_metric(ctx.task, data.validation)
    if data.validation is None:
        return ValidationBaseline(primary)
    source_outputs = ctx.source.model.predict(data.validation_inputs, ctx.source.roles, ctx.manifest.transform)
    run = run_validation(ctx, reference) if reference is not None else None
    if run is None or run.outputs is None:
        raise ConversionError(f"the float reference {ctx.plans.names[ctx.plans.reference]} failed to run through "
                              f"the {ctx.task} task: {'; '.join(run.notes if run is not None else ())}")
    metrics = score(ctx.task, run.outputs, run.outputs, data.validation, head=ctx.manifest.head,
                    num_classes=data.num_classes)
    return ValidationBaseline(primary, source_outputs, run, metrics)


def validate_artifact(ctx: ConversionContext, baseline: ValidationBaseline, staged: StagedArtifact,
                      run: ArtifactRun | None = None) -> ArtifactReport:
    """Score *staged* against *baseline* (running it first unless *run* is given).

    Raises:
        ConfigError: ground truth that does not fit the task's metrics.
    """
    run = run if run is not None else run_validation(ctx, staged)
    plan, notes = staged.plan, list(run.notes)
    metrics: dict[str, float] = {}
    diffs: dict[str, float] = {}
    drop = within = collapsed = None
    if run.outputs is not None and baseline.reference is not None:
        if run is baseline.reference_run:             # the reference itself: scored once, by the baseline
            metrics = dict(baseline.reference_metrics or {})
        else:
            metrics = score(ctx.task, run.outputs, baseline.reference, ctx.data.validation, head=ctx.manifest.head,
                            num_classes=ctx.data.num_classes)
        diffs, diff_notes = output_differences(run.outputs.raw, baseline.source_outputs or {})
        notes += diff_notes
        if run is not baseline.reference_run:
            threshold = getattr(ctx.manifest.head, "score_threshold", None)
            collapsed = collapse_reason(ctx.task, run.outputs, baseline.reference,
                                        score_threshold=0.5 if threshold is None else threshold)
        primary, ref_metrics = baseline.primary_metric, baseline.reference_metrics or {}
        if primary in metrics and primary in ref_metrics:
            drop = 100.0 * (ref_metrics[primary] - metrics[primary])
            within = drop <= ctx.options.accuracy_budget + 1e-9
    destination = ctx.plans.destinations.get(plan)
    return ArtifactReport(
        name=staged.name, path=str(destination) if plan.publish else None, format=plan.format,
        precision=plan.precision, io_dtype=plan.io_dtype, size_bytes=staged.path.stat().st_size,
        sha256=sha256_file(staged.path), metrics=metrics, max_abs_diff=max(diffs.values()) if diffs else None,
        max_abs_diff_by_output=diffs, drop_points=drop, within_budget=within,
        reference=plan == ctx.plans.reference, validated=run.outputs is not None, notes=tuple(notes),
        collapsed=collapsed, kept_float=staged.quant.kept_float if staged.quant is not None else ())


def edgetpu_report(ctx: ConversionContext, staged: StagedArtifact) -> ArtifactReport | None:
    """The report of *staged*'s Edge TPU-compiled twin (not run here: its accuracy is that of *staged*), or None."""
    if staged.edgetpu is None or staged.edgetpu.compiled is None:
        return None
    compiled = staged.edgetpu.compiled
    return ArtifactReport(
        name=compiled.name, path=str(ctx.plans.output_dir / compiled.name), format="tflite", precision="int8",
        io_dtype=staged.plan.io_dtype, size_bytes=compiled.stat().st_size, sha256=sha256_file(compiled),
        notes=(f"compiled for the Edge TPU from {staged.name}; not run here (needs an Edge TPU): "
               f"its accuracy is that of {staged.name}",))


def validate_artifacts(ctx: ConversionContext,
                       staged: tuple[StagedArtifact, ...]) -> tuple[ValidationBaseline, tuple[ArtifactReport, ...]]:
    """The baseline, then one report per artifact in build order, each Edge TPU twin right after its source.

    Raises:
        ConversionError: the float reference or the float source failed to run on the validation set.
        ConfigError: ground truth that does not fit the task's metrics.
    """
    reference = next((s for s in staged if s.plan == ctx.plans.reference), None)
    baseline = validation_baseline(ctx, reference)
    reports: list[ArtifactReport] = []
    for artifact in staged:
        run = baseline.reference_run if artifact is reference else None
        reports.append(validate_artifact(ctx, baseline, artifact, run))
        twin = edgetpu_report(ctx, artifact)
        if twin is not None:
            reports.append(twin)
    return baseline, tuple(reports)


def output_differences(raw: Mapping[str, np.ndarray],
                       reference: Mapping[str, np.ndarray]) -> tuple[dict[str, float], list[str]]:
    """Largest absolute difference per output role between *raw* and *reference* (output units), and notes.

    Roles missing from *raw* are skipped; roles whose sizes differ are noted, not compared.
    """
    out: dict[str, float] = {}
    notes: list[str] = []
    for role, ref in reference.items():
        got = raw.get(role)
        if got is None:
            continue
        if got.size != ref.size:
            notes.append(f"output {role!r} has {got.size} values but the float source {ref.size}; not compared")
            continue
        out[role] = float(np.max(np.abs(got.reshape(-1).astype(np.float64) - ref.reshape(-1).astype(np.float64))))
    return out, notes
