"""Benchmark plots (matplotlib, an optional extra: ``pip install 'edgecv[plot]'``).

Left: the distribution of per-call latency of each report (box: quartiles,
whiskers: 1st and 99th percentile, points beyond them shown). Right: the
median time per call split into preprocess / inference / postprocess as
stacked bars (a bare-model report is all inference: its p50). Drawn with the
Agg canvas directly (no pyplot, no GUI backend) and written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..atomic import atomic_path
from ..errors import BackendNotAvailable, ConfigError
from .bench_report import BenchReport

__all__ = ["plot"]

_STAGE_COLORS = {"preprocess": "#4c72b0", "inference": "#dd8452", "postprocess": "#55a868"}


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise BackendNotAvailable("plots need matplotlib; pip install 'edgecv[plot]'") from exc
    return Figure, FigureCanvasAgg


def _names(reports: list[BenchReport]) -> list[str]:
    sweep = len({r.threads for r in reports}) > 1
    return [r.label + (f" @{r.threads}t" if sweep else "") for r in reports]


def _stages(report: BenchReport) -> tuple[float, float, float]:
    if report.split is None:
        return 0.0, report.latency.p50_ms, 0.0
    s = report.split
    return s.preprocess.median_ms, s.inference.median_ms, s.postprocess.median_ms


def plot(reports: BenchReport | Sequence[BenchReport], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Draw latency distributions and the stage split of *reports* to an image file.

    Args:
        reports: one report or several (a comparison or a thread sweep).
        path: output file; the format comes from its suffix (.png, .svg, .pdf, ...).

    Returns:
        The path written.

    Raises:
        BackendNotAvailable: matplotlib is not installed.
        ConfigError: no reports, a format matplotlib cannot write, or an unwritable destination.
    """
    items = [reports] if isinstance(reports, BenchReport) else list(reports)
    if not items:
        raise ConfigError("plot() needs at least one bench report")
    dest = Path(path)
    Figure, FigureCanvasAgg = _import_matplotlib()
    fig = Figure(figsize=(max(8.0, 2.2 * len(items) + 4.0), 4.8), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    fmt = dest.suffix.lower().lstrip(".")
    supported = canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ConfigError(f"cannot write a plot as {dest.name!r}; use one of the suffixes "
                          f"{', '.join('.' + k for k in sorted(supported))}")
    names = _names(items)
    positions = list(range(1, len(items) + 1))

    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    left.boxplot([list(r.latencies_ms) for r in items], positions=positions, whis=(1, 99), widths=0.5,
                 medianprops={"color": "#dd8452", "linewidth": 2}, flierprops={"markersize": 3})
    tilt = {"rotation": 20, "ha": "right"} if len(items) > 1 else {}
    left.set_xticks(positions, names, **tilt)
    left.set_ylabel("latency per call (ms)")
    left.set_title("latency distribution (whiskers: p1-p99)")
    left.grid(axis="y", alpha=0.3)
    for x, r in zip(positions, items):
        left.text(x + 0.3, r.latency.p50_ms, f"p50 {r.latency.p50_ms:.2f}", fontsize=8, va="center")

    bottoms = [0.0] * len(items)
    for stage_index, stage in enumerate(("preprocess", "inference", "postprocess")):
        heights = [_stages(r)[stage_index] for r in items]
        right.bar(positions, heights, bottom=bottoms, width=0.6, label=stage, color=_STAGE_COLORS[stage])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    right.set_ylim(0.0, max(bottoms) * 1.25 if max(bottoms) > 0 else 1.0)
    right.set_xticks(positions, names, **tilt)
    right.set_ylabel("median time per call (ms)")
    right.set_title("where the time goes")
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    host = items[0].fingerprint.host
    fig.suptitle(f"edgecv bench on {host.board_model or host.cpu_model or host.arch}", fontsize=10)

    with atomic_path(dest, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=fmt)
    return dest
