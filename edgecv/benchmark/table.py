"""The human-readable benchmark table: one column per report, one row per figure."""

from __future__ import annotations

from collections.abc import Sequence

from .bench_report import BenchReport

__all__ = ["format_table", "format_host"]


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} ms" if value < 10 else f"{value:.2f} ms" if value < 100 else f"{value:.1f} ms"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    size = float(abs(value))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


def format_host(report: BenchReport) -> str:
    """One line describing the machine a report was measured on."""
    h = report.fingerprint.host
    cores = f"{h.logical_cores} cores" if h.logical_cores is not None else "cores unknown"
    if h.usable_cores is not None and h.usable_cores != h.logical_cores:
        cores += f" ({h.usable_cores} usable)"
    parts = [h.cpu_model or "CPU unknown", cores, h.arch, _bytes(h.memory_bytes) + " RAM" if h.memory_bytes else "",
             f"{h.os} {h.kernel}", h.python, f"numpy {h.numpy}"]
    if h.board_model:
        parts.insert(0, h.board_model)
    if h.cpu_governor:
        parts.append(f"governor {h.cpu_governor}")
    if h.temperature_c is not None:
        parts.append(f"{h.temperature_c:.0f} C")
    return ", ".join(p for p in parts if p)


def _rows(r: BenchReport) -> list[tuple[str, str]]:
    lat = r.latency
    fp = r.fingerprint
    target = "-" if fp.target is None else f"{fp.target} ({'this host' if fp.host_matches_target else 'not this host'})"
    rows = [
        ("runtime", fp.runtime),
        ("accelerators", ", ".join(fp.accelerators) or "-"),
        ("target", target),
        ("precision", r.model.precision),
        ("size", _bytes(r.model.size_bytes)),
        ("threads", str(r.threads) if r.threads is not None else "default"),
        ("task", r.task or "model only"),
        ("input", r.input_source),
        ("load", _ms(r.load_ms)),
        ("first inference", _ms(r.first_inference_ms)),
        (f"warm-up mean ({r.warmup_runs})", _ms(r.warmup_mean_ms)),
        ("runs", str(lat.runs)),
        ("mean", _ms(lat.mean_ms)),
        ("std", _ms(lat.std_ms)),
        ("min", _ms(lat.min_ms)),
        ("p50", _ms(lat.p50_ms)),
        ("p90", _ms(lat.p90_ms)),
        ("p99", _ms(lat.p99_ms)),
        ("max", _ms(lat.max_ms)),
        ("FPS", f"{lat.fps:.1f}"),
    ]
    if r.split is not None:
        for name in ("preprocess", "inference", "postprocess"):
            stage = getattr(r.split, name)
            rows.append((f"{name} p50 / mean", f"{_ms(stage.median_ms)} / {_ms(stage.mean_ms)}"))
    rows.append(("peak RSS", _bytes(r.memory.peak_rss_bytes)))
    rows.append(("RSS growth" + (" (all)" if r.memory.shared else ""), _bytes(r.memory.growth_bytes)))
    return rows


def format_table(reports: Sequence[BenchReport]) -> str:
    """The reports side by side (figures as rows), the host on top, warnings below.

    Raises:
        ValueError: no reports.
    """
    items = list(reports)
    if not items:
        raise ValueError("format_table needs at least one report")
    hosts = []
    for r in items:
        line = format_host(r)
        if line not in hosts:
            hosts.append(line)
    header = ["host: " + line for line in hosts]
    columns = [dict(_rows(r)) for r in items]
    names: list[str] = []
    for r in items:  # union in order; split rows sit before the memory rows
        for name, _ in _rows(r):
            if name not in names:
                names.append(name)
    memory_rows = [n for n in names if n.startswith(("peak RSS", "RSS growth"))]
    names = [n for n in names if n not in memory_rows] + memory_rows
    titles = [r.label + (f" @{r.threads}t" if r.threads is not None and len(items) > 1 else "") for r in items]
    name_w = max(len(n) for n in names)
    widths = [max(len(t), *(len(v) for v in col.values())) for t, col in zip(titles, columns)]
    lines = header + [""]
    lines.append(" " * name_w + "  " + "  ".join(t.rjust(w) for t, w in zip(titles, widths)))
    for name in names:
        cells = [col.get(name, "-").rjust(w) for col, w in zip(columns, widths)]
        lines.append(name.ljust(name_w) + "  " + "  ".join(cells))
    notes: dict[str, list[str]] = {}
    for r, title in zip(items, titles):
        for w in r.warnings:
            notes.setdefault(w, []).append(title)
    for text, where in notes.items():
        lines.append(f"note ({', '.join(where) if len(items) > 1 else where[0]}): {text}")
    return "\n".join(lines)
