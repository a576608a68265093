"""The demo's report: per family and target, a table of artifacts with accuracy, latency and check result.

Written as Markdown (``report.md``, images referenced beside it) and as a
self-contained HTML page (``report.html``, images embedded as data URIs),
both through :mod:`edgecv.atomic`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write

__all__ = ["ArtifactRow", "FamilyReport", "write_reports", "verdict_line"]


@dataclass(frozen=True)
class ArtifactRow:
    """One converted artifact as the report shows it (None: not measured, with the reason in ``note``)."""

    family: str
    target: str
    artifact: str
    format: str
    precision: str
    size_bytes: int
    metric: str                 # e.g. "top-1", "mAP@0.5", "mIoU", "TAR@FAR=1e-3"
    value: float | None         # the artifact's metric, 0..1
    float_value: float | None   # the float model's metric on the same data
    agreement: float | None     # agreement with the float model (0..1)
    p50_ms: float | None
    p99_ms: float | None
    check: str                  # "ok", "2 warnings", "3 errors"
    recommended: bool = False
    note: str = ""

    @property
    def delta_points(self) -> float | None:
        if self.value is None or self.float_value is None:
            return None
        return 100.0 * (self.value - self.float_value)


@dataclass
class FamilyReport:
    """Everything the report says about one model family."""

    family: str
    title: str
    rows: list[ArtifactRow] = field(default_factory=list)
    plot: Path | None = None
    overlays: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _row_cells(r: ArtifactRow) -> list[str]:
    delta = r.delta_points
    return [r.target, r.artifact + (" (ship)" if r.recommended else ""), r.precision, _mb(r.size_bytes),
            f"{r.metric} {_fmt(None if r.value is None else 100 * r.value, '.1f')}",
            "n/a" if delta is None else f"{delta:+.1f} pt",
            _fmt(None if r.agreement is None else 100 * r.agreement, ".1f", "%"),
            _fmt(r.p50_ms, ".2f"), _fmt(r.p99_ms, ".2f"), r.check + (f"; {r.note}" if r.note else "")]


HEADERS = ["target", "artifact", "precision", "size", "accuracy", "vs float", "agreement", "p50 ms", "p99 ms",
           "check"]


def verdict_line(family: FamilyReport, target: str = "rpi4") -> str:
    """One line: the artifact to ship for *target*, its size, accuracy cost and latency here."""
    rows = [r for r in family.rows if r.target == target]
    if not rows:
        return f"{family.family}: no artifact for {target}"
    best = next((r for r in rows if r.recommended), rows[0])
    delta = best.delta_points
    return (f"{family.family}: {best.precision} for {target}: {_mb(best.size_bytes)}, "
            f"{'n/a' if delta is None else f'{delta:+.1f} pt'} {best.metric}, "
            f"{_fmt(best.p50_ms, '.2f', ' ms')} p50 on this host")


def _markdown(families: list[FamilyReport], header: list[str], out_dir: Path) -> str:
    lines = ["# edgecv demo report", ""] + header + [""]
    for fam in families:
        lines += [f"## {fam.title}", ""]
        lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in fam.rows]
        lines += [""] + [f"- {n}" for n in fam.notes] + ([""] if fam.notes else [])
        if fam.plot is not None:
            lines += [f"![latency of the {fam.family} artifacts]({fam.plot.relative_to(out_dir).as_posix()})", ""]
        for ov in fam.overlays:
            lines += [f"![{fam.family} on a sample image]({ov.relative_to(out_dir).as_posix()})", ""]
    return "\n".join(lines) + "\n"


def _data_uri(path: Path) -> str:
    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(families: list[FamilyReport], header: list[str]) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>edgecv demo report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:nth-child(2),th{text-align:left}"
             "img{max-width:100%}</style></head><body><h1>edgecv demo report</h1>"]
    parts += [f"<p>{esc(line)}</p>" for line in header]
    for fam in families:
        parts.append(f"<h2>{esc(fam.title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADERS) + "</tr>")
        for r in fam.rows:
            style = " style='font-weight:bold'" if r.recommended else ""
            parts.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in _row_cells(r)) + "</tr>")
        parts.append("</table>")
        parts += [f"<p>{esc(n)}</p>" for n in fam.notes]
        for img in ([fam.plot] if fam.plot is not None else []) + fam.overlays:
            parts.append(f"<p><img alt='{esc(img.name)}' src='{_data_uri(img)}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(families: list[FamilyReport], out_dir: Path, header: list[str]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into *out_dir*; returns both paths."""
    md = atomic_write(out_dir / "report.md", _markdown(families, header, out_dir), overwrite=True)   # regenerated
    page = atomic_write(out_dir / "report.html", _html(families, header), overwrite=True)
    return md, page


def rows_to_dicts(rows: list[ArtifactRow]) -> list[dict[str, Any]]:
    return [dict(r.__dict__, delta_points=r.delta_points) for r in rows]
