"""Resident memory of this process: current RSS and its high-water mark.

Read from ``/proc/self/status`` (``VmRSS``, ``VmHWM``) where it exists (Linux,
including Raspberry Pi OS and Jetson L4T); elsewhere the peak comes from
``resource.getrusage`` and the current RSS is unknown.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["RssSample", "MemoryStats", "read_rss", "memory_stats", "parse_proc_status"]

PROC_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class RssSample:
    """One reading: ``rss_bytes`` (None when unknown), ``peak_bytes``, and where they came from."""

    rss_bytes: int | None
    peak_bytes: int
    source: str  # "proc" or "getrusage"


@dataclass(frozen=True)
class MemoryStats:
    """Memory during the measured runs, bytes.

    Attributes:
        source: "proc" (/proc/self/status) or "getrusage".
        peak_rss_bytes: the process's resident high-water mark at the end of the runs
            (everything the process ever held, the interpreter and other libraries included).
        rss_start_bytes: resident memory before the measured runs (None with getrusage).
        rss_end_bytes: resident memory after them (None with getrusage).
        growth_bytes: ``rss_end - rss_start`` (with getrusage: growth of the peak);
            a steady hot path keeps this near 0.
        shared: True when several artifacts ran interleaved in this process (compare),
            so the figures cover all of them together.
    """

    source: str
    peak_rss_bytes: int
    rss_start_bytes: int | None
    rss_end_bytes: int | None
    growth_bytes: int
    shared: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_proc_status(text: str) -> tuple[int | None, int | None]:
    """``(VmRSS, VmHWM)`` in bytes from the text of /proc/<pid>/status (None where absent)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                unit = parts[1].lower() if len(parts) > 1 else "kb"
                factor = {"kb": 1024, "mb": 1024 * 1024, "b": 1}.get(unit, 1024)
                values[key] = int(parts[0]) * factor
    return values.get("VmRSS"), values.get("VmHWM")


def _getrusage_peak_bytes() -> int:
    import resource

    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux kilobytes


def read_rss() -> RssSample:
    """Current and peak resident memory of this process."""
    try:
        rss, hwm = parse_proc_status(PROC_STATUS.read_text())
    except OSError:
        rss, hwm = None, None
    if rss is not None and hwm is not None:
        return RssSample(rss, hwm, "proc")
    return RssSample(None, _getrusage_peak_bytes(), "getrusage")


def memory_stats(start: RssSample, end: RssSample, *, shared: bool = False) -> MemoryStats:
    """Memory figures between two readings taken around the measured runs."""
    if start.rss_bytes is not None and end.rss_bytes is not None:
        growth = end.rss_bytes - start.rss_bytes
    else:
        growth = end.peak_bytes - start.peak_bytes
    return MemoryStats(source=end.source, peak_rss_bytes=end.peak_bytes, rss_start_bytes=start.rss_bytes,
                       rss_end_bytes=end.rss_bytes, growth_bytes=growth, shared=shared)
