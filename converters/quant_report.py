"""The readable part of an int8 artifact's report: worst layers, coverage, the fallback loop's steps, the delegate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conversion_report import ArtifactReport

__all__ = ["quantization_lines", "layer_table", "steps_table", "WORST_LAYERS_SHOWN"]

#: Rows of the worst-layers table in the text report (the JSON has every layer).
WORST_LAYERS_SHOWN = 8


def _fmt(value: Any, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [indent + "  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += [indent + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return lines


def layer_table(debug: Mapping[str, Any], top: int = WORST_LAYERS_SHOWN) -> list[str]:
    """The worst layers: error in quantization steps and SQNR (calibration), share clipped (validation)."""
    rows = []
    for e in list(debug.get("layers", ()))[:top]:
        lo, hi = e["range"]
        seen = e.get("validation_range")
        layer = e["layer"] if len(e["layer"]) <= 48 else "..." + e["layer"][-45:]
        rows.append([layer, e["op_type"], _fmt(e.get("rmse_scale"), ".2f", "inf"),
                     _fmt(e.get("sqnr_db"), ".1f", "inf"), f"[{lo:.3g}, {hi:.3g}]",
                     "-" if not seen else f"[{seen[0]:.3g}, {seen[1]:.3g}]",
                     "-" if e.get("outside_validation") is None else f"{100 * e['outside_validation']:.3f}%",
                     _fmt(e.get("rmse_scale_validation"), ".2f")])
    header = ["layer", "op", "rmse/step", "SQNR dB", "calibrated range", "validation range", "clipped", "val rmse"]
    outputs = ", ".join(f"{k} {_fmt(v, '.1f', 'inf')} dB" for k, v in dict(debug.get("outputs_sqnr_db", {})).items())
    return [f"  outputs against float (SQNR, {debug.get('calibration_samples', 0)} calibration inputs): {outputs}",
            *_table(header, rows)]


def steps_table(steps: Sequence[Mapping[str, Any]], primary: str) -> list[str]:
    """One row per step of the fallback loop: what changed, layers in float, the metric, the drop."""
    rows = [[str(i), s.get("step", "") + (" (failed to build)" if s.get("failed") else "")
             + (" (COLLAPSED)" if s.get("collapsed") else ""), str(s.get("float_layers", 0)), _fmt(s.get("metric"), ".4f"),
             _fmt(s.get("drop_points"), "+.2f"), "yes" if s.get("within_budget") else "no"] for i, s in enumerate(steps)]
    return _table(["#", "step", "float layers", primary, "drop", "ok"], rows)


def quantization_lines(a: ArtifactReport) -> list[str]:
    """The int8 sections of the text report for one artifact (nothing for other precisions)."""
    lines: list[str] = []
    if a.collapsed:
        lines.append(f"COLLAPSED [{a.name}]: {a.collapsed} (never recommended)")
    if a.quant_debug:
        lines.append(f"worst layers [{a.name}] ({a.quant_debug.get('layer_count', 0)} quantized tensors; "
                     "rmse/step ~0.29 is rounding alone, more means clipping or a coarse range):")
        lines += layer_table(a.quant_debug)
    if a.fallback:
        lines.append(f"fallback loop [{a.name}]:")
        lines += steps_table(a.fallback, str(a.fallback[0].get("metric_name", "metric")))
        if a.kept_float:
            shown = ", ".join(a.kept_float[:12]) + (f" (+{len(a.kept_float) - 12})" if len(a.kept_float) > 12 else "")
            lines.append(f"  kept in float: {shown}")
    if a.delegate:
        lines.append(f"delegate [{a.name}]: " + "; ".join(f"{k}: {v}" for k, v in a.delegate.items()))
    return lines
