"""The int8 stage after validation: per-layer diagnosis, ``calibration_method="auto"`` and the float fallback loop.

For every int8 artifact (:func:`improve_int8`):

1. diagnose it: the error each quantized tensor adds alone, on calibration inputs, and the share of validation
   values outside its calibrated range (:mod:`converters.quant_debug_onnx`, :mod:`converters.quant_debug_tflite`);
2. ``calibration_method="auto"`` (ONNX): build and validate the other methods too and keep the best one;
3. when it misses the accuracy budget (or collapsed), the loop: first the exact, cheap remedies: clipped
   tensors (ONNX: their range widened on the clipped side, from calibration ranges only), and the
   post-processing tail after the last convolutions in float (every convolution stays int8); then layers kept in
   float, worst first (on Edge TPU targets a contiguous tail from the outputs, so the graph is split once), in
   growing batches, each step built and validated with the task's metric, until the budget holds or
   ``max_float_share`` of the quantized layers would be float; then, where the target runs it (not the Edge
   TPU, not TensorRT), 16-bit activations with 8-bit weights, its latency against plain int8 measured on
   this host (``latency_ratio``).

The artifact that ships is the first step within the budget, else the best step; it replaces the plain build
under the same name, so it competes for the recommendation like any other. Ranges are never taken from
validation data: validation only tells which tensors clip and whether a step helps.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from edgecv.errors import EdgeCVError

from .build import StagedArtifact, build_artifact, compile_staged_for_edgetpu, onnx_method
from .context import ConversionContext
from .conversion_report import ArtifactReport
from .evaluation import ValidationBaseline, edgetpu_report, validate_artifact
from .quant_choice import QuantChoice
from .quant_diagnose import Diagnosis, clipping_note, diagnose, widen_clipped

__all__ = ["improve_int8", "float_batches", "AUTO_METHODS"]

log = logging.getLogger("edgecv.converters")

#: Methods ``calibration_method="auto"`` tries for ONNX int8, in order.
AUTO_METHODS = ("minmax", "percentile", "entropy")


def float_batches(ranked: Sequence[str], cap: int) -> list[tuple[str, ...]]:
    """Cumulative sets of layers to keep in float: 1, 2, 4, 8, ... of *ranked*, never more than *cap*."""
    out, size = [], 1
    while size <= min(cap, len(ranked)):
        out.append(tuple(ranked[:size]))
        if size == min(cap, len(ranked)):
            break
        size = min(size * 2, cap, len(ranked))
    return out


def _metric(report: ArtifactReport, primary: str) -> float:
    value = report.metrics.get(primary)
    return float("-inf") if value is None or report.collapsed else float(value)


def _step(label: str, report: ArtifactReport, primary: str, quant: QuantChoice, float_layers: int,
          seconds: float) -> dict[str, Any]:
    return {"step": label, "metric_name": primary, "metric": report.metrics.get(primary),
            "drop_points": report.drop_points, "within_budget": bool(report.within_budget),
            "collapsed": report.collapsed, "float_layers": float_layers, "seconds": round(seconds, 3),
            **quant.to_dict()}


class _Loop:
    """Builds and validates the steps of one artifact's loop; remembers them and the best."""

    def __init__(self, ctx: ConversionContext, baseline: ValidationBaseline, staged: StagedArtifact,
                 report: ArtifactReport) -> None:
        self.ctx, self.baseline, self.primary = ctx, baseline, baseline.primary_metric
        self.original = staged
        self.best = (staged, report)
        self.steps: list[dict[str, Any]] = []
        self.count = 0

    def record(self, label: str, staged: StagedArtifact, report: ArtifactReport, float_layers: int,
               seconds: float) -> None:
        self.steps.append(_step(label, report, self.primary, staged.quant or QuantChoice(), float_layers, seconds))
        if _metric(report, self.primary) > _metric(self.best[1], self.primary) or (
                report.within_budget and not self.best[1].within_budget and not report.collapsed):
            self.best = (staged, report)

    def done(self) -> bool:
        return bool(self.best[1].within_budget) and not self.best[1].collapsed

    def try_choice(self, label: str, quant: QuantChoice, float_layers: int) -> ArtifactReport | None:
        """Build and validate one step; a step that fails to build is recorded as failed (None)."""
        started = time.perf_counter()
        self.count += 1
        dest = self.ctx.stage / f".step{self.count}-{self.original.name}"
        try:
            staged = build_artifact(self.ctx, self.original.plan, dest=dest, quant=quant)
        except EdgeCVError as exc:
            self.steps.append({"step": label, "metric_name": self.primary, "float_layers": float_layers,
                               "failed": f"{type(exc).__name__}: {str(exc)[:300]}", **quant.to_dict()})
            return None
        report = validate_artifact(self.ctx, self.baseline, staged)
        self.record(label, staged, report, float_layers, time.perf_counter() - started)
        log.info("int8 fallback %s: %s %s", label, self.primary, report.metrics.get(self.primary))
        return report


def _auto_methods(loop: _Loop) -> None:
    for method in AUTO_METHODS[1:]:
        loop.try_choice(f"calibration {method}", QuantChoice(method=method), 0)


def _float_nodes(base: QuantChoice, diagnosis: Diagnosis, layers: Sequence[str]) -> tuple[str, ...]:
    """What the quantizer keeps float for *layers* on top of what *base* keeps already."""
    return tuple(dict.fromkeys((*base.kept_float, *diagnosis.nodes_to_keep_float(layers))))


def _within_cap(base: QuantChoice, diagnosis: Diagnosis, layers: Sequence[str], cap: int) -> tuple[str, ...]:
    """The longest prefix of *layers* whose float nodes stay within *cap*."""
    keep = len(layers)
    while keep and len(_float_nodes(base, diagnosis, layers[:keep])) > cap:
        keep -= 1
    return tuple(layers[:keep])


def _float_step(loop: _Loop, base: QuantChoice, diagnosis: Diagnosis, layers: Sequence[str], edgetpu: bool) -> None:
    nodes = _float_nodes(base, diagnosis, layers)
    label = f"tail of {len(layers)} layer(s) in float" if edgetpu else f"{len(layers)} worst layer(s) in float"
    loop.try_choice(label + (" (and the post-processing tail)" if base.kept_float else ""),
                    replace(base, kept_float=nodes), len(nodes))


def _keeps(loop: _Loop, report: ArtifactReport | None, before: float, *, strictly: bool = False) -> bool:
    """Whether a step's choice is worth building on: the best so far, and better than *before* (or as good)."""
    if report is None:
        return False
    metric = _metric(report, loop.primary)
    return metric >= _metric(loop.best[1], loop.primary) and (metric > before if strictly else metric >= before)


def _run_loop(loop: _Loop, diagnosis: Diagnosis) -> None:
    ctx = loop.ctx
    base = loop.best[0].quant or QuantChoice(method=onnx_method(ctx, QuantChoice()) if
                                             loop.original.plan.format == "onnx" else None)
    widened = widen_clipped(diagnosis) if loop.original.plan.format == "onnx" else ()
    if widened and not loop.done():
        choice = replace(base, widened=widened)
        before = _metric(loop.best[1], loop.primary)
        if _keeps(loop, loop.try_choice(f"widen {len(widened)} clipped range(s)", choice, 0), before):
            base = choice
    cap = int(ctx.options.max_float_share * diagnosis.quantized_layer_count)
    if diagnosis.tail and len(diagnosis.tail) <= cap and not loop.done():
        choice = replace(base, kept_float=diagnosis.tail)
        label = f"post-processing tail in float ({len(diagnosis.tail)} ops after the last convolutions)"
        before = _metric(loop.best[1], loop.primary)     # float ops cost something: kept only when they help
        if _keeps(loop, loop.try_choice(label, choice, len(diagnosis.tail)), before, strictly=True):
            base = choice
    edgetpu = loop.original.plan.edgetpu_compile
    ranked = diagnosis.ranked_layers(tail=edgetpu)
    tried = 0
    for layers in float_batches(ranked, cap):
        if loop.done():
            break
        nodes = _float_nodes(base, diagnosis, layers)
        if len(nodes) > cap:                  # the last step: as many of them as the cap allows, then stop
            layers = _within_cap(base, diagnosis, layers, cap)
            if len(layers) > tried:
                _float_step(loop, base, diagnosis, layers, edgetpu)
            loop.steps.append({"step": f"stopped: {len(nodes)} float layers would pass the cap of {cap} "
                                       f"(max_float_share={ctx.options.max_float_share:g})",
                               "metric_name": loop.primary, "float_layers": len(nodes)})
            break
        _float_step(loop, base, diagnosis, layers, edgetpu)
        tried = len(layers)
    if not loop.done():
        _int16_candidate(loop, base)


def _int16_candidate(loop: _Loop, base: QuantChoice) -> None:
    """16-bit activations with 8-bit weights, where the target runs it, with its latency against plain int8."""
    import targets

    from .host_latency import median_invoke_ms

    plan, name = loop.original.plan, loop.ctx.plans.target_name
    if plan.edgetpu_compile or (name is not None and not targets.supports_int16_activations(name, plan.format)):
        return
    plain_ms = median_invoke_ms(loop.original.path)
    loop.try_choice("16-bit activations, 8-bit weights", replace(base, kept_float=(), activations="int16"), 0)
    built = loop.ctx.stage / f".step{loop.count}-{loop.original.name}"
    step_ms = median_invoke_ms(built) if built.exists() else None
    loop.steps[-1].update({"latency_ms_host": step_ms, "int8_latency_ms_host": plain_ms,
                           "latency_ratio": round(step_ms / plain_ms, 3) if step_ms and plain_ms else None})


def _improve_one(ctx: ConversionContext, baseline: ValidationBaseline, staged: StagedArtifact,
                 report: ArtifactReport) -> tuple[StagedArtifact, ArtifactReport]:
    started = time.perf_counter()
    diagnosis, notes = diagnose(ctx, staged)
    diagnosis_s = time.perf_counter() - started
    loop = _Loop(ctx, baseline, staged, report)
    primary = baseline.primary_metric
    if report.validated:
        loop.steps.append(_step("plain int8 (" + (onnx_method(ctx, QuantChoice()) if staged.plan.format == "onnx"
                                                   else "minmax") + ")", report, primary, QuantChoice(), 0, 0.0))
        if ctx.options.calibration_method == "auto":
            if staged.plan.format == "onnx":
                _auto_methods(loop)
            else:
                notes.append("calibration_method='auto': the TFLite converter calibrates min/max only")
    missed = report.validated and not loop.done()
    if missed and diagnosis is not None:
        notes += clipping_note(diagnosis)
    if missed and diagnosis is not None and ctx.options.float_fallback:
        _run_loop(loop, diagnosis)
    elif missed and not ctx.options.float_fallback:
        notes.append("float fallback is off (float_fallback=False): the layers above stay int8")
    best_staged, best = loop.best
    if best_staged is not staged:
        os.replace(best_staged.path, staged.path)        # the fixed build ships under the planned name
        best_staged = replace(best_staged, path=staged.path, name=staged.name)
        best = replace(best, name=report.name, path=report.path)
    if len(loop.steps) > 1:
        notes.append(f"int8 fallback loop: {len(loop.steps) - 1} step(s) in {time.perf_counter() - started:.1f} s; "
                     + ("kept " + ", ".join(best_staged.quant.kept_float) if best_staged.quant and
                        best_staged.quant.kept_float else "no layer kept in float"))
    delegate = diagnosis.delegate(ctx, best_staged) if diagnosis is not None else None
    best = replace(best, quant_debug={**diagnosis.to_dict(), "seconds": round(diagnosis_s, 3)} if diagnosis else None,
                   fallback=tuple(loop.steps) if len(loop.steps) > 1 else (), delegate=delegate,
                   notes=(*best.notes, *notes), kept_float=best_staged.quant.kept_float if best_staged.quant else ())
    return best_staged, best


def improve_int8(ctx: ConversionContext, staged: Sequence[StagedArtifact], reports: Sequence[ArtifactReport],
                 baseline: ValidationBaseline) -> tuple[tuple[StagedArtifact, ...], tuple[ArtifactReport, ...]]:
    """Diagnose every int8 artifact and run the fallback loop on those that miss the budget (see module doc).

    Returns:
        The staged artifacts and their reports, in the same order, fixed builds in place of the plain ones.

    A step that fails to build is recorded in the report (``failed``), not raised; a diagnosis that cannot be
    made is a note.

    Raises:
        ConfigError: ground truth that does not fit the task's metrics (from :func:`validate_artifact`).
    """
    out_staged, out_reports = list(staged), list(reports)
    for i, artifact in enumerate(staged):
        if artifact.plan.precision != "int8":
            continue
        at = next(j for j, r in enumerate(out_reports) if r.name == artifact.name)
        fixed, report = _improve_one(ctx, baseline, artifact, out_reports[at])
        out_reports[at] = report
        if fixed.quant is not None and artifact.plan.edgetpu_compile:
            if artifact.edgetpu is not None and artifact.edgetpu.compiled is not None:
                artifact.edgetpu.compiled.unlink(missing_ok=True)
            fixed = compile_staged_for_edgetpu(ctx, replace(fixed, edgetpu=None))
            twin = edgetpu_report(ctx, fixed)
            has_twin = at + 1 < len(out_reports) and out_reports[at + 1].name.endswith("_edgetpu.tflite")
            if has_twin:
                del out_reports[at + 1]
            if twin is not None:
                out_reports.insert(at + 1, twin)
        out_staged[i] = fixed
    return tuple(out_staged), tuple(out_reports)
